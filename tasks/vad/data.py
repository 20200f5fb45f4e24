"""Excerpts for vad-silero: 1.6 s of svd-synth songs, labelled from the vocal stem.

The songs, their splits (disjoint song-seed ranges) and their renderer are svd-synth's. An
excerpt is *voice* when the vocal stem sounds during at least half of it, *no voice* when it
does not sound at all; excerpts in between are never drawn (their label would be a matter of
threshold, not of hearing).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from explbench.api.task import Excerpt
from explbench.tasks.svd.data import check_split, song_seeds

SAMPLE_RATE = 22050
#: 1.6 s: 35280 samples at 22.05 kHz resample to exactly 25600 = 50 chunks of 512 at 16 kHz
EXCERPT_SAMPLES = 35280
#: candidate excerpt starts lie on an 80 ms grid
START_STEP = 1764
#: an excerpt is voice when at least this share of its samples is sung
VOICE_MIN_FRACTION = 0.5


def sung_mask(intervals: np.ndarray, n_samples: int, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Boolean ``(n_samples,)``: where the vocal stem sounds, from ``(m, 2)`` intervals in seconds."""
    mask = np.zeros(n_samples, dtype=bool)
    for a, b in np.round(np.asarray(intervals, dtype=np.float64).reshape(-1, 2) * sr).astype(np.int64):
        mask[max(a, 0) : min(b, n_samples)] = True
    return mask


def voiced_fractions(mask: np.ndarray, starts: np.ndarray, length: int = EXCERPT_SAMPLES) -> np.ndarray:
    """Share of sung samples in each window ``[start, start + length)``, shape ``(len(starts),)``."""
    cum = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
    return (cum[starts + length] - cum[starts]) / float(length)


def candidate_starts(fractions: np.ndarray, starts: np.ndarray, rng: np.random.Generator,
                     per_class: int) -> list[tuple[int, int]]:
    """Up to ``per_class`` starts of each class, voice and no voice interleaved.

    Returns
    -------
    list of (start_sample, label)
    """
    picks = []
    for label, ok in ((1, fractions >= VOICE_MIN_FRACTION), (0, fractions == 0.0)):
        cand = starts[ok]
        chosen = rng.choice(cand, size=min(per_class, cand.size), replace=False) if cand.size else []
        picks.append([(int(s), label) for s in sorted(chosen)])
    out = []
    for i in range(max(len(p) for p in picks)):
        out.extend(p[i] for p in picks if i < len(p))
    return out


def iter_excerpts(split: str, n: int, seed: int, *, per_song: int = 8,
                  duration: float = 20.0) -> Iterator[Excerpt]:
    """``n`` excerpts of ``split``, balanced between voice and no voice, drawn by ``seed``.

    At most ``per_song`` excerpts (half of each class) come from one song.
    """
    from explbench.tasks.svd.render import render_song

    check_split(split)
    rng = np.random.default_rng([seed, 11])
    want = {1: (n + 1) // 2, 0: n // 2}
    seeds = song_seeds(split, max(4 * n // max(per_song, 1) + 8, 16), seed)
    for song_seed in seeds:
        if want[0] <= 0 and want[1] <= 0:
            return
        song = render_song(int(song_seed), duration=duration)
        total = len(song.mix)
        starts = np.arange(0, total - EXCERPT_SAMPLES + 1, START_STEP, dtype=np.int64)
        fractions = voiced_fractions(sung_mask(song.voice_intervals, total), starts)
        by_start = dict(zip(starts.tolist(), fractions.tolist()))
        for start, label in candidate_starts(fractions, starts, rng, per_song // 2):
            if want[label] <= 0:
                continue
            want[label] -= 1
            sl = slice(start, start + EXCERPT_SAMPLES)
            yield Excerpt(
                audio=song.mix[sl].copy(), label=label, song_seed=int(song.seed),
                offset=start / SAMPLE_RATE,
                stems={k: v[sl].copy() for k, v in song.stems.items()},
                info={"has_choir": bool(song.info.get("has_choir", False)),
                      "voiced_fraction": round(float(by_start[start]), 4)},
            )
    if want[0] > 0 or want[1] > 0:
        raise RuntimeError(f"could not draw {n} balanced excerpts from {len(seeds)} songs of split {split!r}")
