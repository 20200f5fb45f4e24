"""audioLIME: LIME on source components (sources x time segments), with a listenable answer.

After Haunschmid, Manilow and Widmer (audioLIME, 2020), written for explbench's contract.

Two explainers. ``audiolime`` (ranked) separates the waveform it is given -- the *modified* mix,
``context.audio.audio`` -- with a separator that cannot see the perturbation: ``"nmf"`` (the
default), ``"hpss"`` or a callable (see :mod:`explbench.explainers.separators`).
``audiolime-oracle`` uses the sources the harness hands to oracles instead: the clean stems plus
the protocol's "perturbation" source, i.e. the answer itself as one of its components; it is an
oracle (shown beside the others, never ranked).

Components. The waveform behind the input (``AudioContext.audio``, ``n`` samples) is split into
sources, and each source into ``n_time`` equal time segments with 5 ms raised-cosine
crossfades. The segment windows add up to one, and the sources add up
to the audio, so the ``d = n_sources * n_time`` component waveforms ``C`` (d, n) add up to the
audio: keeping every component reproduces the input. Sources 80 dB or more below the audio
(e.g. the "perturbation" of an unmodified input) are dropped as silent (``extra["silent"]``).

Neighbourhood. ``z`` (N, d) ~ Bernoulli(0.5) with the all-ones row first; the composition of
row ``z`` is the waveform ``z @ C`` (a removed component is silence), mapped to the explanation
domain by ``AudioContext.to_domain`` in batches and classified by ``model.predict``. The
surrogate is LIME's, shared with the ``lime`` explainer (:func:`~explbench.explainers.lime.
fit_surrogate`: cosine distance to the all-ones row, kernel ``sqrt(exp(-d^2 / w^2))``,
weighted ``Ridge(alpha)``), giving one weight ``w_c`` per component, its score and intercept.

Projection onto the scoring grid. The explanation is returned as a dense map over the domain,
and the harness aggregates it per scoring segment (suite key ``aggregation``; with "sum" the
weights add up to the component weights). Component ``c`` owns, in each domain cell, its
share of the magnitude there, ``s_c = P_c / sum_c' P_c'`` with ``P_c = exp(to_domain(C_c))`` (the
mel magnitude, as the domain is a log-magnitude); its weight is spread over the cells in
proportion to that share, ``dense = sum_c w_c s_c / sum(s_c)``, so summing the map over all
cells gives back ``sum_c w_c`` and a component's weight lands where it dominates. Silence
holds no share: the denominator carries a gate ``SILENCE_DB`` (80 dB) below the loudest cell's
total, so cells where every component sits at the log floor (where plain shares would split
evenly, 1/d each) take almost nothing. Shares, not magnitudes, because the domain is
logarithmic: a quiet source changes the log-mel most where it is not masked by louder ones.

Listening. ``Explanation.audio`` is the sum of the ``top`` components with the largest positive
weights (at least the single largest component); :func:`write_wav` writes it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import torch

from explbench.api.explainer import AudioContext, ExplainContext, Explainer, Explanation
from explbench.api.model_access import ModelAccess
from explbench.api.registry import register_explainer
from explbench.core.segmentation import Segmentation

from ._common import AUTO, AutoSampling, as_input, check_sampling, sized
from .lime import MaskStream, fit_surrogate, sample_adaptively, sample_masks
from .separators import ROUND_OFF, Separator, complete, resolve

#: compositions rendered and classified per chunk (bounds memory: chunk x n_samples floats)
CHUNK = 128
#: cells this far (dB) below the loudest cell are silence and hold no component share
SILENCE_DB = 80.0


def time_windows(n_samples: int, n_time: int, fade: int) -> np.ndarray:
    """``n_time`` equal time segments as soft windows that add up to one.

    Each boundary between segments is a raised-cosine crossfade of ``fade`` samples (shortened
    to fit the shortest segment).

    Parameters
    ----------
    n_samples : int
        Length of the waveform, samples.
    n_time : int
        Number of segments.
    fade : int
        Crossfade length, samples.

    Returns
    -------
    np.ndarray, shape (n_time, n_samples), float64 in [0, 1]; columns sum to one
    """
    if not 1 <= n_time <= n_samples:
        raise ValueError(f"n_time must be between 1 and the number of samples ({n_samples}), got {n_time}")
    edges = np.round(np.linspace(0, n_samples, n_time + 1)).astype(int)
    fade = int(max(0, min(fade, int(np.diff(edges).min()))))
    t = np.arange(n_samples, dtype=np.float64)
    after = np.zeros((n_time + 1, n_samples))  # after[j]: how far past boundary j (0 .. 1)
    after[0] = 1.0
    for j in range(1, n_time):
        if fade == 0:
            after[j] = t >= edges[j]
        else:
            u = np.clip((t - (edges[j] - fade / 2)) / fade, 0.0, 1.0)
            after[j] = 0.5 - 0.5 * np.cos(np.pi * u)
    return after[:-1] - after[1:]


def build_components(sources: dict[str, np.ndarray], n_time: int, sample_rate: int,
                     fade_seconds: float = 0.005) -> tuple[np.ndarray, list[str]]:
    """Component waveforms (sources x time segments) and their names.

    Parameters
    ----------
    sources : dict of str to np.ndarray, each shape (n,)
    n_time : int
    sample_rate : int
        Hz, for the crossfade length and the names.
    fade_seconds : float
        Crossfade between time segments, seconds.

    Returns
    -------
    components : np.ndarray, shape (n_sources * n_time, n), float32
        Source-major: component ``s * n_time + t`` is source ``s`` in segment ``t``.
    names : list of str
        E.g. ``"vocals, 0.33–0.67 s"``.
    """
    waves = np.stack([np.asarray(w, dtype=np.float64) for w in sources.values()])
    n = waves.shape[1]
    win = time_windows(n, n_time, int(round(fade_seconds * sample_rate)))
    comps = (waves[:, None, :] * win[None, :, :]).reshape(-1, n).astype(np.float32)
    edges = np.linspace(0, n, n_time + 1) / sample_rate
    names = [f"{s}, {edges[t]:.2f}–{edges[t + 1]:.2f} s" for s in sources for t in range(n_time)]
    return comps, names


def component_shares(components: np.ndarray, to_domain, domain_shape: tuple[int, ...]) -> torch.Tensor:
    """Each component's share of the magnitude in every domain cell.

    Parameters
    ----------
    components : np.ndarray, shape (d, n)
    to_domain : callable, waveforms (B, n) -> (B, *domain_shape), a log-magnitude domain
    domain_shape : tuple of int

    Returns
    -------
    torch.Tensor, shape (d, *domain_shape), float64, non-negative
        ``P_c / (sum_c' P_c' + g)``: sums to (almost) one over ``d`` where the input sounds, and
        to almost zero in silence (``g`` is ``SILENCE_DB`` below the loudest cell's total).
    """
    with torch.inference_mode():
        logmag = to_domain(torch.from_numpy(components)).detach().to("cpu", torch.float64)
    _check_domain(logmag, len(components), domain_shape)
    mag = torch.exp(logmag - logmag.amax())  # a common scale cancels in the shares
    total = mag.sum(dim=0, keepdim=True)
    gate = 10.0 ** (-SILENCE_DB / 20.0) * total.amax()
    return mag / (total + gate)


def _check_domain(out: torch.Tensor, batch: int, domain_shape: tuple[int, ...]) -> None:
    if tuple(out.shape) != (batch, *domain_shape):
        raise ValueError(
            f"AudioContext.to_domain returned shape {tuple(out.shape)} for {batch} waveforms; "
            f"expected {(batch, *domain_shape)} (the shape of the input being explained)"
        )


class _AudioLimeBase(Explainer):
    """LIME on source components; subclasses say where the sources come from (:meth:`separate`)."""

    model_agnostic = True
    query_cost = "n_samples (\"auto\": distinct masks, up to max_samples)"
    needs_audio = True
    dense_map = True

    def __init__(self, n_samples: int | Literal["auto"] = 1024, n_time: int = 5, kernel_width: float = 0.25,
                 alpha: float = 1.0, top: int = 3, max_samples: int = 8192, first_samples: int = 256,
                 growth: float = 1.25, confidence: float = 0.97, paired: bool = False) -> None:
        check_sampling(type(self).__name__, n_samples, max_samples, first_samples, growth, confidence)
        self.n_samples = n_samples
        self.n_time = n_time
        self.kernel_width = kernel_width
        self.alpha = alpha
        self.top = top
        self.max_samples = max_samples
        self.first_samples = first_samples
        self.growth = growth
        self.confidence = confidence
        self.paired = paired

    def separate(self, audio: AudioContext, wave: np.ndarray) -> tuple[dict[str, np.ndarray], str]:
        """Sources of ``wave`` (n,) and the separator's name."""
        raise NotImplementedError

    def sources(self, audio: AudioContext) -> tuple[dict[str, np.ndarray], str, list[str]]:
        """The sources of ``audio.audio`` (adding up to it), where they came from, and the names
        of sources dropped as silent (peak ``ROUND_OFF`` = 80 dB or more below the audio's: they
        cannot cause anything and would only add noise to the surrogate; e.g. the "perturbation"
        source of an unmodified input)."""
        wave = np.asarray(audio.audio, dtype=np.float32)
        found, name = self.separate(audio, wave)
        sources = complete(found, wave)
        peak = float(np.abs(wave).max(initial=0.0))
        silent = [k for k, v in sources.items() if float(np.abs(v).max()) <= ROUND_OFF * peak]
        if silent and len(silent) < len(sources):
            sources = complete({k: v for k, v in sources.items() if k not in silent}, wave)
        else:
            silent = []
        return sources, name, silent

    def explain(self, model: ModelAccess, x: torch.Tensor, target: int, *, segments: Segmentation,
                budget: int | None, rng: np.random.Generator, context: ExplainContext) -> Explanation:
        audio = context.audio
        if audio is None:
            raise ValueError(
                f"{type(self).__name__} needs the waveform behind the input: context.audio is None "
                f"(the harness passes an AudioContext to explainers with needs_audio = True)"
            )
        x = as_input(x)
        sources, sep_name, silent = self.sources(audio)
        comps, names = build_components(sources, self.n_time, audio.sample_rate)
        adaptive: dict = {}
        if self.n_samples == AUTO:
            run = sample_adaptively(
                lambda zz: self._query(model, audio.to_domain, comps, zz, tuple(x.shape)),
                MaskStream(rng, len(comps), self.paired), target, k=context.headline_k,
                auto=AutoSampling(self.max_samples, self.first_samples, self.growth, self.confidence),
                cap=self.max_samples if budget is None else sized(self.max_samples, budget),
                kernel_width=self.kernel_width, alpha=self.alpha,
                budget_bound=budget is not None and budget < self.max_samples)
            z, labels, adaptive = run.z, run.labels, run.extra()
            n = len(z)
        else:
            n = sized(self.n_samples, budget)
            z = sample_masks(rng, n, len(comps), self.paired)
            labels = self._query(model, audio.to_domain, comps, z, tuple(x.shape))
        fit = fit_surrogate(z, labels, target, self.kernel_width, self.alpha,
                            random_state=int(rng.integers(0, 2**31 - 1)))
        shares = component_shares(comps, audio.to_domain, tuple(x.shape))
        mass = shares.flatten(1).sum(dim=1).clamp_min(1e-12)
        w = torch.from_numpy(fit.weights) / mass
        dense = torch.tensordot(w, shares, dims=1).numpy()
        keep = _top_components(fit.weights, self.top)
        return Explanation(
            weights=None, dense=dense, score=fit.score, intercept=fit.intercept,
            audio=comps[keep].sum(axis=0),
            extra={"components": names, "component_weights": [float(f"{v:.6g}") for v in fit.weights],
                   "top": [names[i] for i in keep], "separator": sep_name, "silent": silent,
                   "n_samples": n, "local_pred": fit.local_pred, **adaptive},
        )

    @staticmethod
    def _query(model: ModelAccess, to_domain, comps: np.ndarray, z: np.ndarray,
               domain_shape: tuple[int, ...]) -> np.ndarray:
        """Target-class probabilities ``(N, C)`` of the compositions ``z @ comps``, chunk by chunk."""
        c = torch.from_numpy(comps)
        zt = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))
        out = []
        with torch.inference_mode():
            for i in range(0, len(zt), CHUNK):
                inputs = to_domain(zt[i : i + CHUNK] @ c)
                _check_domain(inputs, len(zt[i : i + CHUNK]), domain_shape)
                out.append(model.predict(inputs))
        return torch.cat(out).numpy().astype(np.float64)


