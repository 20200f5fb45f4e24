"""The task contract: a named, versioned classifier problem and the excerpts it draws.

A :class:`Task` turns waveforms into the *explanation domain* (``to_domain``) and classifies
points of that domain (``classifier``); generators draw labelled :class:`Excerpt` objects from
it. See ``docs/adding-a-task.md``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Iterator

import numpy as np
import torch


@dataclass(frozen=True)
class Excerpt:
    """One labelled excerpt of audio.

    Attributes
    ----------
    audio : np.ndarray, shape (n_samples,), float32
        Mono waveform at the task's sample rate, in [-1, 1].
    label : int
        Ground-truth class index (svd: 0 = no voice, 1 = voice).
    song_seed : int
        Seed of the song the excerpt was cut from (identifies its data source).
    offset : float
        Start of the excerpt in the song, seconds.
    stems : dict of str to np.ndarray, optional
        Per-source waveforms of shape (n_samples,) that add up to ``audio``.
    """

    audio: np.ndarray
    label: int
    song_seed: int
    offset: float
    stems: dict[str, np.ndarray] | None = None


class Task(ABC):
    """A named, versioned classifier problem.

    The explanation domain is what explainers perturb; ``to_domain`` maps waveforms into it
    (differentiably), and ``classifier`` maps it to class probabilities.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    version: ClassVar[str] = "0"
    classes: ClassVar[tuple[str, ...]] = ()
    sample_rate: ClassVar[int] = 22050
    #: samples in one excerpt
    excerpt_samples: ClassVar[int] = 0
    #: shape of one input in the explanation domain, e.g. (80, 115)
    domain_shape: ClassVar[tuple[int, ...]] = ()
    #: names of the explanation domain's axes, e.g. ("mel band", "frame")
    domain_axes: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def to_domain(self, audio: torch.Tensor) -> torch.Tensor:
        """Waveforms ``(B, excerpt_samples)`` to explanation-domain inputs ``(B, *domain_shape)``."""

    @abstractmethod
    def classifier(self) -> torch.nn.Module:
        """Module mapping ``(B, *domain_shape)`` to class probabilities ``(B, C)``."""

    def decide(self, probabilities: torch.Tensor) -> torch.Tensor:
        """Labels ``(B,)`` from probabilities ``(B, C)``; argmax unless a task says otherwise."""
        return probabilities.argmax(dim=-1)

    @abstractmethod
    def excerpts(self, split: str, n: int, seed: int) -> Iterator[Excerpt]:
        """``n`` labelled excerpts of ``split`` ('train', 'valid' or 'test'), drawn by ``seed``."""

    def sonify(self, audio: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Render a domain mask back to sound: keep what ``mask`` ``(*domain_shape)`` keeps.

        Returns a waveform of the same length as ``audio`` ``(excerpt_samples,)``. Tasks whose
        domain has no way back to audio raise NotImplementedError.
        """
        raise NotImplementedError(f"task {self.name!r} cannot render masks to audio")

    def resynthesize(self, audio: np.ndarray, target: np.ndarray) -> np.ndarray:
        """A waveform near ``audio`` whose domain image approximates ``target`` (domain shape).

        Used to hand sound-based explainers a waveform for inputs that were modified in the
        domain. Tasks without a way back to audio raise NotImplementedError.
        """
        raise NotImplementedError(f"task {self.name!r} cannot resynthesize audio")

    def model_hash(self) -> str:
        """Content hash of the model weights (provenance and case-cache keys)."""
        return "none"

    @classmethod
    def train(cls, out: str, *, steps: int | None = None, seed: int = 0, progress: bool = True) -> dict:
        """Train the task's model into folder ``out``; returns a JSON-serialisable record."""
        raise NotImplementedError(f"task {cls.name!r} has no training procedure in explbench")

    def data_version(self) -> str:
        """Version string of the data the excerpts come from."""
        return self.version
