"""audio-folder: your audio files, a labels CSV and your model, as a task, without writing a class.

Parameters come from a suite's ``[task-params]`` table (or ``--task-param KEY=VALUE`` on the
command line)::

    [task-params]
    folder = "/data/my-clips"      # audio files (WAV, FLAC, OGG, ...), labels.csv, model.pt
    sample_rate = 16000            # what the model expects; files are resampled to it
    excerpt_seconds = 1.0
    classes = ["music", "speech"]  # in the model's output order (default: sorted labels)

The folder holds ``labels.csv`` (see :mod:`explbench.tasks.audio_folder.labels`) and the model
(see :mod:`explbench.tasks.audio_folder.model`). Audio is read, resampled and checked by
:func:`explbench.core.audio.load` (mono, finite, not silent, at least one excerpt long).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from explbench.core.audio import load as load_audio
from explbench.api.registry import register_task
from explbench.api.task import Excerpt, Task
from explbench.tasks.audio_folder.labels import SPLITS, Region, read_labels
from explbench.tasks.audio_folder.model import load_plugin_model, load_torchscript

#: environment variable naming the default folder
FOLDER_ENV = "EXPLBENCH_AUDIO_FOLDER"
#: audio files kept in memory at once
CACHE_FILES = 32


def _as_tuple(value: Sequence[str] | str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(str(v) for v in value)


@register_task("audio-folder")
class AudioFolder(Task):
    """A folder of audio files, a labels CSV and a TorchScript model (or a plug-in file)."""

    name = "audio-folder"
    description = "your audio files + labels.csv + a TorchScript model (or plugin=FILE.py); see docs/adding-a-task.md"
    version = "1"

    def __init__(self, folder: str | os.PathLike | None = None, labels: str = "labels.csv",
                 model: str | None = "model.pt", frontend: str | None = None, plugin: str | None = None,
                 sample_rate: int = 16000, excerpt_seconds: float = 1.0,
                 classes: Sequence[str] | str | None = None, output: str = "probabilities",
                 domain_axes: Sequence[str] | str | None = None, device: str = "cpu") -> None:
        root = folder if folder is not None else os.environ.get(FOLDER_ENV)
        if root is None:
            raise ValueError(f"audio-folder needs a folder: set folder = \"/path\" in the suite's [task-params] "
                             f"(or ${FOLDER_ENV}); it holds the audio files, labels.csv and model.pt")
        self.folder = Path(root).expanduser().resolve()
        if not self.folder.is_dir():
            raise FileNotFoundError(f"audio-folder: folder {str(self.folder)!r} does not exist; it should hold "
                                    f"your audio files, {labels} and {model or plugin}")
        if int(sample_rate) <= 0 or float(excerpt_seconds) <= 0:
            raise ValueError("sample_rate and excerpt_seconds must be positive")
        self.sample_rate = int(sample_rate)
        self.excerpt_samples = int(round(float(excerpt_seconds) * self.sample_rate))
        self.labels_path = self._path(labels)
        self.regions, self.classes = read_labels(self.labels_path, self.folder, _as_tuple(classes))
        self.files = sorted({r.file for r in self.regions})
        self.device = torch.device(device)
        if plugin is not None:
            loaded = load_plugin_model(self._path(plugin), output)
        elif model is not None:
            loaded = load_torchscript(self._path(model), self._path(frontend) if frontend else None, output)
        else:
            raise ValueError("audio-folder needs model= (a TorchScript file) or plugin= (a Python file)")
        self._to_domain = loaded.to_domain.to(self.device)
        self._classifier = loaded.classifier.to(self.device)
        self._model_digest = loaded.digest
        if loaded.magnitude is not None and loaded.magnitude_to_domain is not None:
            self.magnitude = loaded.magnitude  # type: ignore[assignment]
            self.magnitude_to_domain = loaded.magnitude_to_domain  # type: ignore[assignment]
        with torch.no_grad():
            probe = self._to_domain(torch.zeros(1, self.excerpt_samples, device=self.device))
        self.domain_shape = tuple(int(s) for s in probe.shape[1:])
        axes = _as_tuple(domain_axes) or loaded.domain_axes
        if axes is None:
            axes = ("sample",) if len(self.domain_shape) == 1 else ("frequency", "time")
        self.domain_axes = tuple(axes)
        self._audio: dict[str, np.ndarray] = {}

    def _path(self, name: str | os.PathLike) -> Path:
        p = Path(name).expanduser()
        return p if p.is_absolute() else self.folder / p

    # -- model -------------------------------------------------------------------------------

    def to_domain(self, audio: torch.Tensor) -> torch.Tensor:
        return self._to_domain(audio.to(self.device))

    def classifier(self) -> torch.nn.Module:
        return self._classifier

    def model_hash(self) -> str:
        return self._model_digest

    def data_version(self) -> str:
        """Hash of the labels CSV, the audio files' names and sizes, and the excerpt geometry."""
        h = hashlib.sha256(self.labels_path.read_bytes())
        for f in self.files:
            h.update(f"{f}\0{(self.folder / f).stat().st_size}\0".encode())
        h.update(f"{self.sample_rate}/{self.excerpt_samples}".encode())
        return h.hexdigest()[:16]

    # -- data --------------------------------------------------------------------------------

    def audio_of(self, file: str) -> np.ndarray:
        """A file's samples at the task's rate ``(n,)``, checked (mono, finite, not silent, long enough)."""
        if file not in self._audio:
            if len(self._audio) >= CACHE_FILES:
                self._audio.pop(next(iter(self._audio)))
            self._audio[file] = load_audio(self.folder / file, expected_rate=self.sample_rate,
                                           min_samples=self.excerpt_samples)
        return self._audio[file]

    def _place(self, region: Region, rng: np.random.Generator) -> int:
        """Start sample of an excerpt inside ``region`` (centred on it when it is shorter)."""
        n = len(self.audio_of(region.file))
        length = self.excerpt_samples
        a = 0 if region.start is None else min(int(round(region.start * self.sample_rate)), n)
        b = n if region.end is None else min(int(round(region.end * self.sample_rate)), n)
        if b - a >= length:
            return int(rng.integers(a, b - length + 1))
        return int(np.clip((a + b) // 2 - length // 2, 0, n - length))

    def excerpts(self, split: str, n: int, seed: int) -> Iterator[Excerpt]:
        """``n`` excerpts of ``split``, classes in turn (balanced as far as the rows allow).

        Each class's rows are visited in a seeded order, and again when ``n`` needs more
        excerpts than there are rows (at a new random position inside each region).
        """
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
        rows = [r for r in self.regions if r.split == split]
        if not rows:
            present = sorted({r.split for r in self.regions})
            raise ValueError(f"split {split!r} has no rows in {self.labels_path.name} (splits there: "
                             f"{', '.join(present)}); add a split column to use it")
        rng = np.random.default_rng([seed, SPLITS.index(split), 0xF01D])
        by_class = {c: [rows[i] for i in rng.permutation([i for i, r in enumerate(rows) if r.label == c])]
                    for c in sorted({r.label for r in rows})}
        count = {c: 0 for c in by_class}
        order = list(by_class)
        for i in range(int(n)):
            c = order[i % len(order)]
            region = by_class[c][count[c] % len(by_class[c])]
            count[c] += 1
            start = self._place(region, rng)
            audio = self.audio_of(region.file)[start : start + self.excerpt_samples]
            yield Excerpt(audio=audio.copy(), label=int(region.label), song_seed=self.files.index(region.file),
                          offset=start / self.sample_rate, group=region.group,
                          info={"file": region.file, "line": region.line})
