"""The explainer contract: Explainer, the Explanation it returns, the context it may read, and the one way the harness calls it."""

from __future__ import annotations

import inspect
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar
from typing import TYPE_CHECKING

import numpy as np
import torch

from explbench.api.model_access import ModelAccess, one_torch_thread

if TYPE_CHECKING:  # pragma: no cover
    from explbench.core.segmentation import Segmentation

#: the keyword-only parameters of :meth:`Explainer.explain`
EXPLAIN_KEYWORDS: tuple[str, ...] = ("segments", "budget", "rng", "context")


@dataclass
class Explanation:
    """What an explainer returns for one input and one target class.

    Attributes
    ----------
    weights : np.ndarray, shape (d,), optional
        One relevance per segment of the scoring segmentation, in segment order, for the target
        class: larger means more evidence for the target. Used as given when set.
    dense : np.ndarray, optional
        Relevance over the whole explanation domain (same shape as the input), for explainers
        that produce dense maps. When ``weights`` is None the harness projects it onto the
        segments by the suite's ``aggregation`` (:meth:`Segmentation.project`), and it scores
        the map once more under every aggregation in ``extra_aggregations``.
    score : float, optional
        The explainer's own fidelity score (LIME: weighted R^2 of its surrogate); None if it
        has none (never NaN).
    intercept : float, optional
        Intercept of a linear surrogate, where there is one; None otherwise (never NaN).
    queries : int
        Filled in by the harness: the model queries (inputs passed to ``predict`` or through
        ``differentiable()``) that :class:`ModelAccess` counted. Explainers leave it at 0.
    seconds : float
        Filled in by the harness: wall-clock seconds of ``explain``. Explainers leave it at 0.
    audio : np.ndarray, optional, shape (n_samples,)
        The explanation rendered as sound (listenable explainers such as audioLIME); the
        harness writes it to a WAV file in the run folder.
    extra : dict
        Anything else worth keeping, as plain JSON values (numbers, strings, lists, dicts;
        convert numpy arrays with ``.tolist()``), e.g. component names.
    """

    weights: np.ndarray | None
    dense: np.ndarray | None = None
    score: float | None = None
    intercept: float | None = None
    queries: int = 0
    seconds: float = 0.0
    audio: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class AudioContext:
    """The waveform behind an input, for explainers that work on sound (``needs_audio``).

    Attributes
    ----------
    audio : np.ndarray, shape (n_samples,)
        Waveform whose domain image is (close to) the input being explained.
    stems : dict of str to np.ndarray, optional
        Sources of shape (n_samples,) that add up to ``audio``: the clean stems plus the
        "perturbation" source. The harness hands them only to oracles (they give the answer
        away); ``None`` for every ranked explainer.
    sample_rate : int
        Hz.
    to_domain : callable
        The task's differentiable front-end, waveforms ``(B, n_samples)`` to ``(B, *domain_shape)``.
    """

    audio: np.ndarray
    stems: dict[str, np.ndarray] | None
    sample_rate: int
    to_domain: Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ExplainContext:
    """What the harness may hand an explainer beyond the input (keyword ``context`` of
    :meth:`Explainer.explain`).

    Attributes
    ----------
    audio : AudioContext or None
        The waveform behind the input, for explainers that declare ``needs_audio = True``
        (None otherwise). Its ``stems`` are given only to oracles: together with the modified
        mix they would reveal the perturbation.
    delta : torch.Tensor or None, shape domain_shape
        The true perturbation, for reference selectors that declare ``oracle = True`` (None
        for every ranked explainer).
    headline_k : int
        The k of the headline metric FR(k) (:data:`explbench.api.metric.HEADLINE_K`), for
        explainers that can spend effort where it matters, e.g. settle their top-k.
    """

    audio: AudioContext | None = None
    delta: torch.Tensor | None = None
    headline_k: int = 3


