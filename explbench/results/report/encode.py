"""Inline resources for a self-contained HTML file: PNG figures and WAV audio as data URIs."""

from __future__ import annotations

import base64
import io
import wave

import numpy as np


def png_uri(fig: object, dpi: int = 90) -> str:
    """A matplotlib figure as a ``data:image/png;base64,…`` URI (the figure is closed).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    dpi : int
    """
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """Mono 16-bit PCM WAV of a float waveform; peaks above 1 are normalised, not clipped.

    Parameters
    ----------
    audio : np.ndarray, shape (n,)
        Float samples nominally in [-1, 1]; non-finite samples become 0.
    sample_rate : int
    """
    x = np.nan_to_num(np.asarray(audio, dtype=np.float64).ravel())
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > 1.0:
        x = x / peak
    pcm = np.round(x * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def wav_uri(audio: np.ndarray, sample_rate: int) -> str:
    """A waveform as a ``data:audio/wav;base64,…`` URI (16-bit PCM mono)."""
    return "data:audio/wav;base64," + base64.b64encode(wav_bytes(audio, sample_rate)).decode("ascii")


def label(text: str) -> str:
    """A name safe for matplotlib text (no mathtext from ``$``)."""
    return str(text).replace("$", r"\$")
