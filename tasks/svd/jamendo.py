"""svd-jamendo: singing-voice detection on the Jamendo corpus (Ramona et al. 2008), from disk.

The corpus is not shipped; users who have it point ``root`` at it (suite ``[task-params]``
``root = "/data/jamendo"``, or ``$EXPLBENCH_JAMENDO``). The layout is the published one, as the
Schlüter–Lehner experiments use it::

    root/audio/       all 93 audio files (.ogg or .mp3; any format libsndfile reads)
    root/filelists/   train, valid, test: one audio file name per line (61 / 16 / 16 songs)
    root/labels/      NAME.lab for audio/NAME.EXT: lines "start end sing|nosing" (seconds)

Audio is mixed down to mono and resampled to 22.05 kHz; excerpts of 115 frames are labelled
by their centre frame, as on svd-synth. The model and front-end are svd-synth's (its weights by
default, or ``weights=`` trained on Jamendo). The cluster of an excerpt is its song.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from explbench.core.audio import AudioError, validate
from explbench.api.registry import register_task
from explbench.api.task import Excerpt
from explbench.tasks.svd.data import excerpt_starts
from explbench.tasks.svd.frontend import EXCERPT_SAMPLES, FRAME, HOP, SAMPLE_RATE, n_frames
from explbench.tasks.svd.task import SVDSynth

ROOT_ENV = "EXPLBENCH_JAMENDO"
SPLITS = ("train", "valid", "test")
#: songs per split in the published file lists
PUBLISHED_COUNTS = {"train": 61, "valid": 16, "test": 16}
CACHE_SONGS = 4

LAYOUT = """the Jamendo corpus in its published layout:
    ROOT/audio/       the audio files (.ogg or .mp3, 93 of them)
    ROOT/filelists/   train, valid, test: one audio file name per line (61 / 16 / 16)
    ROOT/labels/      NAME.lab for every audio/NAME.EXT, lines "start end sing|nosing" in seconds
Give its place with root = "/path/to/jamendo" in the suite's [task-params] (or ${env})."""


class JamendoLayoutError(FileNotFoundError):
    """The Jamendo folder is missing or does not follow the published layout."""


def _layout_error(root: Path, problem: str) -> JamendoLayoutError:
    return JamendoLayoutError(f"svd-jamendo: {problem} (root {str(root)!r}). It needs "
                              + LAYOUT.replace("ROOT", str(root)).replace("${env}", f"${ROOT_ENV}"))


def read_lab(path: Path) -> np.ndarray:
    """Sung segments of a ``.lab`` file: ``(m, 2)`` seconds, for the lines labelled ``sing``.

    Raises
    ------
    ValueError
        Naming the file and line of a malformed line.
    """
    segments = []
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or parts[2] not in ("sing", "nosing"):
            raise ValueError(f"{path}, line {i}: {line.strip()!r}; expected 'start end sing' or 'start end nosing'")
        try:
            a, b = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(f"{path}, line {i}: start and end must be seconds, got {parts[0]!r} {parts[1]!r}") from None
        if b < a:
            raise ValueError(f"{path}, line {i}: end {b} is before start {a}")
        if parts[2] == "sing":
            segments.append((a, b))
    return np.asarray(segments, dtype=np.float64).reshape(-1, 2)


