"""The embedded default task: singing-voice detection on synthetic songs."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterator

import librosa
import numpy as np
import torch

from explbench.core.audio import validate
from explbench.api.registry import register_task
from explbench.api.task import Excerpt, Task
from explbench.tasks.svd.data import iter_excerpts
from explbench.tasks.svd.frontend import (EXCERPT_FRAMES, EXCERPT_SAMPLES, FMAX, FMIN, HOP, N_MELS, SAMPLE_RATE,
                                         LogMel)
from explbench.tasks.svd.model import Probabilities, SchlueterCNN

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "svd-synth.safetensors"


def load_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or a torch file, never unpickling arbitrary objects."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(
            f"model weights {str(p)!r} not found; train them with `explbench train svd-synth "
            f"--out DIR` or pass an existing checkpoint"
        )
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    return torch.load(p, map_location="cpu", weights_only=True)


def file_hash(path: str | os.PathLike) -> str:
    """First 16 hex digits of the SHA-256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


@register_task("svd-synth")
class SVDSynth(Task):
    """Singing-voice detection on synthetic songs rendered on the fly (Schlüter–Lehner CNN)."""

    name = "svd-synth"
    description = "singing-voice detection on synthetic songs (espeak voice over GM accompaniment)"
    version = "1"
    classes = ("no-voice", "voice")
    sample_rate = SAMPLE_RATE
    excerpt_samples = EXCERPT_SAMPLES
    domain_shape = (N_MELS, EXCERPT_FRAMES)
    domain_axes = ("mel band", "frame")
    #: centre frequencies (Hz) of the 80 mel bands (Slaney mel, 27.5 Hz to 8 kHz)
    band_frequencies = librosa.mel_frequencies(N_MELS + 2, fmin=FMIN, fmax=FMAX)[1:-1]
    frame_rate = SAMPLE_RATE / HOP
    stems = ("vocals", "accompaniment")

    def __init__(self, weights: str | os.PathLike | None = None, device: str = "cpu",
                 song_duration: float = 20.0) -> None:
        self.weights = Path(weights) if weights is not None else DEFAULT_WEIGHTS
        self.device = torch.device(device)
        self.song_duration = song_duration
        self.frontend = LogMel().to(self.device)
        self._net: SchlueterCNN | None = None

    # -- model -------------------------------------------------------------------------------

    def network(self) -> SchlueterCNN:
        """The CNN with the task's weights loaded, in eval mode (logits)."""
        if self._net is None:
            net = SchlueterCNN()
            net.load_state_dict(load_weights(self.weights))
            self._net = net.eval().to(self.device).to(memory_format=torch.channels_last)
            for p in self._net.parameters():
                p.requires_grad_(False)
        return self._net

    def classifier(self) -> torch.nn.Module:
        return Probabilities(self.network()).eval()

    def model_hash(self) -> str:
        return file_hash(self.weights)

    def data_version(self) -> str:
        from explbench.tasks.svd.render import RENDERER_VERSION

        return f"renderer-{RENDERER_VERSION}"

    @classmethod
    def train(cls, out: str, *, steps: int | None = None, seed: int = 0, progress: bool = True) -> dict:
        from explbench.tasks.svd.train import TrainConfig, train

        config = TrainConfig(seed=seed) if steps is None else TrainConfig(seed=seed, steps=steps)
        return train(config, Path(out), progress=progress)

    # -- domain ------------------------------------------------------------------------------

    def to_domain(self, audio: torch.Tensor) -> torch.Tensor:
        return self.frontend(audio.to(self.device))

    def magnitude(self, audio: torch.Tensor) -> torch.Tensor:
        """|STFT| ``(B, 513, 115)``: where the spectrogram attack places its perturbation."""
        return self.frontend.magnitude(audio.to(self.device))

    def magnitude_to_domain(self, magnitude: torch.Tensor) -> torch.Tensor:
        return self.frontend.mel_log(magnitude)

    def prepare(self, audio: np.ndarray, sample_rate: int, name: str = "audio") -> np.ndarray:
        """Validate user audio (mono, finite, not silent, ≥ one excerpt) and resample to 22.05 kHz."""
        return validate(audio, sample_rate, expected_rate=self.sample_rate,
                        min_samples=self.excerpt_samples, name=name)

    def _regain(self, audio: np.ndarray, gain: torch.Tensor) -> np.ndarray:
        """Scale the STFT of ``audio`` by a per-(band, frame) ``gain`` ``(80, 115)``, keep the
        phase, and invert by overlap-add (normalised by the window-square sum; edge samples that
        no window really covers keep their original values).

        Each STFT bin follows the mel band whose filter weighs it most (bins above the highest
        band follow band 79, below the lowest band 0).
        """
        fe = self.frontend
        wave = torch.as_tensor(np.asarray(audio, dtype=np.float32))[None].to(self.device)
        spec = fe.stft(wave)[0]  # (513, 115)
        band_of_bin = fe.mel.argmax(dim=0)
        covered = fe.mel.sum(dim=0) > 0
        band_of_bin[int(torch.nonzero(covered).max()) + 1 :] = N_MELS - 1
        frames = torch.fft.irfft(spec * gain.to(spec.device)[band_of_bin], n=fe.window.numel(), dim=0)
        frames = frames * fe.window[:, None]
        n, length = wave.shape[1], fe.window.numel()
        out, norm = torch.zeros(n), torch.zeros(n)
        for j in range(frames.shape[1]):  # 115 frames: cheap, and clearer than fold()
            out[j * HOP : j * HOP + length] += frames[:, j].cpu()
            norm[j * HOP : j * HOP + length] += fe.window.cpu() ** 2
        # The first and last samples are seen only through near-zero window values; there the
        # domain says (almost) nothing, so the original samples are kept.
        seen = norm > 0.1
        out = torch.where(seen, out / norm.clamp_min(1e-3), wave[0].cpu())
        return out.numpy().astype(np.float32)

    def sonify(self, audio: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Keep the time-frequency cells a log-mel mask ``(80, 115)`` keeps, as audio."""
        return self._regain(audio, torch.as_tensor(np.asarray(mask, dtype=np.float32)))

    def resynthesize(self, audio: np.ndarray, target: np.ndarray) -> np.ndarray:
        """A waveform whose log-mel approximates ``target`` ``(80, 115)``: the STFT of ``audio`` is
        scaled by ``exp(target - logmel(audio))`` per band and frame, with the original phase."""
        with torch.inference_mode():
            x = self.to_domain(torch.as_tensor(np.asarray(audio, dtype=np.float32))[None])[0].cpu()
        gain = torch.exp(torch.as_tensor(np.asarray(target, dtype=np.float32)) - x)
        return self._regain(audio, gain)

    # -- data --------------------------------------------------------------------------------

    def excerpts(self, split: str, n: int, seed: int, per_cluster: int | None = None) -> Iterator[Excerpt]:
        """``n`` balanced excerpts of ``split``; at most ``per_cluster`` of each class per song
        (default 4)."""
        per_song = 8 if per_cluster is None else 2 * int(per_cluster)
        return iter_excerpts(split, n, seed, self.frontend, per_song=per_song, duration=self.song_duration)