@register_explainer("audiolime")
class AudioLime(_AudioLimeBase):
    """LIME on source components (sources x time segments); listenable via ``Explanation.audio``.

    The sources come from separating the input's waveform (the modified mix) blind: nothing the
    separator sees tells it what the perturbation was.

    Parameters
    ----------
    n_samples : int or "auto"
        Neighbourhood size (model queries), capped by the budget; ``"auto"`` grows it in
        rounds until the top-k *components* (k = ``ExplainContext.headline_k``) are settled
        (:func:`~explbench.explainers.lime.sample_adaptively`), up to ``max_samples``.
        Repeated masks are not queried again.
    n_time : int
        Time segments per source.
    separator : "nmf", "hpss" or callable
        A librosa separator (:mod:`explbench.explainers.separators`) or any callable
        ``waveform (n,) -> dict[str, waveform (n,)]``.
    kernel_width, alpha : float
        LIME kernel width and ridge penalty.
    top : int
        Components with the largest positive weights kept in the listenable explanation.
    max_samples, first_samples, growth, confidence
        ``"auto"``'s most samples, its first round, the growth per round and the confidence
        that more samples would not change the top-k components (as for ``lime``).
    paired : bool
        Antithetic masks (each followed by its complement).
    """

    description = "audioLIME: LIME on sources x time segments of the mix (NMF, HPSS or your separator), listenable"

    def __init__(self, n_samples: int | Literal["auto"] = 1024, n_time: int = 5,
                 separator: str | Separator = "nmf", kernel_width: float = 0.25, alpha: float = 1.0,
                 top: int = 3, max_samples: int = 8192, first_samples: int = 256, growth: float = 1.25,
                 confidence: float = 0.97, paired: bool = False) -> None:
        super().__init__(n_samples=n_samples, n_time=n_time, kernel_width=kernel_width, alpha=alpha,
                         top=top, max_samples=max_samples, first_samples=first_samples, growth=growth,
                         confidence=confidence, paired=paired)
        if separator == "oracle":
            raise ValueError("audiolime's separator cannot be 'oracle': the task's stems and the "
                             "perturbation give the answer away; use the explainer "
                             "'audiolime-oracle' (shown as a reference, never ranked), or "
                             "separator='nmf', 'hpss' or a callable")
        resolve(separator)  # fail early on an unknown name
        self.separator = separator

    def get_params(self) -> dict:
        params = super().get_params()
        if callable(self.separator):
            params["separator"] = resolve(self.separator)[1]
        return params

    def separate(self, audio: AudioContext, wave: np.ndarray) -> tuple[dict[str, np.ndarray], str]:
        sep, name = resolve(self.separator)
        return sep(wave.copy()), name


