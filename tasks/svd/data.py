"""Songs, splits and excerpts for svd-synth.

Song seeds of the three splits live in disjoint ranges, so no song is ever shared between
training, validation and test data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from explbench.api.task import Excerpt
from explbench.tasks.svd.frontend import EXCERPT_FRAMES, EXCERPT_SAMPLES, FRAME, HOP, LogMel

#: first song seed of each split; a split owns SPLIT_SIZE consecutive seeds
SPLIT_BASE = {"train": 0, "valid": 1_000_000, "test": 2_000_000}
SPLIT_SIZE = 1_000_000
CENTRE = EXCERPT_FRAMES // 2


def check_split(split: str) -> None:
    if split not in SPLIT_BASE:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLIT_BASE)}")


def song_seeds(split: str, n: int, seed: int) -> np.ndarray:
    """``n`` distinct song seeds of ``split`` drawn by ``seed``.

    The training split uses its seeds in order (0, 1, 2, …) so that a model's data is simply
    "the first n training songs"; the other splits draw from their whole range.
    """
    check_split(split)
    if split == "train":
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng([seed, list(SPLIT_BASE).index(split)])
    return SPLIT_BASE[split] + rng.choice(SPLIT_SIZE, size=n, replace=False)


def split_of(song_seed: int) -> str:
    """The split a song seed belongs to."""
    for name, base in SPLIT_BASE.items():
        if base <= song_seed < base + SPLIT_SIZE:
            return name
    raise ValueError(f"song seed {song_seed} belongs to no split")


@dataclass(frozen=True)
class RenderedSong:
    """A song with its frame labels and log-mel spectrogram.

    Attributes
    ----------
    seed : int
    mix : np.ndarray, shape (n,)
    stems : dict of str to np.ndarray, shape (n,)
    labels : np.ndarray, shape (T,), int8 — 1 where the frame's centre is sung
    logmel : torch.Tensor, shape (80, T)
    has_choir : bool — a General MIDI choir patch plays in the accompaniment
    """

    seed: int
    mix: np.ndarray
    stems: dict[str, np.ndarray]
    labels: np.ndarray
    logmel: torch.Tensor
    has_choir: bool = False


def load_song(seed: int, frontend: LogMel, duration: float = 20.0) -> RenderedSong:
    """Render (or load from the cache) one song and compute its labels and log-mel."""
    from explbench.tasks.svd.render import frame_labels, render_song

    song = render_song(int(seed), duration=duration)
    labels = frame_labels(song, hop=HOP, frame=FRAME)
    with torch.inference_mode():
        logmel = frontend(torch.from_numpy(song.mix)[None])[0]
    return RenderedSong(int(seed), song.mix, dict(song.stems), labels, logmel.clone(),
                        bool(song.info.get("has_choir", False)))


def excerpt_starts(labels: np.ndarray, rng: np.random.Generator, per_class: int) -> list[tuple[int, int]]:
    """Up to ``per_class`` start frames per class, labelled by the excerpt's centre frame.

    Returns
    -------
    list of (start_frame, label), voice and no-voice interleaved
    """
    n_starts = len(labels) - EXCERPT_FRAMES + 1
    if n_starts <= 0:
        return []
    centre = labels[CENTRE : CENTRE + n_starts]
    picks: list[list[int]] = []
    for cls in (1, 0):
        cand = np.flatnonzero(centre == cls)
        picks.append(sorted(rng.choice(cand, size=min(per_class, cand.size), replace=False).tolist()))
    out = []
    for i in range(max(len(p) for p in picks)):
        for cls, p in zip((1, 0), picks):
            if i < len(p):
                out.append((p[i], cls))
    return out


def iter_excerpts(
    split: str,
    n: int,
    seed: int,
    frontend: LogMel,
    *,
    per_song: int = 8,
    duration: float = 20.0,
) -> Iterator[Excerpt]:
    """``n`` excerpts of ``split``, balanced between voice and no voice, drawn by ``seed``.

    At most ``per_song`` excerpts (half of each class) come from one song.
    """
    check_split(split)
    rng = np.random.default_rng([seed, 7])
    want = {1: (n + 1) // 2, 0: n // 2}
    seeds = song_seeds(split, max(4 * n // max(per_song, 1) + 8, 16), seed)
    for song_seed in seeds:
        if want[0] <= 0 and want[1] <= 0:
            return
        song = load_song(int(song_seed), frontend, duration)
        for start, label in excerpt_starts(song.labels, rng, per_song // 2):
            if want[label] <= 0:
                continue
            want[label] -= 1
            a = start * HOP
            sl = slice(a, a + EXCERPT_SAMPLES)
            yield Excerpt(
                audio=song.mix[sl].copy(),
                label=label,
                song_seed=song.seed,
                offset=a / 22050.0,
                stems={k: v[sl].copy() for k, v in song.stems.items()},
                info={"has_choir": song.has_choir},
            )
    if want[0] > 0 or want[1] > 0:
        raise RuntimeError(
            f"could not draw {n} balanced excerpts from {len(seeds)} songs of split {split!r}"
        )