class Explainer(ABC):
    """Base class of every explainer.

    Subclasses keep configuration in their constructor (keyword arguments with defaults, as in
    scikit-learn) and do all work in :meth:`explain`. Class attributes describe the explainer
    to ``explbench list explainers``, the protocol and the conformance check.
    """

    #: one line shown by ``explbench list explainers``
    description: ClassVar[str] = ""
    #: True when the explainer only calls ``ModelAccess.predict``
    model_agnostic: ClassVar[bool] = True
    #: True for reference selectors that see the ground truth (``context.delta``; never ranked)
    oracle: ClassVar[bool] = False
    #: a formula for the query cost, shown to users, e.g. "n_samples"
    query_cost: ClassVar[str] = ""
    #: True when the explainer needs the waveform: the harness passes ``context.audio``
    needs_audio: ClassVar[bool] = False
    #: False when the weights are never negative (e.g. absolute gradients): the metrics then
    #: mark the positive-weight flip "not applicable". May be a property of the instance.
    signed: ClassVar[bool] = True
    #: True when ``explain`` returns a dense map (``Explanation.dense``): the harness then
    #: records it under every extra aggregation of the suite, failures included
    dense_map: ClassVar[bool] = False
    #: True when the explainer needs a frequency axis (a time-frequency domain); a run on a
    #: waveform domain leaves it out and says so
    needs_frequency_axis: ClassVar[bool] = False

    @abstractmethod
    def explain(
        self,
        model: ModelAccess,
        x: torch.Tensor,
        target: int,
        *,
        segments: "Segmentation",
        budget: int | None,
        rng: np.random.Generator,
        context: ExplainContext,
    ) -> Explanation:
        """Explain the model's probability of ``target`` at ``x``.

        Parameters
        ----------
        model : ModelAccess
            The only way to query the model; it counts every query.
        x : torch.Tensor, shape domain_shape (svd: (80, 115))
            The input to explain, in the explanation domain. Do not modify it.
        target : int
            The class whose probability is explained.
        segments : Segmentation
            The scoring segmentation; weights are returned per segment of it.
        budget : int or None
            Maximum model queries; an explainer should size itself to fit.
        rng : numpy.random.Generator
            The only source of randomness the explainer may use.
        context : ExplainContext
            The waveform (``needs_audio``), the true perturbation (``oracle``) and the headline k.

        Returns
        -------
        Explanation
            ``weights`` (d,) or ``dense`` (domain_shape); ``queries`` and ``seconds`` are left
            to the harness.
        """

    def get_params(self) -> dict:
        """Constructor parameters, for provenance (the public attributes set in ``__init__``)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


class ContractError(TypeError):
    """An explainer whose ``explain`` cannot be called with the contract's arguments."""


def signature_problem(explainer: Explainer) -> str | None:
    """Why ``explainer.explain`` cannot take the contract's arguments, or None when it can.

    The contract is ``explain(model, x, target, *, segments, budget, rng, context)``; an
    ``explain`` that takes ``**kwargs`` accepts it too.
    """
    try:
        sig = inspect.signature(explainer.explain)
    except (TypeError, ValueError):  # a C extension or an odd callable: let the call decide
        return None
    params = list(sig.parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    by_name = {p.name: p for p in params}
    positional_only = inspect.Parameter.POSITIONAL_ONLY
    missing = [k for k in EXPLAIN_KEYWORDS if k not in by_name or by_name[k].kind is positional_only]
    name = type(explainer).__name__
    if missing:
        old = "" if "context" not in missing or len(missing) > 1 else (
            " It looks like the signature before ExplainContext: the harness no longer passes "
            "delta= or audio= keywords; read them from context.delta and context.audio.")
        return (f"{name}.explain({', '.join(p.name for p in params)}) does not take "
                f"{', '.join(missing)}; write it as explain(self, model, x, target, *, segments, "
                f"budget, rng, context).{old}")
    extra = [p.name for p in params[3:] if p.name not in EXPLAIN_KEYWORDS
             and p.default is p.empty and p.kind not in (p.VAR_POSITIONAL,)]
    if extra:
        return (f"{name}.explain requires {', '.join(extra)}, which the harness never passes; "
                f"give them defaults or read them from context (context.delta, context.audio)")
    return None


def call_explain(explainer: Explainer, model: ModelAccess, x: torch.Tensor, target: int, *,
                 segments: "Segmentation", budget: int | None, rng: np.random.Generator,
                 context: ExplainContext) -> tuple[Any, float]:
    """Call ``explainer.explain`` as the harness does, and time it.

    Returns
    -------
    (object, float)
        What ``explain`` returned (not yet validated) and its wall-clock seconds.

    Raises
    ------
    ContractError
        When ``explain`` cannot take the contract's arguments (see :func:`signature_problem`).
    """
    problem = signature_problem(explainer)
    if problem:
        raise ContractError(problem)
    t0 = time.perf_counter()
    # one torch thread for whatever the explainer computes itself (gradients, its own ops), so
    # its bits do not depend on the thread count; predict() still runs batches side by side
    with one_torch_thread():
        out = explainer.explain(model, x, target, segments=segments, budget=budget, rng=rng, context=context)
    return out, time.perf_counter() - t0
