"""LIME family: ``lime`` (SLIME time-frequency on the scoring grid), ``slime-time``, ``slime-freq``.

One core, :func:`lime_core`, serves all three (its fitting half, :func:`fit_surrogate`, also
serves ``audiolime``): a batched neighbourhood (every perturbed input composed in one tensor
expression and queried in one ``predict`` call), cosine distances of
the binary masks to the all-ones row, the kernel ``sqrt(exp(-d^2 / w^2))`` and the surrogate
fitted by the ``lime`` package's :class:`lime.lime_base.LimeBase` with a weighted
``Ridge(alpha, fit_intercept=True)`` on all features.

The neighbourhood, its distances and kernel come from :mod:`explbench.neighbourhood`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from lime.lime_base import LimeBase
from sklearn.linear_model import Ridge

from explbench.api import ExplainContext, Explainer, Explanation, ModelAccess
from explbench.neighbourhood import cosine_to_ones, lime_kernel, sample_masks
from explbench.registry import register_explainer
from explbench.segmentation import Segmentation, freq_segments, time_segments

from ._common import as_input, content_baseline, sized, spread


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


class _LimeFamily(Explainer):
    """LIME on some components; weights on the scoring grid (via a dense map if they differ)."""

    model_agnostic = True
    query_cost = "n_samples"

    def __init__(
        self,
        n_samples: int = 1024,
        kernel_width: float = 0.25,
        content: str = "mean",
        alpha: float = 1.0,
    ) -> None:
        self.n_samples = n_samples
        self.kernel_width = kernel_width
        self.content = content
        self.alpha = alpha

    def components(self, segments: Segmentation) -> Segmentation:
        """The interpretable components LIME switches on and off."""
        return segments

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
        n = sized(self.n_samples, budget)
        z = sample_masks(rng, n, comps.d)
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
        extra = {"n_samples": n, "local_pred": fit.local_pred}
        if dense is not None:
            extra.update(components=list(comps.names), component_weights=fit.weights.tolist())
        return Explanation(
            weights=np.asarray(weights, dtype=np.float64),
            dense=dense,
            score=fit.score,
            intercept=fit.intercept,
            extra=extra,
        )


@register_explainer("lime")
class Lime(_LimeFamily):
    """LIME on the scoring grid (SLIME time-frequency)."""

    description = "LIME on the scoring grid (SLIME time-frequency), weighted ridge surrogate"


@register_explainer("slime-time")
class SlimeTime(_LimeFamily):
    """LIME on ``n_components`` time segments, projected onto the scoring grid by area."""

    description = "SLIME time: LIME on time-only segments, projected onto the grid by area"
    dense_map = True

    def __init__(self, n_components: int = 10, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n_components = n_components

    def components(self, segments: Segmentation) -> Segmentation:
        return time_segments(segments.shape, self.n_components, time_axis=segments.time_dim)


@register_explainer("slime-freq")
class SlimeFreq(SlimeTime):
    """LIME on ``n_components`` frequency segments, projected onto the scoring grid by area."""

    description = "SLIME frequency: LIME on frequency-only segments, projected onto the grid by area"

    def components(self, segments: Segmentation) -> Segmentation:
        return freq_segments(segments.shape, self.n_components, time_axis=segments.time_dim)
