"""Reference selectors: ``random`` (a floor) and ``oracle-norm`` (a ceiling that sees delta)."""

from __future__ import annotations

import numpy as np
import torch

from explbench.api import Explainer, Explanation, ModelAccess
from explbench.registry import register_explainer
from explbench.segmentation import Segmentation


@register_explainer("random")
class RandomWeights(Explainer):
    """Seeded standard-normal weights; no model queries."""

    description = "seeded random weights (a floor every real explainer must beat)"
    model_agnostic = True
    query_cost = "0"

    def explain(
        self,
        model: ModelAccess,
        x: torch.Tensor,
        target: int,
        segments: Segmentation,
        budget: int | None,
        rng: np.random.Generator,
    ) -> Explanation:
        with self.timed() as t:
            weights = rng.standard_normal(segments.d).astype(np.float64)
        return Explanation(weights=weights, queries=0, seconds=t.seconds)


@register_explainer("oracle-norm")
class OracleNorm(Explainer):
    """Segment energy of the true perturbation, ``E_i = sum(M_i * delta^2)``; no queries."""

    description = "segment energy of the true perturbation delta (oracle, never ranked)"
    model_agnostic = True
    oracle = True
    query_cost = "0"

    def explain(
        self,
        model: ModelAccess,
        x: torch.Tensor,
        target: int,
        segments: Segmentation,
        budget: int | None,
        rng: np.random.Generator,
        *,
        delta: torch.Tensor | np.ndarray,
    ) -> Explanation:
        """As :meth:`Explainer.explain`; ``delta`` (shape domain_shape) is the ground truth."""
        with self.timed() as t:
            weights = np.asarray(segments.energy(delta), dtype=np.float64)
        return Explanation(weights=weights, queries=0, seconds=t.seconds)
