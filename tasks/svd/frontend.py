"""The singing-voice front-end in torch: waveform -> |STFT| -> mel -> log.

Differentiable end to end, so waveform attacks and gradient explainers can reach the audio.
Parameters follow Schlüter & Lehner: 22.05 kHz mono, frames of 1024 samples, hop 315
(70 frames per second), 80 mel bands from 27.5 Hz to 8 kHz, log(max(x, 1e-7)).
"""

from __future__ import annotations

import librosa
import numpy as np
import torch

SAMPLE_RATE = 22050
FRAME = 1024
HOP = 315
N_MELS = 80
FMIN = 27.5
FMAX = 8000.0
EXCERPT_FRAMES = 115
#: samples covering one excerpt of 115 frames without padding
EXCERPT_SAMPLES = FRAME + (EXCERPT_FRAMES - 1) * HOP
LOG_FLOOR = 1e-7


def n_frames(n_samples: int) -> int:
    """Number of whole frames in ``n_samples`` samples (no padding)."""
    return 0 if n_samples < FRAME else 1 + (n_samples - FRAME) // HOP


class LogMel(torch.nn.Module):
    """Waveform ``(B, n)`` at 22.05 kHz to log-mel ``(B, 80, n_frames(n))``.

    ``magnitude`` and ``mel_log`` are exposed separately so that a perturbation can be placed
    on the |STFT| magnitude (the spectrogram attack) and still reach the explanation domain.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(FRAME, periodic=True), persistent=False)
        mel = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=FRAME, n_mels=N_MELS, fmin=FMIN, fmax=FMAX)
        self.register_buffer("mel", torch.from_numpy(mel.astype(np.float32)), persistent=False)

    def stft(self, wave: torch.Tensor) -> torch.Tensor:
        """Complex STFT ``(B, 513, T)`` without centre padding."""
        return torch.stft(
            wave, n_fft=FRAME, hop_length=HOP, window=self.window, center=False, return_complex=True
        )

    def magnitude(self, wave: torch.Tensor) -> torch.Tensor:
        """|STFT| ``(B, 513, T)``."""
        return self.stft(wave).abs()

    def mel_log(self, magnitude: torch.Tensor) -> torch.Tensor:
        """Magnitudes ``(B, 513, T)`` to log-mel ``(B, 80, T)``."""
        return torch.log(torch.clamp(self.mel @ magnitude, min=LOG_FLOOR))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.mel_log(self.magnitude(wave))