def frame_labels(segments: np.ndarray, n_samples: int) -> np.ndarray:
    """1 where frame ``j``'s centre (sample ``j * 315 + 512``) lies in a sung segment, ``(T,)`` int8."""
    centres = (np.arange(n_frames(n_samples)) * HOP + FRAME // 2) / SAMPLE_RATE
    sung = np.zeros(len(centres), dtype=bool)
    for a, b in segments:
        sung |= (centres >= a) & (centres < b)
    return sung.astype(np.int8)


def check_layout(root: Path) -> dict[str, list[str]]:
    """The three file lists, after checking that every listed file has its audio and its labels.

    Raises
    ------
    JamendoLayoutError
        Saying what is missing and what goes where.
    """
    if not root.is_dir():
        raise _layout_error(root, "the folder does not exist")
    for sub in ("audio", "filelists", "labels"):
        if not (root / sub).is_dir():
            raise _layout_error(root, f"there is no {sub}/ folder")
    lists = {}
    for split in SPLITS:
        f = root / "filelists" / split
        if not f.is_file():
            raise _layout_error(root, f"filelists/{split} is missing")
        names = [line.strip() for line in f.read_text().splitlines() if line.strip()]
        if not names:
            raise _layout_error(root, f"filelists/{split} is empty")
        for name in names:
            if not (root / "audio" / name).is_file():
                raise _layout_error(root, f"filelists/{split} lists {name!r}, which is not in audio/")
            lab = root / "labels" / f"{Path(name).stem}.lab"
            if not lab.is_file():
                raise _layout_error(root, f"audio/{name} has no labels/{lab.name}")
        lists[split] = names
    seen: dict[str, str] = {}
    for split, names in lists.items():
        for name in names:
            if name in seen and seen[name] != split:
                raise _layout_error(root, f"{name!r} is listed in both {seen[name]} and {split}")
            seen[name] = split
    return lists


def read_song(path: Path) -> np.ndarray:
    """A song as mono float32 at 22.05 kHz (channels averaged), checked like user audio."""
    import soundfile as sf

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises its own types for every decoder problem
        raise AudioError(f"cannot read {str(path)!r}: {exc}; convert it to OGG, FLAC or WAV "
                         f"(e.g. ffmpeg -i in.mp3 out.ogg)") from None
    return validate(data.mean(axis=1), rate, expected_rate=SAMPLE_RATE, min_samples=EXCERPT_SAMPLES,
                    name=repr(str(path)))


@register_task("svd-jamendo")
class SVDJamendo(SVDSynth):
    """Singing-voice detection on the Jamendo corpus read from disk (svd-synth's model)."""

    name = "svd-jamendo"
    description = "singing-voice detection on the Jamendo corpus on your disk (root=...; svd-synth's CNN)"
    version = "1"
    stems = ()

    def __init__(self, root: str | os.PathLike | None = None, weights: str | os.PathLike | None = None,
                 device: str = "cpu") -> None:
        super().__init__(weights=weights, device=device)
        given = root if root is not None else os.environ.get(ROOT_ENV)
        if given is None:
            raise _layout_error(Path("ROOT"), "no root was given")
        self.root = Path(given).expanduser().resolve()
        self.lists = check_layout(self.root)
        self.songs = sorted(n for names in self.lists.values() for n in names)
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def data_version(self) -> str:
        counts = "/".join(str(len(self.lists[s])) for s in SPLITS)
        return f"jamendo-{counts}"

    def song(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(mono audio ``(n,)`` at 22.05 kHz, frame labels ``(T,)``) of ``audio/name``."""
        if name not in self._cache:
            if len(self._cache) >= CACHE_SONGS:
                self._cache.pop(next(iter(self._cache)))
            audio = read_song(self.root / "audio" / name)
            segments = read_lab(self.root / "labels" / f"{Path(name).stem}.lab")
            self._cache[name] = (audio, frame_labels(segments, len(audio)))
        return self._cache[name]

    def excerpts(self, split: str, n: int, seed: int, per_cluster: int | None = None) -> Iterator[Excerpt]:
        """``n`` excerpts of ``split``, balanced between voice and no voice, songs in a seeded order;
        at most ``per_cluster`` of each class per song (default 4)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
        rng = np.random.default_rng([seed, SPLITS.index(split), 0x7A3E])
        per_class = 4 if per_cluster is None else int(per_cluster)
        want = {1: (n + 1) // 2, 0: n // 2}
        for name in rng.permutation(self.lists[split]):
            if want[0] <= 0 and want[1] <= 0:
                return
            audio, labels = self.song(str(name))
            for start, label in excerpt_starts(labels, rng, per_class):
                if want[label] <= 0:
                    continue
                want[label] -= 1
                a = start * HOP
                yield Excerpt(audio=audio[a : a + EXCERPT_SAMPLES].copy(), label=int(label),
                              song_seed=self.songs.index(str(name)), offset=a / SAMPLE_RATE,
                              group=str(name))
        if want[0] > 0 or want[1] > 0:
            raise RuntimeError(f"svd-jamendo: the {len(self.lists[split])} songs of split {split!r} hold "
                               f"fewer than {n} balanced excerpts at {per_class} per class and song; ask for "
                               f"fewer")
