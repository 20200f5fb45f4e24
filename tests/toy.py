"""Toy models shared by the explainer tests.

``segment_model`` depends on exactly one grid segment, so every sound explainer must rank that
segment first. ``run_explainer`` calls an explainer as the harness does; ``ToyTask`` wraps a
classifier as a task for the protocol's Scorer. ``realistic_cnn`` is a randomly initialised Schlueter-Lehner-shaped CNN
(80 x 115 log-mel -> 2 classes) for overhead measurements:

    python tests/toy.py            # LIME overhead at 1024 samples vs the pure forward
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from explbench.api import Task
from explbench.api.explainer import ExplainContext, Explainer, call_explain
from explbench.api.model_access import ModelAccess
from explbench.checks.fixtures import _ToyFrontEnd, known_cause_model
from explbench.protocol.validate import validate_explanation
from explbench.core.segmentation import Segmentation, grid

DOMAIN = (80, 115)


def segment_model(
    segments: Segmentation,
    index: int,
    domain_shape: tuple[int, ...] = DOMAIN,
    threshold: float = 0.5,
    scale: float = 4.0,
    target: int = 1,
) -> nn.Module:
    """Classifier whose output depends only on the mean of segment ``index``.

    ``p(target) = sigmoid(2 * scale * (mean of x over segment index - threshold))``, built from
    ``nn`` modules only (Flatten, Linear, Softmax) so that every captum method applies
    (:func:`explbench.checks.fixtures.known_cause_model`).

    Returns
    -------
    torch.nn.Module mapping (N, *domain_shape) -> (N, 2) probabilities, in eval mode
    """
    if tuple(segments.shape) != tuple(domain_shape):
        raise ValueError(f"segments cover {segments.shape}, not {domain_shape}")
    return known_cause_model(segments, index, target, threshold, scale)


def run_explainer(explainer: Explainer, model: nn.Module, x: torch.Tensor, segments: Segmentation,
                  target: int = 1, budget: int | None = None, seed: int = 0,
                  context: ExplainContext | None = None, batch_size: int = 256):
    """``explainer.explain`` called as the harness calls it; returns (Explanation, ModelAccess).

    The Explanation's ``queries`` and ``seconds`` are filled in as the harness does.
    """
    access = ModelAccess(model, batch_size=batch_size)
    e, seconds = call_explain(explainer, access, x, target, segments=segments, budget=budget,
                              rng=np.random.default_rng(seed), context=context or ExplainContext())
    e.queries, e.seconds = access.queries, seconds
    return e, access


def weights_of(e, segments: Segmentation, aggregation: str = "mean") -> np.ndarray:
    """The weights the protocol scores (its validation; a dense map projected by ``aggregation``)."""
    return validate_explanation(e, segments, "explainer", aggregation)


class ToyTask(Task):
    """A task around a given classifier, for the Scorer: two classes, argmax decision, the
    conformance check's log band spectrogram as its front-end (so audio explainers work)."""

    name = "toy"
    classes = ("off", "on")
    sample_rate = 22050
    excerpt_samples = 36934

    def __init__(self, model: nn.Module, domain_shape: tuple[int, ...] = DOMAIN) -> None:
        self.model = model
        self.domain_shape = tuple(domain_shape)
        self._frontend = _ToyFrontEnd().eval()

    def to_domain(self, audio: torch.Tensor) -> torch.Tensor:
        return self._frontend(audio)

    def classifier(self) -> nn.Module:
        return self.model

    def excerpts(self, split, n, seed):  # pragma: no cover - the toy task has no data
        raise NotImplementedError


def segment_input(segments: Segmentation, index: int, seed: int = 0, lift: float = 1.0) -> torch.Tensor:
    """Noise input (std 0.5) with segment ``index`` raised by ``lift``: the segment matters.

    Returns
    -------
    torch.Tensor, shape segments.shape, float32
    """
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(0.5 * rng.standard_normal(segments.shape).astype(np.float32))
    return x + lift * segments.masks[index]


class _SLCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        act = lambda: nn.LeakyReLU(0.01)  # noqa: E731 - distinct modules (DeepLift-friendly)
        self.features = nn.Sequential(
            nn.Conv2d(1, 64, 3), act(), nn.Conv2d(64, 32, 3), act(), nn.MaxPool2d(3),
            nn.Conv2d(32, 128, 3), act(), nn.Conv2d(128, 64, 3), act(), nn.MaxPool2d(3),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.5), nn.Linear(4928, 256), act(), nn.Dropout(0.5),
            nn.Linear(256, 64), act(), nn.Dropout(0.5), nn.Linear(64, 1), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.head(self.features(x.unsqueeze(1)))
        return torch.cat([1 - p, p], dim=1)


def realistic_cnn(seed: int = 0) -> nn.Module:
    """Schlueter-Lehner-shaped CNN, random weights: (N, 80, 115) -> (N, 2) probabilities."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _SLCNN().eval().requires_grad_(False)


class TimedModel(nn.Module):
    """Wraps a model and accumulates the seconds spent in its forward."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.seconds = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import time

        t0 = time.perf_counter()
        out = self.inner(x)
        self.seconds += time.perf_counter() - t0
        return out


def lime_overhead(n_samples: int = 1024, model: nn.Module | None = None, batch_size: int = 8,
                  seed: int = 0) -> dict[str, float]:
    """Seconds of one LIME explanation, of the model forwards inside it, and the rest."""
    from explbench.explainers.lime import Lime

    seg = grid(DOMAIN)
    timed = TimedModel(model if model is not None else realistic_cnn(seed))
    x = segment_input(seg, 5, seed)
    e, _ = run_explainer(Lime(n_samples=n_samples), timed, x, seg, seed=seed, batch_size=batch_size)
    forward = timed.seconds
    return {
        "n_samples": n_samples, "total_s": e.seconds, "forward_s": forward,
        "overhead_s": e.seconds - forward, "overhead_fraction": (e.seconds - forward) / forward,
        "forward_ms_per_input": 1000 * forward / n_samples,
    }


if __name__ == "__main__":  # pragma: no cover
    torch.set_num_threads(torch.get_num_threads())
    lime_overhead(64)  # warm-up
    for k, v in lime_overhead(1024).items():
        print(f"{k:22s} {v:.4g}" if isinstance(v, float) else f"{k:22s} {v}")
