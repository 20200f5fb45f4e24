"""``occlusion``: remove one segment at a time (captum FeatureAblation, grid as feature mask).

The weight of segment i is the drop of the target probability when segment i shows the
content-type baseline instead of ``x``: ``p(x) - p(x with segment i removed)``. Uses only
``predict`` (model-agnostic), d + 1 queries in two ``predict`` calls.
"""

from __future__ import annotations

import numpy as np
import torch
from captum.attr import FeatureAblation

from explbench.api.explainer import ExplainContext, Explainer, Explanation
from explbench.api.model_access import ModelAccess
from explbench.api.registry import register_explainer
from explbench.core.segmentation import Segmentation

from ._common import as_input, content_baseline


@register_explainer("occlusion")
class Occlusion(Explainer):
    """Occlusion of each scoring segment by a content type.

    Parameters
    ----------
    content : str
        Content type shown in the removed segment.
    """

    description = "occlusion: drop in target probability when one segment is removed (captum FeatureAblation)"
    model_agnostic = True
    query_cost = "d + 1"

    def __init__(self, content: str = "mean") -> None:
        self.content = content

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
        d = segments.d
        if budget is not None and budget < d + 1:
            raise ValueError(
                f"occlusion needs d + 1 = {d + 1} queries but the budget is {budget}; raise the "
                f"budget or use a coarser segmentation"
            )
        x = as_input(x)
        base = content_baseline(self.content, x, rng).unsqueeze(0)
        labels = segments.labels()
        labels[labels < 0] = d  # uncovered cells: one extra feature, ignored below
        n_features = int(labels.max()) + 1
        mask = torch.from_numpy(labels).unsqueeze(0)
        attr = FeatureAblation(model.predict).attribute(
            x.unsqueeze(0), baselines=base, target=target, feature_mask=mask,
            perturbations_per_eval=n_features,
        )
        weights = segments.project(attr[0].to(torch.float64), reduce="mean")
        return Explanation(weights=np.asarray(weights, dtype=np.float64))
