"""Gradient family (captum) on the explanation-domain input, via ``model.differentiable()``.

``saliency``, ``input-x-gradient``, ``integrated-gradients``, ``smoothgrad``,
``gradient-shap`` and ``deeplift`` each return the dense attribution for the target class
(shape domain_shape) and no weights: the harness aggregates the map per segment by the suite's
``aggregation`` ("mean" by default; "sum", "mean_pos", "mean_abs"), and scores it under each of
the suite's ``extra_aggregations`` too. Saliency and SmoothGrad with ``abs=True`` (the default)
are unsigned: their weights are never negative.

Queries are the inputs passed through the differentiable module, counted by ModelAccess:
1 (saliency, input x gradient), ``n_steps`` (integrated gradients), ``nt_samples``
(smoothgrad), ``n_samples`` (gradient SHAP), 2 (DeepLift: input and baseline); each count is
reduced to fit the budget. SmoothGrad and gradient SHAP draw noise and interpolation points
from torch's and numpy's global generators inside captum; they run inside
:func:`~._common.local_seed`, which seeds those generators from ``rng`` and restores them after.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from captum.attr import (
    DeepLift,
    GradientShap,
    InputXGradient,
    IntegratedGradients,
    NoiseTunnel,
    Saliency,
)

from explbench.api.explainer import ExplainContext, Explainer, Explanation
from explbench.api.model_access import ModelAccess
from explbench.api.registry import register_explainer
from explbench.core.segmentation import Segmentation

from ._common import as_input, content_baseline, local_seed, sized


class _Gradient(Explainer):
    """Base: run one captum attribution on ``x[None]`` and project it onto the segments."""

    model_agnostic = False
    dense_map = True

    def _attribute(
        self,
        module: torch.nn.Module,
        inp: torch.Tensor,
        target: int,
        budget: int | None,
        rng: np.random.Generator,
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Attribution of shape (1, *domain_shape) and small extra information."""
        raise NotImplementedError

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
        inp = as_input(x).unsqueeze(0)
        module = model.differentiable()
        with local_seed(rng), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*required_grads.*")
            warnings.filterwarnings("ignore", message=".*requires_grad.*")
            warnings.filterwarnings("ignore", message="Setting forward, backward hooks")
            attr, extra = self._attribute(module, inp, target, budget, rng)
        return Explanation(weights=None, dense=attr.detach()[0].to(torch.float64).numpy(), extra=extra)


@register_explainer("saliency")
class SaliencyExplainer(_Gradient):
    """Gradient of the target probability (absolute by default, as in Simonyan et al.)."""

    description = "saliency: gradient of the target probability (captum Saliency)"
    query_cost = "1"

    def __init__(self, abs: bool = True) -> None:  # noqa: A002 - captum's name
        self.abs = abs

    @property
    def signed(self) -> bool:  # type: ignore[override]
        """Absolute gradients are never negative."""
        return not self.abs

    def _attribute(self, module, inp, target, budget, rng):
        sized(1, budget)
        return Saliency(module).attribute(inp, target=target, abs=self.abs), {}


@register_explainer("input-x-gradient")
class InputXGradientExplainer(_Gradient):
    """Input times gradient of the target probability."""

    description = "input x gradient (captum InputXGradient)"
    query_cost = "1"

    def _attribute(self, module, inp, target, budget, rng):
        sized(1, budget)
        return InputXGradient(module).attribute(inp, target=target), {}


@register_explainer("integrated-gradients")
class IntegratedGradientsExplainer(_Gradient):
    """Integrated gradients from a content-type baseline.

    Parameters
    ----------
    n_steps : int
        Integration points (queries), reduced to fit the budget.
    content : str
        Content type of the baseline.
    method : str
        captum's quadrature ("gausslegendre", "riemann_trapezoid", ...).
    internal_batch_size : int
        Points per forward pass (memory only; queries are ``n_steps`` either way).
    """

    description = "integrated gradients from a content-type baseline (captum)"
    query_cost = "n_steps"

    def __init__(
        self, n_steps: int = 32, content: str = "mean", method: str = "gausslegendre",
        internal_batch_size: int = 32,
    ) -> None:
        self.n_steps = n_steps
        self.content = content
        self.method = method
        self.internal_batch_size = internal_batch_size

    def _attribute(self, module, inp, target, budget, rng):
        n = sized(self.n_steps, budget, what="integration steps")
        base = content_baseline(self.content, inp[0], rng).unsqueeze(0)
        attr = IntegratedGradients(module).attribute(
            inp, baselines=base, target=target, n_steps=n, method=self.method,
            internal_batch_size=self.internal_batch_size,
        )
        return attr, {"n_steps": n}


