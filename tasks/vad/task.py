"""vad-silero: a pretrained voice detector nobody here trained, on svd-synth's songs.

The model is silero-vad 6.2.3's TorchScript model (MIT; the weights ship inside its wheel).
An excerpt is 1.6 s of a svd-synth song at 22.05 kHz; ``to_domain`` resamples it to 16 kHz
with julius (differentiably) and computes the model's own STFT magnitudes, so the explanation
domain is ``log |STFT|``, 129 bins (0-8 kHz, 62.5 Hz apart) x 200 frames (8 ms apart, 4 per
32 ms chunk). The classifier drives the model's encoder and LSTM decoder over the 50 chunks,
averages the chunk probabilities after ``warmup`` chunks, and decides "voice" when that mean
exceeds ``threshold`` (0.1, fit on svd-synth's valid split: the synthetic espeak voice gets
lower probabilities than speech does; silero's own 0.5 gives balanced accuracy 0.82 there).

Composed, ``classifier()(to_domain(audio))`` is the real model streamed over the resampled
excerpt (within 1e-5; the magnitude is floored at 1e-7). The model's convenience functions
run under ``no_grad``; this drives it chunk by chunk so gradients reach the waveform.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import nn

from explbench.api.registry import register_task
from explbench.api.task import Excerpt, Task
from explbench.tasks.vad import silero
from explbench.tasks.vad.data import EXCERPT_SAMPLES, SAMPLE_RATE, iter_excerpts

N_CHUNKS = EXCERPT_SAMPLES * silero.MODEL_RATE // SAMPLE_RATE // silero.CHUNK  # 50
FRAMES = N_CHUNKS * silero.FRAMES_PER_CHUNK  # 200
DEFAULT_WARMUP = 4
#: decision threshold on the mean chunk probability: the middle of the plateau of balanced
#: accuracy (0.925 from 0.075 to 0.125) on 200 excerpts of svd-synth's valid split, seed 0
DEFAULT_THRESHOLD = 0.1


class VoiceProbabilities(nn.Module):
    """log|STFT| ``(B, 129, 200)`` to ``(B, 2)``: [no voice, voice].

    ``p`` is the model's mean chunk probability from chunk ``warmup`` on (the LSTM starts from a
    zero state at the excerpt); P(voice) is ``p`` moved on the logit scale so that the decision
    threshold sits at 0.5: ``sigmoid(logit(p) - logit(threshold))``. With ``threshold = 0.5``
    P(voice) is the model's own mean probability.
    """

    def __init__(self, chunks: silero.SileroClassifier, warmup: int, threshold: float) -> None:
        super().__init__()
        self.chunks = chunks
        self.warmup = int(warmup)
        self.shift = float(np.log(threshold / (1.0 - threshold)))

    def forward(self, logmag: torch.Tensor) -> torch.Tensor:
        p = self.chunks(logmag)[:, self.warmup :].mean(dim=1).clamp(1e-6, 1.0 - 1e-6)
        q = torch.sigmoid(torch.log(p) - torch.log1p(-p) - self.shift)
        return torch.stack([1.0 - q, q], dim=-1)


class ToDomain(nn.Module):
    """22.05 kHz waveforms ``(B, 35280)`` to log|STFT| ``(B, 129, 200)``: julius, then the model's STFT."""

    def __init__(self, frontend: silero.SileroFrontEnd) -> None:
        super().__init__()
        import julius

        self.resample = julius.ResampleFrac(SAMPLE_RATE, silero.MODEL_RATE)
        self.frontend = frontend

    def at_16k(self, wave: torch.Tensor) -> torch.Tensor:
        return self.resample(wave, output_length=N_CHUNKS * silero.CHUNK)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.frontend(self.at_16k(wave))


