"""A tiny task, generator and explainers for the fault-injection tests (``--plugin`` this file).

``toy-one-segment`` classifies a 16 x 20 "spectrogram" (its audio is the domain, reshaped) by
the mean of one grid segment (5 x 4 grid: 20 segments of 4 x 4). Its model lives in a JSON file
(``weights`` task parameter): which segment it looks at. It declares no ``model_hash`` and no
``data_version``, as a user's first task would not. ``toy-lift`` makes cases by raising or
lowering the one segment whose change flips the decision. The explainers misbehave on purpose.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from explbench import (Excerpt, Explainer, Explanation, Generator, Task, register_explainer,
                       register_generator, register_task)
from explbench.core.cases import Case
from explbench.core.segmentation import grid

SHAPE = (16, 20)
_HAS_NECESSARY = "necessary_segments" in getattr(Case, "__dataclass_fields__", {})
SPLITS = {"train": 0, "valid": 1, "test": 2}


def _model(segment: int, threshold: float = 0.0, scale: float = 8.0) -> nn.Module:
    seg = grid(SHAPE)
    m = seg.masks[segment].reshape(-1).to(torch.float32)
    m = m / m.sum()
    lin = nn.Linear(m.numel(), 2)
    with torch.no_grad():
        lin.weight.copy_(torch.stack([-scale * m, scale * m]))
        lin.bias.copy_(torch.tensor([scale * threshold, -scale * threshold]))
    return nn.Sequential(nn.Flatten(), lin, nn.Softmax(dim=1)).eval().requires_grad_(False)


class _Opaque(nn.Module):
    """The same function with its weights hidden from ``state_dict`` (plain attributes)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        lin = inner[1]
        self.__dict__["w"] = lin.weight.detach().clone()
        self.__dict__["b"] = lin.bias.detach().clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x.reshape(x.shape[0], -1) @ self.w.T + self.b, dim=1)


@register_task("toy-one-segment")
class ToyTask(Task):
    """A classifier that looks at one segment of a 16 x 20 domain (fault tests)."""

    name = "toy-one-segment"
    version = "1"
    classes = ("off", "on")
    sample_rate = 1000
    excerpt_samples = SHAPE[0] * SHAPE[1]
    domain_shape = SHAPE
    domain_axes = ("band", "frame")

    def __init__(self, weights: str | None = None, device: str = "cpu") -> None:
        spec = json.loads(Path(weights).read_text()) if weights else {"segment": 5}
        self.segment = int(spec["segment"])
        self._net = _model(self.segment, float(spec.get("threshold", 0.0)))
        if spec.get("opaque"):  # a model whose weights are not in a state_dict
            self._net = _Opaque(self._net)

    def to_domain(self, audio: torch.Tensor) -> torch.Tensor:
        return audio.reshape(audio.shape[0], *SHAPE)

    def classifier(self) -> nn.Module:
        return self._net

    def excerpts(self, split: str, n: int, seed: int):
        rng = np.random.default_rng([seed, SPLITS[split]])
        for i in range(n):
            audio = (0.5 * rng.standard_normal(self.excerpt_samples)).astype(np.float32)
            yield Excerpt(audio=audio, label=int(i % 2), song_seed=1000 * SPLITS[split] + i, offset=0.0)


@register_generator("toy-lift")
class ToyLift(Generator):
    """Cases made by moving the one segment whose change flips the decision."""

    def __init__(self, lift: float = 3.0, claim: bool = True) -> None:
        self.lift = lift
        self.claim = claim

    def generate(self, task, segments, n, seed, *, split="test", progress=True, per_cluster=1):
        clf = task.classifier()
        cases = []
        for i, ex in enumerate(task.excerpts(split, n, seed)):
            x = task.to_domain(torch.from_numpy(ex.audio)[None])[0]
            with torch.inference_mode():
                original = int(clf(x[None]).argmax(1))
            sign = 1.0 if original == 0 else -1.0
            trials = torch.stack([x + sign * self.lift * segments.masks[s] for s in range(segments.d)])
            with torch.inference_mode():
                decided = clf(trials).argmax(1).numpy()
            hits = np.flatnonzero(decided != original)
            if not len(hits):
                continue
            s = int(hits[0])
            necessary = {"necessary_segments": (s,) if self.claim else None} if _HAS_NECESSARY else {}
            cases.append(Case(
                case_id=f"toy-lift/{i:04d}", generator="toy-lift", x=x.numpy().copy(),
                x_mod=trials[s].numpy().copy(), original=original, target=1 - original,
                domain="planted", true_segments=(s,) if self.claim else None, **necessary,
                info={"cluster": str(ex.song_seed), "song_seed": ex.song_seed, "segment": s}))
        return cases, {"attempted": n, "succeeded": len(cases)}


def _means(x: torch.Tensor, segments) -> np.ndarray:
    m = segments.masks
    return ((m * x).sum(dim=(1, 2)) / m.sum(dim=(1, 2))).double().numpy()


class _Toy(Explainer):
    model_agnostic = True

    def weights(self, model, x, target, segments) -> np.ndarray:
        w = _means(x, segments)
        return w if target == 1 else -w


@register_explainer("toy-exact")
class ToyExact(_Toy):
    """Weights = the mean of each segment (signed for the target): finds the lifted segment."""

    def explain(self, model, x, target, segments=None, budget=None, rng=None, context=None, **kw):
        return Explanation(weights=self.weights(model, x, target, segments))


@register_explainer("toy-slow")
class ToySlow(_Toy):
    """toy-exact, but it waits while the file ``gate`` exists (at most 300 s): a test holds a
    run in the middle of its first explanation, with its run folder locked."""

    def __init__(self, gate: str = "") -> None:
        self.gate = gate

    def explain(self, model, x, target, segments=None, budget=None, rng=None, context=None, **kw):
        t0 = time.monotonic()
        while self.gate and Path(self.gate).exists() and time.monotonic() - t0 < 300:
            time.sleep(0.05)
        return Explanation(weights=self.weights(model, x, target, segments))


@register_explainer("toy-nan")
class ToyNaN(_Toy):
    """Good weights, but NaN intercept and score, and numpy values and NaN in ``extra``."""

    def explain(self, model, x, target, segments=None, budget=None, rng=None, context=None, **kw):
        return Explanation(weights=self.weights(model, x, target, segments), intercept=float("nan"),
                           score=float("nan"),
                           extra={"nan": float("nan"), "inf": np.inf, "arr": np.arange(3),
                                  "scalar": np.float32(1.5), "nested": {"a": np.array([0.5, np.nan])}})


@register_explainer("toy-object")
class ToyObject(_Toy):
    """Good weights, and an object JSON cannot hold in ``extra``."""

    def explain(self, model, x, target, segments=None, budget=None, rng=None, context=None, **kw):
        return Explanation(weights=self.weights(model, x, target, segments), extra={"model": object()})


@register_explainer("toy-hang")
class ToyHang(_Toy):
    """Never returns on cases whose target is 1 (a hanging plug-in); fine on the others."""

    def explain(self, model, x, target, segments=None, budget=None, rng=None, context=None, **kw):
        while target == 1:
            time.sleep(0.05)
        return Explanation(weights=self.weights(model, x, target, segments))
