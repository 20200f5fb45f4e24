"""The few types a plug-in author sees.

A :class:`Task` turns waveforms into the *explanation domain* (for singing-voice
detection: an 80 x 115 log-mel excerpt) and classifies points of that domain.
An :class:`Explainer` receives a :class:`ModelAccess` (the only way it may call
the model), an input in the explanation domain, a target class, a
:class:`~explbench.segmentation.Segmentation` and a query budget, and returns an
:class:`Explanation`: one signed weight per segment.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, ClassVar, Iterator

import numpy as np
import torch

if TYPE_CHECKING:  # pragma: no cover
    from explbench.segmentation import Segmentation


class BudgetExceeded(RuntimeError):
    """Raised when an explainer asks the model for more queries than its budget allows."""


# --------------------------------------------------------------------------- data


@dataclass
class Explanation:
    """What an explainer returns for one input and one target class.

    Attributes
    ----------
    weights : np.ndarray, shape (d,)
        One signed relevance per segment of the scoring segmentation, for the target class.
    dense : np.ndarray, optional
        Relevance over the whole explanation domain (same shape as the input), for explainers
        that produce dense maps; the harness projects it onto the grid when ``weights`` is None.
    score : float, optional
        The explainer's own fidelity score (LIME: weighted R^2 of its surrogate).
    intercept : float, optional
        Intercept of a linear surrogate, where there is one.
    queries : int
        Model queries (inputs passed to ``predict`` or ``gradient``) the explanation used.
    seconds : float
        Wall-clock seconds the explanation took.
    audio : np.ndarray, optional, shape (n_samples,)
        The explanation rendered as sound (listenable explainers such as audioLIME); the
        harness writes it to a WAV file in the run folder.
    extra : dict
        Anything else worth keeping (JSON-serialisable), e.g. component names.
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
        Sources of shape (n_samples,) that add up to ``audio`` (an oracle separation where the
        task has one); ``None`` when the task has no stems.
    sample_rate : int
        Hz.
    to_domain : callable
        The task's differentiable front-end, waveforms ``(B, n_samples)`` to ``(B, *domain_shape)``.
    """

    audio: np.ndarray
    stems: dict[str, np.ndarray] | None
    sample_rate: int
    to_domain: Callable[[torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------- model access


def forward_batched(module: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor | np.ndarray,
                    batch_size: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """``module`` applied to ``x`` ``(N, ...)`` in batches under ``torch.inference_mode``.

    Returns
    -------
    torch.Tensor, shape (N, ...), float32 on the CPU (empty when N = 0)
    """
    x = torch.as_tensor(x, dtype=torch.float32)
    out = []
    with torch.inference_mode():
        for i in range(0, x.shape[0], batch_size):
            out.append(module(x[i : i + batch_size].to(device)).float().cpu())
    return torch.cat(out) if out else torch.empty(0)



class ModelAccess:
    """Counted, batched access to a task's classifier on the explanation domain.

    Parameters
    ----------
    classify : torch.nn.Module
        Maps a batch of explanation-domain inputs ``(N, *domain_shape)`` to class
        probabilities ``(N, C)``.
    budget : int, optional
        Maximum number of inputs that may be evaluated; ``None`` for no limit.
    batch_size : int
        Batch size used internally by :meth:`predict`.
    device : str
        Torch device the model lives on.
    """

    def __init__(
        self,
        classify: torch.nn.Module,
        budget: int | None = None,
        batch_size: int = 8,
        device: str = "cpu",
    ) -> None:
        self._classify = classify
        self.budget = budget
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.queries = 0
        self.gradient_queries = 0

    def _charge(self, n: int) -> None:
        if self.budget is not None and self.queries + n > self.budget:
            raise BudgetExceeded(
                f"explainer asked for {self.queries + n} model queries but its budget is "
                f"{self.budget}; lower its sample count or raise the budget in the suite"
            )
        self.queries += n

    def predict(self, batch: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Class probabilities for a batch of inputs.

        Parameters
        ----------
        batch : tensor or array, shape (N, *domain_shape)

        Returns
        -------
        torch.Tensor, shape (N, C), on the CPU
        """
        self._charge(len(batch))
        return forward_batched(self._classify, batch, self.batch_size, self.device)

    def differentiable(self) -> torch.nn.Module:
        """The classifier as a differentiable torch module, for white-box explainers.

        Every input passed through the returned module is counted as a query.
        """
        access = self

        class _Counted(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = access._classify

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                access._charge(x.shape[0])
                access.gradient_queries += x.shape[0]
                return self.inner(x.to(access.device))

        return _Counted()


# --------------------------------------------------------------------------- explainers


class Explainer(ABC):
    """Base class of every explainer.

    Subclasses keep configuration in their constructor (keyword arguments with defaults, as in
    scikit-learn) and do all work in :meth:`explain`. Class attributes describe the explainer
    to ``explbench list explainers`` and the conformance check.
    """

    #: one line shown by ``explbench list explainers``
    description: ClassVar[str] = ""
    #: True when the explainer only calls ``ModelAccess.predict``
    model_agnostic: ClassVar[bool] = True
    #: True for reference selectors that see the ground truth (never ranked)
    oracle: ClassVar[bool] = False
    #: a formula for the query cost, shown to users, e.g. "n_samples"
    query_cost: ClassVar[str] = ""
    #: True when the explainer needs the waveform: the harness passes ``audio=AudioContext``
    needs_audio: ClassVar[bool] = False

    @abstractmethod
    def explain(
        self,
        model: ModelAccess,
        x: torch.Tensor,
        target: int,
        segments: "Segmentation",
        budget: int | None,
        rng: np.random.Generator,
    ) -> Explanation:
        """Explain the model's probability of ``target`` at ``x``.

        Parameters
        ----------
        model : ModelAccess
            The only way to query the model.
        x : torch.Tensor, shape domain_shape (svd: (80, 115))
            The input to explain, in the explanation domain.
        target : int
            The class whose probability is explained.
        segments : Segmentation
            The scoring segmentation; weights are returned per segment of it.
        budget : int or None
            Maximum model queries; an explainer should size itself to fit.
        rng : numpy.random.Generator
            The only source of randomness the explainer may use.
        """

    def get_params(self) -> dict:
        """Constructor parameters, for provenance (the public attributes set in ``__init__``)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def timed(self) -> "_Timer":
        """Context manager measuring seconds, for filling ``Explanation.seconds``."""
        return _Timer()


class _Timer:
    def __enter__(self) -> "_Timer":
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


# Task and Excerpt live in explbench.task; re-exported here for plug-ins written against api.
from explbench.task import Excerpt, Task  # noqa: E402,F401
