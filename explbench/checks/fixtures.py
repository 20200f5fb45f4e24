"""Fixtures of the checks: toy classifiers with a known cause, a toy front-end and audio, the geometries and probes the explainer rules run on."""

from __future__ import annotations

import math
from dataclasses import dataclass
import numpy as np
import torch
from torch import nn
from explbench.api.explainer import AudioContext, Explainer
from explbench.core.segmentation import Segmentation, from_spec, grid

#: sample rate and length of the toy audio (s = 36934 / 22050 = 1.675)
AUDIO_RATE, AUDIO_SAMPLES = 22050, 36934


#: shape of the basic toy explanation domain (bands, frames), as for singing-voice detection
DOMAIN: tuple[int, int] = (80, 115)


def toy_classifier() -> nn.Module:
    """A deterministic two-class classifier (N, 80, 115) -> (N, 2) probabilities.

    Flatten, Linear(9200, 16), Tanh, Linear(16, 2), Softmax, weights from a fixed seed; only
    ``torch.nn`` modules, so every captum method (DeepLift included) applies.
    """
    g = torch.Generator().manual_seed(1234)
    n_in = DOMAIN[0] * DOMAIN[1]
    with torch.random.fork_rng(devices=[]):  # nn.Linear's default init draws from torch's global RNG
        l1, l2 = nn.Linear(n_in, 16), nn.Linear(16, 2)
    with torch.no_grad():
        l1.weight.copy_(torch.randn(16, n_in, generator=g) * (2.0 / math.sqrt(n_in)))
        l1.bias.zero_()
        l2.weight.copy_(torch.randn(2, 16, generator=g))
        l2.bias.zero_()
    return nn.Sequential(nn.Flatten(), l1, nn.Tanh(), l2, nn.Softmax(dim=1)).eval().requires_grad_(False)


def toy_problem(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, Segmentation]:
    """The toy input ``x`` (80, 115), a perturbation ``delta`` (80, 115) and the 5 x 4 grid."""
    rng = np.random.default_rng(10_000 + seed)
    x = torch.from_numpy(rng.standard_normal(DOMAIN).astype(np.float32))
    seg = grid(DOMAIN, 5, 4)
    delta = torch.from_numpy(0.1 * rng.standard_normal(DOMAIN).astype(np.float32)) * seg.masks[6]
    return x, delta, seg


def known_cause_model(segments: Segmentation, cause: int, target: int = 1, threshold: float = 0.5,
                      scale: float = 4.0) -> nn.Module:
    """A two-class classifier whose only cause is segment ``cause``.

    ``p(target) = sigmoid(2 * scale * (mean of x over segment cause - threshold))`` and the other
    class gets the rest; built from ``nn`` modules only (Flatten, Linear, Softmax), so every
    captum method applies.

    Parameters
    ----------
    segments : Segmentation over the domain
    cause : int
        The segment that decides the output.
    target : int
        The class (0 or 1) that the segment is evidence for.
    threshold, scale : float

    Returns
    -------
    torch.nn.Module mapping (N, *segments.shape) -> (N, 2) probabilities, in eval mode
    """
    if target not in (0, 1):
        raise ValueError(f"target must be 0 or 1, got {target}")
    m = segments.masks[cause].reshape(-1).to(torch.float32)
    m = m / m.sum()
    with torch.random.fork_rng(devices=[]):
        lin = nn.Linear(m.numel(), 2)
    sign = torch.tensor([-1.0, 1.0]) if target == 1 else torch.tensor([1.0, -1.0])
    with torch.no_grad():
        lin.weight.copy_(sign[:, None] * scale * m[None])
        lin.bias.copy_(-sign * scale * threshold)
    return nn.Sequential(nn.Flatten(), lin, nn.Softmax(dim=1)).eval().requires_grad_(False)


class _ToyFrontEnd(nn.Module):
    """Waveform ``(B, 36934)`` to a log band spectrogram: |STFT| (frame 1024, hop ``hop``, no
    padding) averaged over ``bands`` equal groups of bins, then log(max(x, 1e-7)); shape
    ``(B, bands, frames)``, or ``(B, frames, bands)`` when ``time_major``.

    Self-contained, so the conformance check depends on no particular task.
    """

    def __init__(self, bands: int = DOMAIN[0], hop: int = 315, time_major: bool = False) -> None:
        super().__init__()
        self.hop, self.time_major = hop, time_major
        self.register_buffer("window", torch.hann_window(1024), persistent=False)
        groups = np.array_split(np.arange(1, 513), bands)
        pool = torch.zeros(bands, 513)
        for band, bins in enumerate(groups):
            pool[band, bins] = 1.0 / len(bins)
        self.register_buffer("pool", pool, persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave, n_fft=1024, hop_length=self.hop, window=self.window, center=False,
                          return_complex=True).abs()
        out = torch.log(torch.clamp(self.pool @ spec, min=1e-7))
        return out.transpose(-1, -2) if self.time_major else out


