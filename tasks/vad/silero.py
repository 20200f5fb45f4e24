"""silero-vad's TorchScript model, split at its own STFT so that explanations live in log|STFT|.

silero-vad 6.2.3 (MIT) streams 16 kHz audio in chunks of 512 samples: each chunk, with the last
64 samples of the previous one in front (zeros before the first) and 64 reflected samples
behind, goes through a fixed STFT layer (a convolution with a Hann-windowed DFT basis, 256
samples, hop 128: 4 frames x 129 bins), whose magnitude feeds four convolutions and an LSTM
cell carrying the state from chunk to chunk; a sigmoid gives the chunk's speech probability.

This module cuts that pipeline after the magnitude:

- :class:`SileroFrontEnd`: waveform at 16 kHz ``(B, 512 * n)`` to the model's own magnitudes,
  ``log |STFT|`` ``(B, 129, 4 * n)`` (bins x frames, chunk after chunk), computed with the
  model's basis; the square root is floored (``power >= 1e-14``) so the gradient is finite even
  at an all-zero input, where the model's own ``sqrt`` gives NaN.
- :class:`SileroClassifier`: ``exp`` of that domain, then the TorchScript model's encoder (per
  chunk) and decoder (chunk by chunk, with its LSTM state), returning per-chunk probabilities.

Composed, the two give the TorchScript model's own streaming output; the only difference is
the floor of the magnitude at 1e-7 (tested: within 1e-5 of ``model(chunk, 16000)`` streamed).

The package is never imported (``import silero_vad`` sets torch to one thread for the whole
process); its TorchScript file is located and loaded with ``torch.jit.load``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import warnings
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

MODEL_RATE = 16000
CHUNK = 512
CONTEXT = 64
N_FFT = 256
HOP = 128
N_BINS = N_FFT // 2 + 1
FRAMES_PER_CHUNK = (CONTEXT + CHUNK + CONTEXT - N_FFT) // HOP + 1  # 4
#: magnitudes are floored here (log domain: log(1e-7) = -16.1)
MAG_FLOOR = 1e-7
VERSION = "6.2.3"


def model_file() -> Path:
    """Path of ``silero_vad.jit`` inside the installed wheel, found without importing the package.

    Raises
    ------
    ImportError
        When silero-vad is not installed, or not version 6.2.3, with the install command.
    """
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the vad-silero task needs silero-vad: pip install silero-vad==6.2.3")
    installed = metadata.version("silero-vad")
    if installed != VERSION:
        raise ImportError(f"the vad-silero task is defined on silero-vad {VERSION}, but {installed} is "
                          f"installed: pip install silero-vad=={VERSION}")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "silero_vad.jit"
    if not path.is_file():
        raise ImportError(f"silero-vad is installed but its TorchScript model {path} is missing; "
                          f"reinstall it: pip install --force-reinstall silero-vad=={VERSION}")
    return path


@lru_cache(maxsize=1)
def model_hash() -> str:
    """First 16 hex digits of the SHA-256 of the TorchScript file."""
    return hashlib.sha256(model_file().read_bytes()).hexdigest()[:16]


def load_model() -> torch.jit.ScriptModule:
    """The 16 kHz TorchScript model, in eval mode, with frozen weights (threads left untouched)."""
    threads = torch.get_num_threads()
    try:
        with warnings.catch_warnings():  # torch 2.13 calls torch.jit.load deprecated; it is the format shipped
            warnings.simplefilter("ignore", DeprecationWarning)
            model = torch.jit.load(str(model_file()), map_location="cpu").eval()
    finally:
        torch.set_num_threads(threads)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the block on one torch thread, restoring the previous count afterwards.

    The model is a chain of a few hundred tiny operations per excerpt (an LSTM step per chunk);
    intra-op threads only add synchronisation there: on a busy 2-core machine one thread was
    10-20 times faster than two.
    """
    prev = torch.get_num_threads()
    if prev == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


class _Scope:
    """The thread count to restore once a backward pass through the classifier is done."""

    def __init__(self) -> None:
        self.saved: int | None = None

    def enter(self) -> None:
        if self.saved is None:
            self.saved = torch.get_num_threads()
            torch.set_num_threads(1)

    def leave(self) -> None:
        if self.saved is not None:
            torch.set_num_threads(self.saved)
            self.saved = None