@register_explainer("smoothgrad")
class SmoothGradExplainer(_Gradient):
    """SmoothGrad: saliency averaged over Gaussian-perturbed copies of the input.

    Parameters
    ----------
    nt_samples : int
        Noisy copies (queries), reduced to fit the budget.
    noise_level : float
        Noise standard deviation as a fraction of the input's value range (0.15 as in
        Smilkov et al.).
    abs : bool
        Absolute gradients (captum's Saliency default).
    batch_size : int
        Noisy copies per forward pass (memory only).
    """

    description = "SmoothGrad: noise-averaged saliency (captum NoiseTunnel over Saliency)"
    query_cost = "nt_samples"

    def __init__(self, nt_samples: int = 32, noise_level: float = 0.15, abs: bool = True,  # noqa: A002
                 batch_size: int = 32) -> None:
        self.nt_samples = nt_samples
        self.noise_level = noise_level
        self.abs = abs
        self.batch_size = batch_size

    @property
    def signed(self) -> bool:  # type: ignore[override]
        """Absolute gradients are never negative."""
        return not self.abs

    def _attribute(self, module, inp, target, budget, rng):
        n = sized(self.nt_samples, budget, what="noisy samples")
        stdev = self.noise_level * float(inp.max() - inp.min())
        attr = NoiseTunnel(Saliency(module)).attribute(
            inp, nt_type="smoothgrad", nt_samples=n, nt_samples_batch_size=self.batch_size,
            stdevs=stdev, target=target, abs=self.abs,
        )
        return attr, {"nt_samples": n, "stdev": stdev}


@register_explainer("gradient-shap")
class GradientShapExplainer(_Gradient):
    """Gradient SHAP (expected gradients) against a set of content-type baselines.

    Parameters
    ----------
    n_samples : int
        Random (baseline, interpolation point) draws (queries), reduced to fit the budget.
    content : str
        Content type of the baselines; with a random type ("noise", the default) each of the
        ``n_baselines`` baselines is a fresh draw from ``rng``.
    n_baselines : int
        Size of the baseline distribution.
    stdevs : float
        Standard deviation of Gaussian noise added to the input per draw (captum default 0).
    """

    description = "gradient SHAP / expected gradients against content-type baselines (captum)"
    query_cost = "n_samples"

    def __init__(self, n_samples: int = 32, content: str = "noise", n_baselines: int = 8,
                 stdevs: float = 0.0) -> None:
        self.n_samples = n_samples
        self.content = content
        self.n_baselines = n_baselines
        self.stdevs = stdevs

    def _attribute(self, module, inp, target, budget, rng):
        n = sized(self.n_samples, budget)
        bases = torch.stack([content_baseline(self.content, inp[0], rng) for _ in range(self.n_baselines)])
        attr = GradientShap(module).attribute(
            inp, baselines=bases, n_samples=n, stdevs=self.stdevs, target=target
        )
        return attr, {"n_samples": n}


@register_explainer("deeplift")
class DeepLiftExplainer(_Gradient):
    """DeepLIFT (rescale rule) from a content-type baseline.

    captum's DeepLift hooks ``torch.nn`` non-linearity modules: a model that uses functional
    non-linearities (``F.relu``) silently gets plain gradients x (input - baseline) there, and a
    model that reuses one non-linearity module in several places is rejected by captum. In the
    latter case (captum raises) this explainer falls back to ``integrated-gradients`` with the
    same baseline and ``fallback_steps`` steps and records ``extra["fallback"]``; pass
    ``fallback=False`` to raise instead.
    """

    description = "DeepLIFT rescale rule from a content-type baseline (captum DeepLift)"
    query_cost = "2"

    def __init__(self, content: str = "mean", fallback: bool = True, fallback_steps: int = 32) -> None:
        self.content = content
        self.fallback = fallback
        self.fallback_steps = fallback_steps

    def _attribute(self, module, inp, target, budget, rng):
        sized(2, budget)
        base = content_baseline(self.content, inp[0], rng).unsqueeze(0)
        try:
            return DeepLift(module).attribute(inp, baselines=base, target=target), {}
        except (AssertionError, RuntimeError) as exc:
            if not self.fallback:
                raise RuntimeError(
                    f"captum DeepLift rejected the model ({exc}); build its non-linearities from "
                    f"distinct torch.nn modules, or use integrated-gradients"
                ) from exc
            n = sized(self.fallback_steps, budget - 2 if budget is not None else None)
            attr = IntegratedGradients(module).attribute(inp, baselines=base, target=target, n_steps=n)
            return attr, {"fallback": "integrated-gradients", "reason": str(exc)[:200], "n_steps": n}