@register_explainer("audiolime-oracle")
class AudioLimeOracle(_AudioLimeBase):
    """audioLIME on the oracle sources: the clean stems plus the perturbation as a source.

    A reference, never ranked: the perturbation is one of its components, so it is handed the
    answer. Parameters as :class:`AudioLime`, without a separator.
    """

    description = "audioLIME on the task's stems plus the perturbation as a source (oracle, never ranked)"
    oracle = True

    def separate(self, audio: AudioContext, wave: np.ndarray) -> tuple[dict[str, np.ndarray], str]:
        if not audio.stems:
            raise ValueError("audiolime-oracle needs the sources of the input (AudioContext.stems); "
                             "the harness passes them to oracles, with the perturbation as one source")
        return dict(audio.stems), "oracle"


def _top_components(weights: np.ndarray, top: int) -> list[int]:
    """Indices of the ``top`` largest positive weights, descending; the largest one if none is."""
    order = np.argsort(-weights, kind="stable")
    keep = [int(i) for i in order[: max(1, top)] if weights[i] > 0]
    return keep or [int(order[0])]


def write_wav(path: str | os.PathLike, explanation: Explanation, sample_rate: int) -> Path:
    """Write ``explanation.audio`` as a 16-bit PCM WAV file (clipped to [-1, 1]).

    Parameters
    ----------
    path : path of the file to write (parent folders are created)
    explanation : Explanation with ``audio`` of shape (n_samples,)
    sample_rate : int
        Hz.

    Returns
    -------
    Path of the written file

    Raises
    ------
    ValueError
        When the explanation carries no audio.
    """
    if explanation.audio is None:
        raise ValueError("this explanation carries no audio (only listenable explainers such as "
                         "audiolime set Explanation.audio)")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    wave = np.clip(np.asarray(explanation.audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
    sf.write(str(p), wave, int(sample_rate), subtype="PCM_16")
    return p
