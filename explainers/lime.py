"""LIME family: ``lime`` (SLIME time-frequency on the scoring grid), ``slime-time``, ``slime-freq``.

One core, :func:`lime_core`, serves all three (its fitting half, :func:`fit_surrogate`, also
serves ``audiolime``): a batched neighbourhood (every perturbed input composed in one tensor
expression and queried in one ``predict`` call), cosine distances of
the binary masks to the all-ones row, the kernel ``sqrt(exp(-d^2 / w^2))`` and the surrogate
fitted by the ``lime`` package's :class:`lime.lime_base.LimeBase` with a weighted
``Ridge(alpha, fit_intercept=True)`` on all features.

The neighbourhood, its distances and kernel come from :mod:`explbench.core.neighbourhood`.

``n_samples = "auto"`` (:func:`sample_adaptively`): the neighbourhood grows in rounds (256,
512, ... up to ``max_samples`` or the budget) and the surrogate is refitted on every mask drawn
so far -- the same estimator as fixed sampling, on the same masks: with a deterministic content
type (zero, min, mean) the masks are exactly the first rows that ``n_samples = N`` draws from
the same generator, so stopping at N returns what fixed sampling with N returns. It stops once
the top-k set (k = ``ExplainContext.headline_k``) is separated from the rest by the stopping
rule of :func:`explainers._common.settle`, on the sandwich covariance of the weighted ridge
fit (:func:`explainers._common.ridge_covariance`). A mask drawn twice is queried once.
``slime-time`` and ``slime-freq`` settle the top-k of the grid weights they return (a linear
map of their component weights, :func:`projection_matrix`); grid cells that one component
covers alike are tied by construction and exempt. The record's ``extra`` keeps ``rounds``,
``stopped_because`` ("settled", "exact", "max_samples" or "budget"), ``p_change`` (the bound
on the probability that more samples would change the top-k set) and ``distinct_masks``; the
harness counts the queries.

``predict_rest = True`` (with ``"auto"``) aims at the same fit on all ``max_samples`` masks by
prediction instead: the masks are drawn up front, every look predicts the answers not yet
queried with a pairwise-interaction surrogate of those queried
(:class:`explainers._predicted.RestPredictor`) and stops when the top-k set of the predicted
N-sample fit is settled on the covariance of its error; it then returns that predicted fit
(``extra["predicted_answers"]`` says how many answers it predicted). Replayed on 146 recorded
svd-synth cases (``scripts/adaptive_replay.py``), at ``confidence = 0.95`` its top-3 set was
that of ``n_samples = 8192`` on 143 at 1556 queries on average; the plain rule at its default
0.97 on 142 at 1784.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np
import torch
from lime.lime_base import LimeBase
from sklearn.linear_model import Ridge

from explbench.api.explainer import ExplainContext, Explainer, Explanation
from explbench.api.model_access import ModelAccess
from explbench.core.neighbourhood import MaskStream, cosine_to_ones, lime_kernel, sample_masks
from explbench.api.registry import register_explainer
from explbench.core.segmentation import Segmentation, freq_segments, time_segments

from ._common import (AUTO, AutoSampling, as_input, check_sampling, content_baseline, ridge_covariance,
                      settle, sized, spread)
from ._predicted import RestPredictor


@dataclass
class LimeFit:
    """Result of :func:`lime_core` (weights in component order)."""

    weights: np.ndarray  # (d,) float64
    intercept: float
    score: float
    local_pred: float


def lime_core(
    model: ModelAccess,
    x: torch.Tensor,
    target: int,
    components: Segmentation,
    z: np.ndarray,
    baseline: torch.Tensor,
    kernel_width: float = 0.25,
    alpha: float = 1.0,
    random_state: int = 0,
) -> LimeFit:
    """Query the model on a neighbourhood and fit LIME's weighted ridge surrogate.

    Parameters
    ----------
    model : ModelAccess
    x : torch.Tensor, shape domain_shape
    target : int
    components : Segmentation with d segments
        The interpretable components the masks ``z`` switch.
    z : np.ndarray, shape (n, d), {0, 1}
        Neighbourhood; row 0 must be all ones (the instance itself).
    baseline : torch.Tensor, shape domain_shape
        Content shown where a component is off.
    kernel_width, alpha : float
        Kernel width ``w`` and ridge penalty.
    random_state : int
        Passed to ``LimeBase`` (unused by the fit with an explicit regressor).

    Returns
    -------
    LimeFit
    """
    z = np.asarray(z, dtype=np.float32)
    if not np.all(z[0] == 1):
        raise ValueError("the first row of a LIME neighbourhood must be all ones (the instance)")
    labels = model.predict(components.compose(x, z, baseline)).numpy().astype(np.float64)
    return fit_surrogate(z, labels, target, kernel_width, alpha, random_state)


def fit_surrogate(
    z: np.ndarray,
    labels: np.ndarray,
    target: int,
    kernel_width: float = 0.25,
    alpha: float = 1.0,
    random_state: int = 0,
) -> LimeFit:
    """Fit LIME's weighted ridge surrogate to model outputs on a neighbourhood.

    The part of :func:`lime_core` after the model queries, for explainers that compose their
    neighbourhood themselves (audioLIME composes waveforms).

    Parameters
    ----------
    z : np.ndarray, shape (n, d), {0, 1}
        Neighbourhood; row 0 must be all ones (the instance itself).
    labels : np.ndarray, shape (n, C)
        Class probabilities of the model on each row's composition.
    target : int
        Column of ``labels`` to explain.
    kernel_width, alpha, random_state
        As in :func:`lime_core`.

    Returns
    -------
    LimeFit
    """
    z = np.asarray(z, dtype=np.float32)
    if not np.all(z[0] == 1):
        raise ValueError("the first row of a LIME neighbourhood must be all ones (the instance)")
    d = z.shape[1]
    base = LimeBase(lime_kernel(kernel_width), random_state=random_state)
    intercept, coefs, score, local_pred = base.explain_instance_with_data(
        z.astype(np.float64),
        np.asarray(labels, dtype=np.float64),
        cosine_to_ones(z),
        target,
        d,
        feature_selection="none",
        model_regressor=Ridge(alpha=alpha, fit_intercept=True),
    )
    weights = np.zeros(d, dtype=np.float64)
    for i, c in coefs:
        weights[int(i)] = float(c)
    return LimeFit(weights, float(intercept), float(score), float(np.ravel(local_pred)[0]))


@dataclass
class Adaptive:
    """What :func:`sample_adaptively` drew and why it stopped.

    Attributes
    ----------
    z : np.ndarray, shape (n, p), float32
        Every mask drawn, in order (row 0 all ones).
    labels : np.ndarray, shape (n, C), float64
        The model's class probabilities on each mask's composition.
    fit : LimeFit
        The surrogate fitted on all ``n`` rows (``random_state`` 0; the fit does not use it).
    rounds : int
        Looks taken (fits made).
    stopped_because : str
        "settled" (the top-k set is separated), "exact" (the surrogate fits without residual:
        more samples cannot change it), "max_samples" or "budget".
    p_change : float
        At the last look, the bound on the probability that the rest of the samples would
        change the top-k set (:func:`explainers._common.settle`).
    queried : int
        Distinct masks queried (repeated masks are answered from a cache).
    predicted : int or None
        With ``predict_rest``: how many of the ``N`` masks had their answers predicted (0 when
        the rounds ran to the cap); None without it.
    """

    z: np.ndarray
    labels: np.ndarray
    fit: LimeFit
    rounds: int
    stopped_because: str
    p_change: float
    queried: int
    predicted: int | None = None

    def extra(self) -> dict:
        """The plain-JSON summary an Explanation keeps in ``extra``."""
        out = {"rounds": self.rounds, "stopped_because": self.stopped_because,
               "p_change": float(f"{self.p_change:.4g}"), "distinct_masks": self.queried}
        if self.predicted is not None:
            out["predicted_answers"] = self.predicted
        return out


def sample_adaptively(
    query: Callable[[np.ndarray], np.ndarray],
    stream: MaskStream,
    target: int,
    *,
    k: int,
    auto: AutoSampling,
    cap: int,
    kernel_width: float = 0.25,
    alpha: float = 1.0,
    projection: np.ndarray | None = None,
    budget_bound: bool = False,
    predict_rest: bool = False,
) -> Adaptive:
    """LIME's neighbourhood grown in rounds until its top-k set is settled (``n_samples = "auto"``).

    After every round the surrogate of :func:`fit_surrogate` is fitted on *all* masks drawn so
    far -- the estimator of fixed sampling, so stopping at ``n`` gives what ``n_samples = n``
    gives on the same masks -- with the sandwich covariance of :func:`ridge_covariance`
    (clustered by the stream's pairs), and the rounds stop when :func:`settle` finds the
    top-k set (of ``projection @ weights``, when given) settled: the bound on the probability
    that the rest of the ``cap`` samples would change it is at most :meth:`AutoSampling.level` (per look).

    Parameters
    ----------
    query : callable
        Masks ``(m, p)`` -> class probabilities ``(m, C)`` of their compositions (the model
        queries). Called only with masks not seen before: repeats come from a cache.
    stream : MaskStream
        Where the masks come from (its first row must still be the instance).
    target : int
    k : int
        Size of the top set to settle (``ExplainContext.headline_k``).
    auto : AutoSampling
    cap : int
        Most samples allowed (the budget's share); the schedule ends at ``min(max_samples, cap)``.
    kernel_width, alpha : float
        As in :func:`fit_surrogate`.
    projection : np.ndarray, shape (d, p), optional
        Linear map from the surrogate's p weights to the d weights that are ranked.
    budget_bound : bool
        Whether ``cap`` comes from the budget (names the stop "budget" rather than "max_samples"
        when the schedule runs out).
    predict_rest : bool
        Aim at the fit on all ``N = schedule[-1]`` masks through its prediction
        (:class:`explainers._predicted.RestPredictor`): all ``N`` masks are drawn at the start
        (the same rows, in the same order), the answers of those not yet queried are predicted
        by a pairwise-interaction surrogate of the queried ones, and a look stops when the
        top-k set of that predicted N-sample fit is settled on the covariance of its error
        (:func:`settle` with nothing shared, ``fraction = 0``). The fit returned on a stop is
        the predicted one. Needs independent masks.

    Returns
    -------
    Adaptive
    """
    if stream.taken != 0:
        raise ValueError("sample_adaptively needs a fresh MaskStream (its first row is the instance)")
    if predict_rest and stream.paired:
        raise ValueError("predict_rest needs independent masks: the covariance of its prediction treats "
                         "every mask as its own unit; use paired=False")
    sizes = auto.schedule(cap)
    pool = stream.take(sizes[-1]) if predict_rest else None  # every mask the rounds may use
    rest = RestPredictor(pool, lime_kernel(kernel_width)(cosine_to_ones(pool)), alpha) if predict_rest else None
    drawn = 0
    level = auto.level()  # the stopping level (``alpha`` is the ridge penalty)
    seen: dict[bytes, int] = {}
    zs: list[np.ndarray] = []
    answers: list[np.ndarray] = []  # one row per distinct mask, in order of first appearance
    index: list[np.ndarray] = []  # for every drawn row, its row in the answers
    n_answers = 0
    for look, n in enumerate(sizes, start=1):
        new = pool[drawn:n] if predict_rest else stream.take(n - drawn)
        drawn = n
        keys = [row.tobytes() for row in np.packbits(new.astype(bool), axis=1)]
        rows, fresh = np.empty(len(new), dtype=np.int64), []
        for i, key in enumerate(keys):
            j = seen.get(key)
            if j is None:
                j = seen[key] = n_answers + len(fresh)
                fresh.append(i)
            rows[i] = j
        if fresh:
            answers.append(np.asarray(query(new[fresh]), dtype=np.float64))
            n_answers += len(fresh)
        zs.append(new)
        index.append(rows)
        z = np.concatenate(zs)
        labels = np.concatenate(answers)[np.concatenate(index)]
        fit = fit_surrogate(z, labels, target, kernel_width, alpha)
        sw = lime_kernel(kernel_width)(cosine_to_ones(z))
        y = labels[:, target]
        resid = y - fit.intercept - z.astype(np.float64) @ fit.weights
        scale = max(1e-12, float(np.abs(y).max()))
        if float(np.abs(resid).max()) <= 1e-9 * scale:
            return Adaptive(z, labels, fit, look, "exact", 0.0, n_answers, 0 if predict_rest else None)
        if look == len(sizes):  # the cap stops; its fit is the N-sample fit itself
            cov = ridge_covariance(z, y, sw, fit.weights, fit.intercept, alpha, stream.pairs(len(z)))
            verdict = settle(fit.weights, cov, k, level, projection, fraction=1.0)
            break
        if predict_rest:
            pred = rest.fit(y)
            verdict = settle(pred.weights, pred.cov, k, level, projection, fraction=0.0)
            if verdict.settled:
                guess = LimeFit(pred.weights, pred.intercept, pred.score, pred.local_pred)
                return Adaptive(z, labels, guess, look, "settled", verdict.p_change, n_answers, len(pool) - n)
            continue
        cov = ridge_covariance(z, y, sw, fit.weights, fit.intercept, alpha, stream.pairs(len(z)))
        verdict = settle(fit.weights, cov, k, level, projection, fraction=n / sizes[-1])
        if verdict.settled:
            return Adaptive(z, labels, fit, look, "settled", verdict.p_change, n_answers)
    reason = "budget" if budget_bound and sizes[-1] < auto.max_samples else "max_samples"
    return Adaptive(z, labels, fit, len(sizes), reason, verdict.p_change, n_answers, 0 if predict_rest else None)


class _LimeFamily(Explainer):
    """LIME on some components; weights on the scoring grid (via a dense map if they differ).

    Parameters
    ----------
    n_samples : int or "auto"
        Neighbourhood size (model queries), capped by the budget; ``"auto"`` grows it in rounds
        until the top-k set (k = ``ExplainContext.headline_k``) is settled
        (:func:`sample_adaptively`), up to ``max_samples``.
    kernel_width, alpha : float
        LIME kernel width and ridge penalty.
    content : str
        Content type shown where a component is off.
    max_samples : int
        The most samples ``"auto"`` draws.
    first_samples : int
        Samples of ``"auto"``'s first round.
    growth : float
        Factor by which each round of ``"auto"`` grows the sample.
    confidence : float
        ``"auto"`` stops when, with at least this probability, the rest of the samples up to
        ``max_samples`` (or the budget) would not change the top-k set (see
        :class:`~explainers._common.AutoSampling`).
    paired : bool
        Antithetic masks (each mask followed by its complement; :class:`MaskStream`), for
        fixed and ``"auto"`` sampling alike.
    predict_rest : bool
        ``"auto"`` only: aim at the fit on all ``max_samples`` masks through its prediction
        from the answers queried so far (the rest predicted by a pairwise-interaction surrogate;
        :func:`sample_adaptively`), and return that predicted fit when it stops early. Needs
        ``paired = False``.
    """

    model_agnostic = True
    query_cost = "n_samples (\"auto\": up to max_samples; repeated masks are not re-queried)"

    def __init__(
        self,
        n_samples: int | Literal["auto"] = 1024,
        kernel_width: float = 0.25,
        content: str = "mean",
        alpha: float = 1.0,
        max_samples: int = 8192,
        first_samples: int = 256,
        growth: float = 1.25,
        confidence: float = 0.97,
        paired: bool = False,
        predict_rest: bool = False,
    ) -> None:
        check_sampling(type(self).__name__, n_samples, max_samples, first_samples, growth, confidence)
        if predict_rest and paired:
            raise ValueError(f"{type(self).__name__}: predict_rest needs independent masks; "
                             f"set paired=False (or predict_rest=False)")
        self.n_samples = n_samples
        self.kernel_width = kernel_width
        self.content = content
        self.alpha = alpha
        self.max_samples = max_samples
        self.first_samples = first_samples
        self.growth = growth
        self.confidence = confidence
        self.paired = paired
        self.predict_rest = predict_rest

    def components(self, segments: Segmentation) -> Segmentation:
        """The interpretable components LIME switches on and off."""
        return segments

    def auto_sampling(self) -> AutoSampling:
        """The adaptive-sampling settings of this explainer."""
        return AutoSampling(self.max_samples, self.first_samples, self.growth, self.confidence)

    def explain(
        self,
        model: ModelAccess,
        x: torch.Tensor,
        target: int,
        *,
        segments: Segmentation,
        budget: int | None,
        rng: np.random.Generator,
        context: ExplainContext,
    ) -> Explanation:
        x = as_input(x)
        comps = self.components(segments)
        extra: dict = {}
        if self.n_samples == AUTO:
            # a deterministic content (zero, min, mean) draws nothing, so the masks are exactly
            # the first rows fixed sampling would draw from the same rng
            baseline = content_baseline(self.content, x, rng)
            stream = MaskStream(rng, comps.d, self.paired)
            cap = self.max_samples if budget is None else sized(self.max_samples, budget)
            run = sample_adaptively(
                lambda zz: model.predict(comps.compose(x, zz, baseline)).numpy(), stream, target,
                k=context.headline_k, auto=self.auto_sampling(), cap=cap,
                kernel_width=self.kernel_width, alpha=self.alpha,
                projection=None if comps is segments else projection_matrix(comps, segments),
                budget_bound=budget is not None and budget < self.max_samples,
                predict_rest=self.predict_rest)
            n, fit = len(run.z), run.fit  # the fit on the masks queried, or the predicted N-sample fit
            extra.update(run.extra())
        else:
            n = sized(self.n_samples, budget)
            z = sample_masks(rng, n, comps.d, self.paired)
            baseline = content_baseline(self.content, x, rng)
            fit = lime_core(
                model, x, target, comps, z, baseline, self.kernel_width, self.alpha,
                random_state=int(rng.integers(0, 2**31 - 1)),
            )
        if comps is segments:
            weights, dense = fit.weights, None
        else:
            dense = spread(fit.weights, comps)
            weights = segments.project(dense, reduce="sum")
        extra = {"n_samples": n, "local_pred": fit.local_pred, **extra}
        if dense is not None:
            extra.update(components=list(comps.names), component_weights=fit.weights.tolist())
        return Explanation(
            weights=np.asarray(weights, dtype=np.float64),
            dense=dense,
            score=fit.score,
            intercept=fit.intercept,
            extra=extra,
        )


def projection_matrix(components: Segmentation, segments: Segmentation) -> np.ndarray:
    """The linear map from component weights to scoring-segment weights, shape (d, p).

    Column ``c`` is ``segments.project(spread(e_c, components), "sum")``: how the explainers
    that spread component weights by area (:func:`~explainers._common.spread`) place a unit
    weight of component ``c`` on the grid.
    """
    eye = np.eye(components.d)
    return np.stack([segments.project(spread(eye[c], components), reduce="sum")
                     for c in range(components.d)], axis=1)


@register_explainer("lime")
class Lime(_LimeFamily):
    """LIME on the scoring grid (SLIME time-frequency)."""

    description = "LIME on the scoring grid (SLIME time-frequency), weighted ridge surrogate"


@register_explainer("slime-time")
class SlimeTime(_LimeFamily):
    """LIME on ``n_components`` time segments, projected onto the scoring grid by area."""

    description = "SLIME time: LIME on time-only segments, projected onto the grid by area"
    dense_map = True

    def __init__(
        self,
        n_components: int = 10,
        n_samples: int | Literal["auto"] = 1024,
        kernel_width: float = 0.25,
        content: str = "mean",
        alpha: float = 1.0,
        max_samples: int = 8192,
        first_samples: int = 256,
        growth: float = 1.25,
        confidence: float = 0.97,
        paired: bool = False,
        predict_rest: bool = False,
    ) -> None:
        super().__init__(n_samples=n_samples, kernel_width=kernel_width, content=content, alpha=alpha,
                         max_samples=max_samples, first_samples=first_samples, growth=growth,
                         confidence=confidence, paired=paired, predict_rest=predict_rest)
        self.n_components = n_components

    def components(self, segments: Segmentation) -> Segmentation:
        return time_segments(segments.shape, self.n_components, time_axis=segments.time_dim)


@register_explainer("slime-freq")
class SlimeFreq(SlimeTime):
    """LIME on ``n_components`` frequency segments, projected onto the scoring grid by area."""

    description = "SLIME frequency: LIME on frequency-only segments, projected onto the grid by area"
    needs_frequency_axis = True

    def components(self, segments: Segmentation) -> Segmentation:
        return freq_segments(segments.shape, self.n_components, time_axis=segments.time_dim)