@register_task("vad-silero")
class VADSilero(Task):
    """Voice activity detection by silero-vad 6.2.3 (pretrained, MIT) on svd-synth songs at 16 kHz."""

    name = "vad-silero"
    description = "voice detection by the pretrained silero-vad 6.2.3 on svd-synth songs (log|STFT| domain)"
    version = "1"
    classes = ("no-voice", "voice")
    sample_rate = SAMPLE_RATE
    excerpt_samples = EXCERPT_SAMPLES
    domain_shape = (silero.N_BINS, FRAMES)
    domain_axes = ("frequency bin", "frame")
    band_frequencies = np.arange(silero.N_BINS) * (silero.MODEL_RATE / silero.N_FFT)
    frame_rate = silero.MODEL_RATE / silero.HOP
    stems = ("vocals", "accompaniment")
    #: the model's |STFT| is 1/4 of svd-synth's for the same sound (a 256- not a 1024-sample window)
    attack_defaults = {"spectrogram": {"eps": 0.025}}

    def __init__(self, warmup: int = DEFAULT_WARMUP, threshold: float = DEFAULT_THRESHOLD,
                 song_duration: float = 20.0) -> None:
        if not 0 <= int(warmup) < N_CHUNKS:
            raise ValueError(f"warmup must be 0..{N_CHUNKS - 1} chunks, got {warmup}")
        if not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"threshold must lie strictly between 0 and 1, got {threshold}")
        self.warmup = int(warmup)
        self.threshold = float(threshold)
        self.song_duration = float(song_duration)
        self.device = torch.device("cpu")
        self._model = silero.load_model()
        self._frontend = ToDomain(silero.SileroFrontEnd(self._model))
        self._classifier = VoiceProbabilities(silero.SileroClassifier(self._model), self.warmup,
                                              self.threshold).eval()

    # -- model -------------------------------------------------------------------------------

    def to_domain(self, audio: torch.Tensor) -> torch.Tensor:
        return self._frontend(audio)

    def classifier(self) -> nn.Module:
        return self._classifier

    def chunk_probabilities(self, audio: torch.Tensor) -> torch.Tensor:
        """Per-chunk speech probabilities ``(B, 50)`` of waveforms ``(B, 35280)``."""
        return self._classifier.chunks(self.to_domain(audio))

    def model_hash(self) -> str:
        return silero.model_hash()

    def data_version(self) -> str:
        from explbench.tasks.svd.render import RENDERER_VERSION

        return f"renderer-{RENDERER_VERSION}+vad-excerpts-1+warmup-{self.warmup}+threshold-{self.threshold:g}"

    # -- attack space ------------------------------------------------------------------------

    def magnitude(self, audio: torch.Tensor) -> torch.Tensor:
        """The model's |STFT| ``(B, 129, 200)``: where the spectrogram attack perturbs."""
        return self._frontend.frontend.magnitude(self._frontend.at_16k(audio))

    def magnitude_to_domain(self, magnitude: torch.Tensor) -> torch.Tensor:
        return silero.SileroFrontEnd.log(magnitude)

    # -- back to sound -----------------------------------------------------------------------

    def _regain(self, audio: np.ndarray, gain: torch.Tensor) -> np.ndarray:
        """Scale the 16 kHz STFT of ``audio`` by ``gain`` ``(129, 200)`` with the original phase.

        The change (scaled minus unscaled, each inverted by weighted overlap-add of Hann frames,
        256 samples, hop 128, aligned with the domain's frames) is resampled to 22.05 kHz and
        added to ``audio``; content above 8 kHz, which the model never hears, is kept.
        """
        import julius

        with torch.no_grad():
            wave = torch.as_tensor(np.asarray(audio, dtype=np.float32))[None]
            a16 = self._frontend.at_16k(wave)[0]
            c = silero.CONTEXT
            padded = torch.cat([torch.zeros(c), a16, a16.flip(0)[1 : c + 1]])  # zeros, audio, reflection
            window = torch.hann_window(silero.N_FFT, periodic=True)
            spec = torch.stft(padded, silero.N_FFT, silero.HOP, window=window, center=False,
                              return_complex=True)[:, :FRAMES]  # (129, 200)

            def overlap_add(s: torch.Tensor) -> torch.Tensor:
                frames = torch.fft.irfft(s, n=silero.N_FFT, dim=0) * window[:, None]
                out, norm = torch.zeros(len(padded)), torch.zeros(len(padded))
                for j in range(frames.shape[1]):
                    out[j * silero.HOP : j * silero.HOP + silero.N_FFT] += frames[:, j]
                    norm[j * silero.HOP : j * silero.HOP + silero.N_FFT] += window**2
                return out / norm.clamp_min(1e-3)

            change16 = (overlap_add(spec * gain) - overlap_add(spec))[c : c + len(a16)]
            change = julius.resample_frac(change16[None], silero.MODEL_RATE, SAMPLE_RATE,
                                          output_length=len(audio))[0]
        return (np.asarray(audio, dtype=np.float32) + change.numpy()).astype(np.float32)

    def sonify(self, audio: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Keep the (bin, frame) cells a mask ``(129, 200)`` keeps, as audio at 22.05 kHz."""
        return self._regain(audio, torch.as_tensor(np.asarray(mask, dtype=np.float32)))

    def resynthesize(self, audio: np.ndarray, target: np.ndarray) -> np.ndarray:
        """A waveform whose log|STFT| approximates ``target`` ``(129, 200)``: the 16 kHz STFT of
        ``audio`` scaled by ``exp(target - to_domain(audio))``, with the original phase."""
        with torch.inference_mode():
            x = self.to_domain(torch.as_tensor(np.asarray(audio, dtype=np.float32))[None])[0]
        gain = torch.exp(torch.as_tensor(np.asarray(target, dtype=np.float32)) - x)
        return self._regain(audio, gain)

    # -- data --------------------------------------------------------------------------------

    def excerpts(self, split: str, n: int, seed: int, per_cluster: int | None = None) -> Iterator[Excerpt]:
        """``n`` balanced excerpts of svd-synth's ``split``; at most ``per_cluster`` of each class
        per song (default 4)."""
        per_song = 8 if per_cluster is None else 2 * int(per_cluster)
        return iter_excerpts(split, n, seed, per_song=per_song, duration=self.song_duration)