class _BackwardEnters(torch.autograd.Function):
    """Identity; its backward (the first of the classifier's) switches to one thread."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, scope: _Scope) -> torch.Tensor:  # type: ignore[override]
        ctx.scope = scope
        return y.view_as(y)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        ctx.scope.enter()
        return grad, None


class _BackwardLeaves(torch.autograd.Function):
    """Identity; its backward (the classifier's last) restores the thread count."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scope: _Scope) -> torch.Tensor:  # type: ignore[override]
        ctx.scope = scope
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        ctx.scope.leave()
        return grad, None


class SileroFrontEnd(nn.Module):
    """16 kHz waveforms ``(B, 512 * n)`` to the model's log-magnitudes ``(B, 129, 4 * n)``.

    Frame ``4 k + j`` is frame ``j`` of chunk ``k``: samples ``512 k - 64 + 128 j`` to ``+ 256``
    of the waveform (zeros before the start); the last frame of each chunk ends in the 64
    samples the model reflects behind the chunk.
    """

    def __init__(self, model: torch.jit.ScriptModule) -> None:
        super().__init__()
        basis = model._model.stft.forward_basis_buffer.detach().clone()  # (258, 1, 256)
        self.register_buffer("basis", basis, persistent=False)

    def windows(self, wave: torch.Tensor) -> torch.Tensor:
        """The model's per-chunk inputs ``(B, n, 640)``: context, chunk, reflected tail."""
        b, length = wave.shape
        if length % CHUNK:
            raise ValueError(f"16 kHz input of {length} samples is not a whole number of {CHUNK}-sample chunks")
        n = length // CHUNK
        padded = nn.functional.pad(wave, (CONTEXT, 0))
        win = padded.unfold(1, CONTEXT + CHUNK, CHUNK)  # (B, n, 576)
        win = nn.functional.pad(win.reshape(b * n, CONTEXT + CHUNK), (0, CONTEXT), mode="reflect")
        return win.reshape(b, n, -1)

    def magnitude(self, wave: torch.Tensor) -> torch.Tensor:
        """|STFT| ``(B, 129, 4 n)`` as the model computes it, with a floored square root."""
        b = wave.shape[0]
        win = self.windows(wave)
        n = win.shape[1]
        spec = torch.conv1d(win.reshape(b * n, 1, -1), self.basis, stride=HOP)  # (B n, 258, 4)
        power = spec[:, :N_BINS] ** 2 + spec[:, N_BINS:] ** 2
        mag = torch.sqrt(power.clamp_min(MAG_FLOOR**2))
        return mag.reshape(b, n, N_BINS, FRAMES_PER_CHUNK).permute(0, 2, 1, 3).reshape(b, N_BINS, n * FRAMES_PER_CHUNK)

    @staticmethod
    def log(magnitude: torch.Tensor) -> torch.Tensor:
        """``log(max(|STFT|, 1e-7))``, the explanation domain."""
        return torch.log(magnitude.clamp_min(MAG_FLOOR))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.log(self.magnitude(wave))


class SileroClassifier(nn.Module):
    """log|STFT| ``(B, 129, 4 n)`` to per-chunk speech probabilities ``(B, n)``.

    The TorchScript encoder runs on all chunks at once; the decoder runs chunk by chunk with its
    LSTM state (zeros at the start of the excerpt, as for a fresh stream). The work runs on one
    torch thread, forward and backward (:func:`one_thread`); the count is restored afterwards.
    """

    def __init__(self, model: torch.jit.ScriptModule) -> None:
        super().__init__()
        self.model = model

    def chunk_probabilities(self, logmag: torch.Tensor) -> torch.Tensor:
        b, bins, frames = logmag.shape
        if bins != N_BINS or frames % FRAMES_PER_CHUNK:
            raise ValueError(f"expected log|STFT| of shape (B, {N_BINS}, 4 n), got {tuple(logmag.shape)}")
        n = frames // FRAMES_PER_CHUNK
        mag = torch.exp(logmag).reshape(b, N_BINS, n, FRAMES_PER_CHUNK).permute(0, 2, 1, 3)
        inner = self.model._model
        z = inner.encoder(mag.reshape(b * n, N_BINS, FRAMES_PER_CHUNK)).reshape(b, n, -1, 1)
        state = torch.zeros(2, b, z.shape[2], dtype=z.dtype, device=z.device)
        out = []
        for k in range(n):
            p, state = inner.decoder(z[:, k], state)
            out.append(p.reshape(b))
        return torch.stack(out, dim=1)

    def forward(self, logmag: torch.Tensor) -> torch.Tensor:
        tracked = torch.is_grad_enabled() and logmag.requires_grad
        scope = _Scope()
        if tracked:
            logmag = _BackwardLeaves.apply(logmag, scope)
        with one_thread():
            p = self.chunk_probabilities(logmag)
        if tracked:
            p = _BackwardEnters.apply(p, scope)
        return p
