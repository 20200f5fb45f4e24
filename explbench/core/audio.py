"""Checking and loading audio that users hand to a task.

Every problem gets an :class:`AudioError` that names the input, what is wrong, and the fix.
"""

from __future__ import annotations

import os

import numpy as np


class AudioError(ValueError):
    """Audio that a task cannot use as it is."""


def validate(
    audio: np.ndarray,
    sample_rate: int,
    *,
    expected_rate: int,
    min_samples: int = 0,
    name: str = "audio",
) -> np.ndarray:
    """Check a waveform and bring it to the task's sample rate.

    Parameters
    ----------
    audio : np.ndarray, shape (n,) or (1, n) or (n, 1)
        Mono waveform; a singleton channel axis is dropped.
    sample_rate : int
        Sample rate of ``audio`` in Hz; other rates than ``expected_rate`` are resampled.
    expected_rate : int
        The task's sample rate in Hz.
    min_samples : int
        Minimum length in samples at ``expected_rate`` (one excerpt).
    name : str
        What to call the input in messages (a file name, "excerpt 3").

    Returns
    -------
    np.ndarray, shape (n',), float32

    Raises
    ------
    AudioError
        For multi-channel, empty, non-finite, silent or too-short audio.
    """
    a = np.asarray(audio)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1:
        channels = min(a.shape) if a.ndim == 2 else "several"
        raise AudioError(
            f"{name} has shape {a.shape} ({channels} channels); the task expects mono audio. "
            f"Mix it down first, e.g. audio.mean(axis={int(np.argmin(a.shape)) if a.ndim == 2 else 0})."
        )
    if a.size == 0:
        raise AudioError(f"{name} is empty (0 samples).")
    if not np.issubdtype(a.dtype, np.floating):
        if np.issubdtype(a.dtype, np.integer):
            a = a.astype(np.float32) / float(np.iinfo(a.dtype).max)
        else:
            raise AudioError(f"{name} has dtype {a.dtype}; pass float or integer PCM samples.")
    bad = ~np.isfinite(a)
    if bad.any():
        i = int(np.argmax(bad))
        raise AudioError(
            f"{name} contains {int(bad.sum())} NaN or infinite samples (first at sample {i}, "
            f"{i / sample_rate:.3f} s); clean or re-export the audio."
        )
    if sample_rate <= 0:
        raise AudioError(f"{name}: sample rate must be positive, got {sample_rate}.")
    if sample_rate != expected_rate:
        import librosa

        a = librosa.resample(a.astype(np.float32), orig_sr=sample_rate, target_sr=expected_rate)
    a = a.astype(np.float32, copy=False)
    peak = float(np.max(np.abs(a)))
    if peak < 1e-6:
        raise AudioError(
            f"{name} is silent (peak amplitude {peak:.1e}); a classifier cannot be explained on "
            f"silence. Check the file or the excerpt offset."
        )
    if a.size < min_samples:
        raise AudioError(
            f"{name} is {a.size} samples ({a.size / expected_rate:.3f} s) long at {expected_rate} Hz; "
            f"one excerpt needs {min_samples} samples ({min_samples / expected_rate:.3f} s)."
        )
    return a


def load(path: str | os.PathLike, *, expected_rate: int, min_samples: int = 0) -> np.ndarray:
    """Read an audio file (anything libsndfile reads: WAV, FLAC, OGG, …) and :func:`validate` it.

    Multi-channel files are refused rather than silently mixed, so the user decides how.
    """
    import soundfile as sf

    p = os.fspath(path)
    if not os.path.exists(p):
        raise AudioError(f"audio file {p!r} does not exist.")
    try:
        data, rate = sf.read(p, dtype="float32", always_2d=False)
    except Exception as exc:  # soundfile raises its own types for every decoder problem
        raise AudioError(
            f"cannot read audio file {p!r}: {exc}. Supported: WAV, FLAC, OGG and other formats "
            f"libsndfile reads; convert MP3 and others with ffmpeg or sox first."
        ) from None
    if data.ndim == 2 and data.shape[1] > 1:
        raise AudioError(
            f"{p!r} has {data.shape[1]} channels; the task expects mono. Mix it down first "
            f"(e.g. sox in.wav out.wav remix -) or load it and pass audio.mean(axis=1)."
        )
    return validate(data, rate, expected_rate=expected_rate, min_samples=min_samples, name=repr(p))
