"""Known patterns to draw into a 2-D (bands x frames) log-mel domain: voice-like harmonic strokes.

A pattern is an array in [0, 1] of shape ``(n_bands, n_frames)``; the planted generator confines
it to chosen segments and scales it by an amplitude in log-mel units.
"""

from __future__ import annotations

import numpy as np

PATTERN_KINDS = ("harmonic", "steady", "block")


def band_centres(n_bands: int, fmin: float = 27.5, fmax: float = 8000.0) -> np.ndarray:
    """Centre frequencies (Hz) of ``n_bands`` Slaney-mel bands between ``fmin`` and ``fmax``, shape (n_bands,)."""
    import librosa

    return librosa.mel_frequencies(n_bands + 2, fmin=fmin, fmax=fmax)[1:-1]


def harmonic_strokes(
    rng: np.random.Generator,
    centres: np.ndarray,
    n_frames: int,
    frame_rate: float,
    f0_range: tuple[float, float] = (120.0, 350.0),
    vibrato: bool = True,
    width: float = 0.6,
) -> tuple[np.ndarray, dict]:
    """A sung-note-like harmonic series: partials at h * f0(t) up to the top band.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws f0, the glide and the vibrato.
    centres : np.ndarray, shape (n_bands,)
        Band centre frequencies, Hz, ascending.
    n_frames : int
    frame_rate : float
        Frames per second (svd: 22050 / 315 = 70).
    f0_range : (float, float)
        Range of the fundamental, Hz.
    vibrato : bool
        Sinusoidal frequency modulation (rate 4.5–6.5 Hz, depth 1–3 %) and a slow glide.
    width : float
        Standard deviation of each partial across bands, in bands.

    Returns
    -------
    pattern : np.ndarray, shape (n_bands, n_frames), float32 in [0, 1]
    params : dict
        f0 (Hz), vibrato rate (Hz) and depth (fraction), glide (semitones over the excerpt).
    """
    t = np.arange(n_frames) / frame_rate
    f0 = float(rng.uniform(*f0_range))
    rate_hz, depth, phase, glide = 0.0, 0.0, 0.0, 0.0
    if vibrato:
        rate_hz, depth = float(rng.uniform(4.5, 6.5)), float(rng.uniform(0.01, 0.03))
        phase, glide = float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(-2.0, 2.0))
    f0_t = f0 * (1 + depth * np.sin(2 * np.pi * rate_hz * t + phase)) * 2 ** (glide / 12 * t / max(t[-1], 1e-9))
    n_h = int(centres[-1] // (f0 * 0.9)) + 1
    freqs = np.arange(1, n_h + 1)[:, None] * f0_t[None, :]  # (H, T)
    pos = np.interp(freqs, centres, np.arange(len(centres)), left=np.nan, right=np.nan)
    bands = np.arange(len(centres), dtype=np.float64)[:, None, None]  # (B, 1, 1)
    bumps = np.exp(-0.5 * ((bands - pos[None]) / width) ** 2)  # (B, H, T)
    pattern = np.nan_to_num(bumps, nan=0.0).max(axis=1)
    return pattern.astype(np.float32), {"f0": f0, "vibrato_rate": rate_hz, "vibrato_depth": depth,
                                        "glide_semitones": glide}


def make_pattern(kind: str, rng: np.random.Generator, shape: tuple[int, int], centres: np.ndarray,
                 frame_rate: float, f0_range: tuple[float, float]) -> tuple[np.ndarray, dict]:
    """A pattern of ``kind`` ("harmonic", "steady" or "block") of ``shape`` (bands, frames)."""
    if kind == "block":
        return np.ones(shape, dtype=np.float32), {}
    if kind in ("harmonic", "steady"):
        return harmonic_strokes(rng, centres, shape[1], frame_rate, f0_range, vibrato=kind == "harmonic")
    raise ValueError(f"unknown pattern kind {kind!r}; use one of {', '.join(PATTERN_KINDS)}")