def toy_audio(seed: int = 0, bands: int = DOMAIN[0], hop: int = 315, time_major: bool = False,
              stems: bool = True) -> AudioContext:
    """A synthetic waveform for explainers that need audio, with its two stems.

    ``"tone"``: a harmonic tone changing pitch every 0.42 s; ``"noise"``: decaying noise bursts;
    both seeded, adding up to ``audio`` (36934 samples at 22.05 kHz). ``to_domain`` is a log band
    spectrogram (:class:`_ToyFrontEnd`); the defaults give ``(B, 80, 115)``, on which
    :func:`toy_classifier` works. ``stems=False`` leaves them out (what ranked explainers get).
    """
    rng = np.random.default_rng(20_000 + seed)
    t = np.arange(AUDIO_SAMPLES) / AUDIO_RATE
    f0 = rng.uniform(150.0, 600.0, size=5)[np.minimum((t / 0.42).astype(int), 4)]
    phase = 2 * np.pi * np.cumsum(f0) / AUDIO_RATE
    tone = 0.2 * (np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.25 * np.sin(3 * phase))
    onsets = np.sort(rng.uniform(0.0, t[-1], size=6))
    env = sum(np.where(t >= o, np.exp(-(t - o) / 0.05), 0.0) for o in onsets)
    noise = 0.15 * env * rng.standard_normal(AUDIO_SAMPLES)
    parts = {"tone": tone.astype(np.float32), "noise": noise.astype(np.float32)}
    frontend = _ToyFrontEnd(bands, hop, time_major).eval()
    return AudioContext(audio=parts["tone"] + parts["noise"], stems=parts if stems else None,
                        sample_rate=AUDIO_RATE, to_domain=frontend)


@dataclass(frozen=True)
class Geometry:
    """A domain and a grid the probes run on.

    Attributes
    ----------
    label : str
        How messages name it.
    shape : tuple of int
        The domain shape.
    spec : str
        The segmentation (:func:`~explbench.core.segmentation.from_spec`).
    time_axis : int
        0 for a time-major domain, 1 for bands x frames.
    hop : int
        Hop (samples) of the toy front-end giving this shape, for explainers that need audio.
    """

    label: str
    shape: tuple[int, int]
    spec: str
    time_axis: int
    hop: int

    def segments(self) -> Segmentation:
        return from_spec(self.spec, self.shape, time_axis=self.time_axis)

    def audio(self, seed: int, stems: bool) -> AudioContext:
        bands = self.shape[1 - self.time_axis]
        return toy_audio(seed, bands=bands, hop=self.hop, time_major=self.time_axis == 0, stems=stems)


GEOMETRIES: tuple[Geometry, ...] = (
    Geometry("80 x 115 bands x frames, grid 5x4", (80, 115), "grid:5x4", 1, 315),
    Geometry("50 x 37 frames x bands (time-major), grid 3x2 of uneven segments", (50, 37), "grid:3x2", 0, 730),
)


@dataclass(frozen=True)
class Probe:
    """A known-cause problem: ``cause`` (a low-frequency segment, where the toy audio sounds) is
    the only evidence for class ``target``."""

    geometry: Geometry
    cause: int
    target: int

    @property
    def label(self) -> str:
        return f"{self.geometry.label}, cause segment {self.cause}, target {self.target}"


PROBES: tuple[Probe, ...] = (
    Probe(GEOMETRIES[0], 4, 1), Probe(GEOMETRIES[0], 12, 0),
    Probe(GEOMETRIES[0], 16, 1), Probe(GEOMETRIES[0], 8, 0),
    Probe(GEOMETRIES[1], 2, 1), Probe(GEOMETRIES[1], 4, 0),
)


@dataclass
class _Problem:
    model: nn.Module
    x: torch.Tensor
    delta: torch.Tensor
    segments: Segmentation
    target: int
    audio: AudioContext | None
    label: str


def _basic_problem(ex: Explainer, seed: int) -> _Problem:
    x, delta, seg = toy_problem(seed)
    audio = None
    if getattr(ex, "needs_audio", False):
        audio = toy_audio(seed, stems=bool(getattr(ex, "oracle", False)))
        with torch.no_grad():
            x = audio.to_domain(torch.from_numpy(audio.audio)[None])[0].clone()
    return _Problem(toy_classifier(), x, delta, seg, 1, audio, "the basic toy problem")


def _probe_problem(ex: Explainer, probe: Probe, seed: int) -> _Problem:
    seg = probe.geometry.segments()
    mask = seg.masks[probe.cause]
    audio = None
    if getattr(ex, "needs_audio", False):
        audio = probe.geometry.audio(seed, stems=bool(getattr(ex, "oracle", False)))
        with torch.no_grad():
            x = audio.to_domain(torch.from_numpy(audio.audio)[None])[0].clone()
        # decided as the target by a margin: p(target) = sigmoid(2) = 0.88
        threshold = float((x * mask).sum() / mask.sum()) - 0.25
    else:
        rng = np.random.default_rng(30_000 + seed + probe.cause)
        x = torch.from_numpy(0.5 * rng.standard_normal(seg.shape).astype(np.float32)) + mask
        threshold = 0.5
    model = known_cause_model(seg, probe.cause, probe.target, threshold)
    return _Problem(model, x, mask.clone(), seg, probe.target, audio, probe.label)
