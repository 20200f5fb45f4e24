"""The veracity protocol, one (case, explainer) unit at a time.

For a case with clean input ``x``, perturbation ``delta`` and target ``t``, an explainer explains
``x + delta`` for class ``t``. Its ranking of the scoring segments is then tested by applying
``delta`` on its top-k segments only, ``x + M(top-k) * delta``, and asking whether the decision
becomes ``t`` (label flip at k, for every k = 1..d). The same is done once per case with two
reference rankings that see ``delta``: by segment energy ``sum(M_i * delta^2)`` ("norm") and by
mean ``|delta|`` per segment ("absmean", which does not favour large segments).

Ties. An explainer's ranking breaks ties in its weights at random: the order of tied segments
is a uniform random permutation drawn from a generator seeded by
``seed_for("ties", case_id, explainer_name, base=seed)`` (:func:`explbench.core.seeding.seed_for`,
``seed`` the run's master seed), so a fully tied explainer flips at the rate of a random
ranking, never at the rate of the lowest-index segments, and the same run gives the same
records. (The recovery metric scores ties by their exact expectation instead.) The reference
rankings keep index order for ties: they tie only on segments where ``delta`` is zero, whose
order cannot change a flip.

Dense maps. An explainer that returns a dense map and no weights is scored on the map projected
by the suite's ``aggregation`` (one of :data:`~explbench.core.segmentation.REDUCTIONS`); for every
aggregation in ``extra_aggregations`` the same map is scored once more, under the name
``"<explainer>[<aggregation>]"``, without a second call to the explainer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explbench.core import content as baselines
from explbench.api import Task
from explbench.api.explainer import AudioContext, ExplainContext, Explainer, Explanation, call_explain
from explbench.api.model_access import BudgetExceeded, ModelAccess, forward_batched
from explbench.core.cases import Case, content_hash
from explbench.api.metric import HEADLINE_K
from explbench.protocol.agnostic import agnostic_fidelity
from explbench.core.neighbourhood import kernel_weights
from explbench.core.segmentation import REDUCTIONS, UNSIGNED_REDUCTIONS, Segmentation, selection_matrix, top_k
from explbench.core.seeding import seed_for
from explbench.protocol.validate import traceback_text
from explbench.protocol.validate import ExplainerFailure, finite_or_none, split_name, validate_explanation


#: the classifier's batch size when none is given; the one every measured choice is compared with
DEFAULT_BATCH = 64


# --------------------------------------------------------------------------- validation


# --------------------------------------------------------------------------- scoring


@dataclass
class CaseContext:
    """Per-case quantities shared by every explainer of the case (computed once).

    Attributes
    ----------
    flip_norm_at_k : np.ndarray, shape (d,), bool
        Flips with the top-k segments by energy ``sum(M_i * delta^2)``.
    flip_absmean_at_k : np.ndarray, shape (d,), bool
        Flips with the top-k segments by mean ``|delta|`` per segment (size-independent).
    neighbourhood : np.ndarray, shape (m, d) or None — shared random masks for agnostic fidelity
    neighbourhood_y : np.ndarray, shape (m,) or None — target probability on each mask
    neighbourhood_w : np.ndarray, shape (m,) or None — LIME kernel weight of each mask
    case_hash : str or None — the case's content hash (:func:`explbench.core.cases.content_hash`),
        written into every record of the case so that runs are paired by content
    """

    flip_norm_at_k: np.ndarray
    flip_absmean_at_k: np.ndarray | None = None
    neighbourhood: np.ndarray | None = None
    neighbourhood_y: np.ndarray | None = None
    neighbourhood_w: np.ndarray | None = None
    case_hash: str | None = None


class Scorer:
    """Scores explanations of cases against one task's classifier.

    Parameters
    ----------
    task : Task
    segments : Segmentation
        The scoring segmentation.
    content : str
        Content type for the shared agnostic-fidelity neighbourhood.
    agnostic_samples : int
        Size of that neighbourhood (0 disables agnostic fidelity).
    batch_size : int, optional
        Batch size of the classifier forwards; :data:`DEFAULT_BATCH`
        when None. A run passes the size it measured or was given.
    device : str
    seed : int
        The run's master seed; seeds the tie-breaking of rankings (see the module notes).
    aggregation : str
        How a dense map without weights is projected onto the segments (suite key
        ``aggregation``), one of :data:`~explbench.core.segmentation.REDUCTIONS`.
    extra_aggregations : sequence of str
        Aggregations under which dense maps are scored once more (suite key
        ``extra_aggregations``), each recorded as ``"<explainer>[<aggregation>]"``.
    headline_k : int
        Handed to explainers in ``ExplainContext.headline_k``.
    """

    def __init__(self, task: Task, segments: Segmentation, content: str = "mean",
                 agnostic_samples: int = 256, batch_size: int | None = None, device: str = "cpu",
                 *, seed: int = 0, aggregation: str = "mean", extra_aggregations: tuple[str, ...] = (),
                 headline_k: int = HEADLINE_K) -> None:
        for agg in (aggregation, *extra_aggregations):
            if agg not in REDUCTIONS:
                raise ValueError(f"unknown aggregation {agg!r}; the suite keys aggregation and "
                                 f"extra_aggregations take {', '.join(map(repr, REDUCTIONS))}")
        self.task = task
        self.segments = segments
        self.content = baselines.get(content)
        self.agnostic_samples = agnostic_samples
        self.device = device
        self.seed = int(seed)
        self.aggregation = aggregation
        self.extra_aggregations = tuple(extra_aggregations)
        self.headline_k = int(headline_k)
        self.classify = task.classifier()
        self.batch_size = DEFAULT_BATCH if batch_size is None else int(batch_size)

    # -- the model ------------------------------------------------------------------------------

    def decide(self, inputs: torch.Tensor) -> np.ndarray:
        """Decisions ``(N,)`` for inputs ``(N, *domain_shape)``."""
        return self.task.decide(self.probabilities(inputs)).numpy()

    def probabilities(self, inputs: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(N, C)`` for inputs ``(N, *domain_shape)`` (not counted)."""
        return forward_batched(self.classify, inputs, self.batch_size, self.device)

    def flips(self, case: Case, order: np.ndarray) -> np.ndarray:
        """Whether ``x + M(first k of order) * delta`` is decided as the target, for k = 1..d."""
        z = selection_matrix(order, self.segments.d)
        x = torch.from_numpy(case.x)
        inputs = self.segments.apply_delta(x, torch.from_numpy(case.delta), z)
        return self.decide(inputs) == case.target

    def ties_rng(self, case: Case, explainer_name: str) -> np.random.Generator:
        """The generator that breaks ties in ``explainer_name``'s ranking of ``case``."""
        return np.random.default_rng(seed_for("ties", case.case_id, explainer_name, base=self.seed))

    def context(self, case: Case, seed: int) -> CaseContext:
        """Quantities shared by all explainers of ``case``."""
        delta = case.delta
        by_energy = top_k(self.segments.energy(delta), self.segments.d)
        by_absmean = top_k(self.segments.project(np.abs(delta), reduce="mean"), self.segments.d)
        ctx = CaseContext(flip_norm_at_k=self.flips(case, by_energy),
                          flip_absmean_at_k=self.flips(case, by_absmean), case_hash=content_hash(case))
        if self.agnostic_samples > 0 and case.true_segments is not None and len(case.true_segments) == 1:
            rng = np.random.default_rng(seed)
            z = (rng.random((self.agnostic_samples, self.segments.d)) < 0.5).astype(np.float32)
            z[0] = 1.0
            x_mod = torch.from_numpy(case.x_mod)
            inputs = self.segments.compose(x_mod, z, self.content(x_mod, rng))
            ctx.neighbourhood = z
            ctx.neighbourhood_y = self.probabilities(inputs)[:, case.target].double().numpy()
            ctx.neighbourhood_w = kernel_weights(z)
        return ctx

    def audio_context(self, case: Case, oracle: bool = False) -> AudioContext:
        """The waveform of the case's modified input; with its sources only for oracles.

        A waveform attack's own modified audio is used when the case's modified input is exactly
        its image; otherwise the task resynthesizes a waveform whose domain image approximates
        ``x_mod`` from the clean audio (keeping its phase).

        Sources. A ranked explainer gets ``stems=None``: the clean stems and the modified mix
        together give away the perturbation (their difference). An oracle gets the clean stems
        (or the clean audio as one source, "clean", when the case has none) plus what the
        modification added, "perturbation", so that the sources add up to the waveform.
        """
        if case.audio is None:
            raise ExplainerFailure(f"case {case.case_id} carries no audio; this explainer needs it")
        wave = None
        if case.audio_mod is not None and case.true_segments is None:
            wave = np.asarray(case.audio_mod, dtype=np.float32)
        if wave is None:
            wave = np.asarray(self.task.resynthesize(case.audio, case.x_mod), dtype=np.float32)
        stems = None
        if oracle:
            clean = case.stems or {"clean": case.audio}
            stems = {k: np.asarray(v, dtype=np.float32) for k, v in clean.items()}
            stems["perturbation"] = wave - sum(stems.values())
        return AudioContext(audio=wave, stems=stems, sample_rate=self.task.sample_rate,
                            to_domain=self.task.to_domain)

    # -- explaining -----------------------------------------------------------------------------

    def explain(self, explainer: Explainer, case: Case, budget: int | None,
                rng: np.random.Generator, *, name: str | None = None) -> Explanation:
        """Run the explainer on the case's modified input and validate what it returns.

        Returns
        -------
        Explanation
            With ``weights`` (d,) float64 as scored (the dense map projected by the
            ``aggregation`` when the explainer gave no weights), ``queries`` as counted by
            :class:`ModelAccess` and ``seconds`` as measured here.

        Raises
        ------
        ExplainerFailure
            For anything the harness cannot score, naming the explainer.
        """
        return self._explain(explainer, case, budget, rng, name or type(explainer).__name__)[0]

    def _explain(self, explainer: Explainer, case: Case, budget: int | None,
                 rng: np.random.Generator, name: str) -> tuple[Explanation, str | None]:
        """:meth:`explain`, and the aggregation the weights came from (None: the explainer's)."""
        access = ModelAccess(self.classify, budget=budget, batch_size=self.batch_size, device=self.device)
        x_mod = torch.from_numpy(case.x_mod.copy())
        oracle = bool(getattr(explainer, "oracle", False))
        context = ExplainContext(
            audio=self.audio_context(case, oracle=oracle) if getattr(explainer, "needs_audio", False) else None,
            delta=torch.from_numpy(case.delta) if oracle else None,
            headline_k=self.headline_k,
        )
        try:
            exp, seconds = call_explain(explainer, access, x_mod, case.target, segments=self.segments,
                                        budget=budget, rng=rng, context=context)
        except BudgetExceeded as exc:
            raise ExplainerFailure(f"{name}: {exc}") from exc
        w = validate_explanation(exp, self.segments, name, self.aggregation)
        aggregation = self.aggregation if exp.weights is None else None
        exp.weights = w
        exp.queries = access.queries
        exp.seconds = seconds
        return exp, aggregation

    # -- records --------------------------------------------------------------------------------

    def unit_names(self, explainer_name: str, explainer: Explainer) -> list[str]:
        """The record names one (case, explainer) unit produces: the explainer's, then one per
        extra aggregation for explainers that declare ``dense_map``."""
        names = [explainer_name]
        if getattr(explainer, "dense_map", False):
            names += [f"{explainer_name}[{agg}]" for agg in self.extra_aggregations]
        return names

    def _base(self, case: Case, name: str, explainer: Explainer, ctx: CaseContext,
              classes: tuple[str, ...], signed: bool) -> dict:
        necessary = getattr(case, "necessary_segments", None)
        absmean = ctx.flip_absmean_at_k
        return {
            "case_id": case.case_id, "case_hash": ctx.case_hash, "generator": case.generator,
            "direction": case.direction(classes), "explainer": name,
            "oracle": bool(getattr(explainer, "oracle", False)), "d": self.segments.d,
            "true_segments": None if case.true_segments is None else [int(s) for s in case.true_segments],
            "flip_norm_at_k": np.asarray(ctx.flip_norm_at_k).tolist(),
            "cluster": case.cluster,
            "necessary_segments": None if necessary is None else [int(s) for s in necessary],
            "signed": bool(signed),
            "flip_absmean_at_k": None if absmean is None else np.asarray(absmean).tolist(),
        }

    def _signed(self, explainer: Explainer, aggregation: str | None) -> bool:
        return bool(getattr(explainer, "signed", True)) and aggregation not in UNSIGNED_REDUCTIONS

    def failure(self, case: Case, explainer_name: str, explainer: Explainer, ctx: CaseContext,
                classes: tuple[str, ...], error: BaseException | str) -> dict:
        """A failed record with every base field, for ``explainer_name`` (which may be an
        aggregation record's name, ``"<explainer>[<aggregation>]"``)."""
        _, agg = split_name(explainer_name)
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        record = {**self._base(case, explainer_name, explainer, ctx, classes, self._signed(explainer, agg)),
                  "status": "failed", "error": text}
        if isinstance(error, BaseException):
            record["traceback"] = traceback_text(error)
        return record

    def _scored(self, case: Case, name: str, explainer: Explainer, ctx: CaseContext,
                classes: tuple[str, ...], exp: Explanation, w: np.ndarray,
                aggregation: str | None) -> dict:
        flip = self.flips(case, top_k(w, self.segments.d, self.ties_rng(case, name)))
        n_pos = int((w > 0).sum())
        agn = None
        if ctx.neighbourhood is not None:
            agn = finite_or_none(agnostic_fidelity(ctx.neighbourhood, ctx.neighbourhood_y,
                                                   ctx.neighbourhood_w, w))
        record = {
            **self._base(case, name, explainer, ctx, classes, self._signed(explainer, aggregation)),
            "status": "ok", "error": None,
            "weights": [float(v) for v in w],
            "aggregation": aggregation,
            "score": finite_or_none(exp.score),
            "agnostic_score": agn,
            "intercept": finite_or_none(exp.intercept),
            "queries": int(exp.queries), "seconds": round(float(exp.seconds), 4),
            "flip_at_k": flip.tolist(),
            "n_positive": n_pos,
            "flip_positive": bool(flip[n_pos - 1]) if n_pos > 0 else False,
            "flip_norm_positive": bool(ctx.flip_norm_at_k[n_pos - 1]) if n_pos > 0 else False,
        }
        if exp.extra:
            record["extra"] = exp.extra
        return record

    def records(self, case: Case, explainer_name: str, explainer: Explainer, ctx: CaseContext,
                budget: int | None, rng: np.random.Generator,
                classes: tuple[str, ...]) -> list[tuple[dict, np.ndarray | None]]:
        """The protocol records of one unit, each with the explanation as sound (or None).

        The first record is the explainer's; then, when it returned a dense map (or declares
        ``dense_map``), one per extra aggregation, named ``"<explainer_name>[<aggregation>]"``,
        scored from the same explanation. Failures are recorded with status "failed" and the
        error, never raised; a failed explanation fails every record of the unit.
        """
        names = self.unit_names(explainer_name, explainer)
        try:
            exp, aggregation = self._explain(explainer, case, budget, rng, explainer_name)
        except Exception as exc:  # one failing explainer must not stop the suite
            return [(self.failure(case, n, explainer, ctx, classes, exc), None) for n in names]
        main = self._scored(case, explainer_name, explainer, ctx, classes, exp, exp.weights, aggregation)
        audio = None if exp.audio is None else np.asarray(exp.audio, dtype=np.float32).reshape(-1)
        out: list[tuple[dict, np.ndarray | None]] = [(main, audio)]
        if exp.dense is None:
            missing = ExplainerFailure(f"{explainer_name} declares dense_map = True but returned no "
                                       f"dense map, so it cannot be scored under an aggregation")
            out += [(self.failure(case, n, explainer, ctx, classes, missing), None) for n in names[1:]]
            return out
        dense = np.asarray(exp.dense, dtype=np.float64)
        for agg in self.extra_aggregations:
            name = f"{explainer_name}[{agg}]"
            w = self.segments.project(dense, reduce=agg)
            out.append((self._scored(case, name, explainer, ctx, classes, exp, w, agg), None))
        return out
