"""Source separators for ``audiolime``: a waveform in, named source waveforms out.

A separator is any callable ``waveform (n,) -> dict[str, waveform (n,)]``. Two ship here, both
built on librosa and deterministic:

- :func:`nmf` -- NMF of the magnitude STFT into ``k`` parts; each part's waveform is the
  original STFT under its soft (Wiener-like) mask, inverted with the original phase;
- :func:`hpss` -- harmonic / percussive separation with a margin, plus the residual between
  them (the three-way split of Driedger, Müller and Disch, 2014).

:func:`complete` makes any set of sources add up to the audio, which audioLIME's composition
relies on (keeping every component reproduces the input). :func:`resolve` turns the
``separator`` argument of the explainer (a name or a callable) into a callable.
"""

from __future__ import annotations

from typing import Callable

import warnings

import librosa
import numpy as np
from sklearn.exceptions import ConvergenceWarning

#: a source separator: waveform (n,) -> {name: waveform (n,)}
Separator = Callable[[np.ndarray], dict[str, np.ndarray]]

#: relative size below which a sum mismatch is round-off (folded into the last source)
ROUND_OFF = 1e-4


def complete(sources: dict[str, np.ndarray], audio: np.ndarray) -> dict[str, np.ndarray]:
    """Sources that add up to ``audio`` exactly (up to float32 round-off).

    Parameters
    ----------
    sources : dict of str to array, each shape (n,)
    audio : np.ndarray, shape (n,)

    Returns
    -------
    dict of str to np.ndarray (float32, shape (n,))
        The same sources; a mismatch below ``ROUND_OFF`` times the peak of ``audio`` is folded
        into the last source, a larger one becomes an extra source ``"residual"``.

    Raises
    ------
    ValueError
        When there are no sources, or one has the wrong shape or non-finite samples.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if not sources:
        raise ValueError("the separator returned no sources; return at least one waveform")
    out: dict[str, np.ndarray] = {}
    for name, wave in sources.items():
        w = np.asarray(wave, dtype=np.float32)
        if w.shape != audio.shape:
            raise ValueError(f"source {name!r} has shape {w.shape}; expected {audio.shape} like the audio")
        if not np.all(np.isfinite(w)):
            raise ValueError(f"source {name!r} contains NaN or infinite samples")
        out[str(name)] = w.copy()
    diff = audio - np.sum(list(out.values()), axis=0, dtype=np.float32)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if float(np.abs(diff).max(initial=0.0)) <= ROUND_OFF * max(peak, 1e-12):
        last = next(reversed(out))
        out[last] = out[last] + diff
    else:
        name = "residual" if "residual" not in out else "residual (rest)"
        out[name] = diff
    return out


def nmf(audio: np.ndarray, k: int = 4, n_fft: int = 1024, hop_length: int = 256,
        random_state: int = 0, max_iter: int = 200) -> dict[str, np.ndarray]:
    """Separate ``audio`` into ``k`` NMF parts of its magnitude STFT.

    Each part ``c`` has the magnitude ``V_c = W[:, c] H[c]``; its waveform is the inverse STFT of
    ``S * V_c / sum_c' V_c'`` (soft mask, original phase). Parts are sorted by the frequency of
    their spectral peak (``nmf0`` lowest). Deterministic for a fixed ``random_state``.

    Parameters
    ----------
    audio : np.ndarray, shape (n,)
    k : int
        Number of parts.
    n_fft, hop_length : int
        STFT frame and hop, samples.
    random_state : int
        Seed of scikit-learn's NMF initialisation.
    max_iter : int
        NMF iterations.

    Returns
    -------
    dict of str to np.ndarray, shape (n,) each: ``nmf0 .. nmf{k-1}`` (and ``residual`` from
    :func:`complete` if the masks do not cover everything)
    """
    audio = np.asarray(audio, dtype=np.float32)
    spec = librosa.stft(audio, n_fft=n_fft, hop_length=hop_length)
    mag = np.abs(spec)
    with warnings.catch_warnings():  # a capped iteration count is a choice, not a fault
        warnings.simplefilter("ignore", ConvergenceWarning)
        w, h = librosa.decompose.decompose(mag, n_components=k, sort=True, random_state=random_state,
                                           max_iter=max_iter, init="nndsvda")
    parts = w.T[:, :, None] * h[:, None, :]  # (k, F, T)
    total = parts.sum(axis=0)
    masks = parts / np.maximum(total, 1e-10)[None]
    sources = {
        f"nmf{c}": librosa.istft(spec * masks[c], hop_length=hop_length, n_fft=n_fft, length=len(audio))
        for c in range(k)
    }
    return complete(sources, audio)


def hpss(audio: np.ndarray, margin: float = 2.0, n_fft: int = 1024,
         hop_length: int = 256) -> dict[str, np.ndarray]:
    """Harmonic, percussive and residual sources of ``audio`` (librosa's median-filter HPSS).

    Parameters
    ----------
    audio : np.ndarray, shape (n,)
    margin : float
        HPSS margin; above 1 part of the sound is neither harmonic nor percussive and ends up in
        ``residual`` (at 1 the residual is round-off and is folded into ``percussive``).
    n_fft, hop_length : int
        STFT frame and hop, samples.

    Returns
    -------
    dict with ``harmonic``, ``percussive`` (and ``residual``), each shape (n,)
    """
    audio = np.asarray(audio, dtype=np.float32)
    spec = librosa.stft(audio, n_fft=n_fft, hop_length=hop_length)
    harm, perc = librosa.decompose.hpss(spec, margin=margin)
    sources = {
        name: librosa.istft(part, hop_length=hop_length, n_fft=n_fft, length=len(audio))
        for name, part in (("harmonic", harm), ("percussive", perc))
    }
    return complete(sources, audio)


#: separators selectable by name
SEPARATORS: dict[str, Separator] = {"nmf": nmf, "hpss": hpss}


def resolve(separator: str | Separator) -> tuple[Separator, str]:
    """The separator callable and its name, from a name in :data:`SEPARATORS` or a callable.

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if callable(separator):
        return separator, getattr(separator, "__name__", type(separator).__name__)
    if separator not in SEPARATORS:
        raise ValueError(
            f"unknown separator {separator!r}; use "
            f"{', '.join(repr(s) for s in SEPARATORS)}, or a callable waveform -> dict of waveforms "
            f"(the task's stems are for the explainer 'audiolime-oracle')"
        )
    return SEPARATORS[separator], str(separator)
