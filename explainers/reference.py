"""Reference selectors: ``random`` (a floor) and ``oracle-norm`` (a ceiling that sees delta)."""

from __future__ import annotations

import numpy as np
import torch

from explbench.api.explainer import ExplainContext, Explainer, Explanation
from explbench.api.model_access import ModelAccess
from explbench.api.registry import register_explainer
from explbench.core.segmentation import Segmentation


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
        *,
        segments: Segmentation,
        budget: int | None,
        rng: np.random.Generator,
        context: ExplainContext,
    ) -> Explanation:
        return Explanation(weights=rng.standard_normal(segments.d).astype(np.float64))


@register_explainer("oracle-norm")
class OracleNorm(Explainer):
    """Segment energy of the true perturbation, ``E_i = sum(M_i * delta^2)``; no queries."""

    description = "segment energy of the true perturbation delta (oracle, never ranked)"
    model_agnostic = True
    oracle = True
    signed = False  # energies are never negative
    query_cost = "0"

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
        """As :meth:`Explainer.explain`; ``context.delta`` (shape domain_shape) is the ground truth."""
        if context.delta is None:
            raise ValueError("oracle-norm needs the true perturbation: context.delta is None (the "
                             "harness passes it to explainers with oracle = True)")
        return Explanation(weights=np.asarray(segments.energy(context.delta), dtype=np.float64))
