"""``kernelshap``: shap's KernelExplainer on the d binary segment features.

A coalition ``z`` in {0, 1}^d is evaluated as ``predict(compose(x, z, b))[:, target]`` with
``b`` from a content type; the background is one all-zeros row ("every segment absent") and
the explained instance the all-ones row. shap draws its coalitions from ``np.random``; that
runs inside :func:`~._common.local_seed`, seeded from ``rng``.

Queries: one for the background (when the explainer is built), one for the instance, and at
most ``nsamples`` coalitions, so ``nsamples = min(n_samples, budget - 2)``.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

with warnings.catch_warnings():  # shap's plotting colours warn about matplotlib deprecations on import
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    import shap

from explbench.api import ExplainContext, Explainer, Explanation, ModelAccess
from explbench.registry import register_explainer
from explbench.segmentation import Segmentation

from ._common import as_input, content_baseline, local_seed, quiet_logger, sized

#: queries shap adds beyond ``nsamples``: f(background) and f(instance)
FIXED_QUERIES = 2


@register_explainer("kernelshap")
class KernelShap(Explainer):
    """KernelSHAP on the scoring grid.

    Parameters
    ----------
    n_samples : int
        Coalitions to evaluate (shap's ``nsamples``), reduced to fit the budget.
    content : str
        Content type shown for absent segments.
    l1_reg : bool, float or str
        shap's feature selection; ``False`` (default) keeps all d features. shap's own default
        ``"num_features(10)"`` would keep only 10.
    """

    description = "KernelSHAP (shap.KernelExplainer) on the scoring grid, absent = content type"
    model_agnostic = True
    query_cost = "n_samples + 2"

    def __init__(self, n_samples: int = 1024, content: str = "mean", l1_reg: bool | float | str = False) -> None:
        self.n_samples = n_samples
        self.content = content
        self.l1_reg = l1_reg

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
        baseline = content_baseline(self.content, x, rng)
        nsamples = sized(self.n_samples, budget, extra=FIXED_QUERIES, what="coalitions")

        def f(z: np.ndarray) -> np.ndarray:
            """Target probability for coalitions ``z`` of shape (n, d) -> (n,)."""
            out = model.predict(segments.compose(x, np.asarray(z, dtype=np.float32), baseline))
            return out[:, target].numpy().astype(np.float64)

        with local_seed(rng), quiet_logger("shap"), warnings.catch_warnings():
            warnings.simplefilter("ignore", category=DeprecationWarning)
            explainer = shap.KernelExplainer(f, np.zeros((1, segments.d)))
            phi = explainer.shap_values(
                np.ones((1, segments.d)), nsamples=nsamples, l1_reg=self.l1_reg, silent=True
            )
        return Explanation(
            weights=np.asarray(phi, dtype=np.float64).reshape(-1),
            intercept=float(np.ravel(explainer.expected_value)[0]),
            extra={"nsamples": nsamples},
        )
