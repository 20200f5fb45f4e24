"""Cases: units of ground truth, and their content-addressed cache on disk.

A case holds a clean input ``x`` and a modified input ``x_mod`` in the explanation domain whose
decisions differ, the perturbation ``delta = x_mod - x``, and (for localised and planted cases)
the set of scoring segments the perturbation is confined to, with those of them that are
individually necessary for the flip.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CASE_FORMAT = "2"  # 2: necessary_segments, info["cluster"]


@dataclass
class Case:
    """One unit of ground truth.

    Attributes
    ----------
    case_id : str
        Stable identifier, unique within a run (e.g. ``"cw-spectrogram/0007"``).
    generator : str
        Name of the generator that produced it.
    x : np.ndarray, shape domain_shape, float32
        The clean input in the explanation domain.
    x_mod : np.ndarray, shape domain_shape, float32
        The modified input; ``decide(x_mod) == target != original == decide(x)``.
    original, target : int
        Decisions on ``x`` and ``x_mod``.
    domain : str
        Where the perturbation was made: "spectrogram", "waveform", "planted", …
    true_segments : tuple of int, optional
        The claimed cause S (localised and planted cases), indices into the scoring grid:
        ``x + M(S) * delta`` is decided as ``target`` (S *suffices*), and every segment of S
        carries perturbation energy ``> 0``. S need not be minimal.
    audio : np.ndarray, optional, shape (n_samples,)
        The clean excerpt's waveform (for listening).
    audio_mod : np.ndarray, optional, shape (n_samples,)
        The modified waveform, where the attack domain has one.
    stems : dict of str to np.ndarray, optional
        Sources of the clean excerpt, each of shape (n_samples,), adding up to ``audio``.
    info : dict
        JSON-serialisable details: ``cluster`` (str, the unit of independence; svd-synth: the
        song), song seed, offset, iterations, parent case, k, ``minimal``, …
    necessary_segments : tuple of int, optional
        Those of ``true_segments`` (in their order) whose removal un-flips the decision: applying
        ``delta`` on S minus that one segment is *not* decided as ``target``. Computed by a
        leave-one-segment-out test (one forward per segment of S). None where there is no S.
    """

    case_id: str
    generator: str
    x: np.ndarray
    x_mod: np.ndarray
    original: int
    target: int
    domain: str
    true_segments: tuple[int, ...] | None = None
    audio: np.ndarray | None = None
    audio_mod: np.ndarray | None = None
    stems: dict[str, np.ndarray] | None = None
    info: dict = field(default_factory=dict)
    necessary_segments: tuple[int, ...] | None = None

    @property
    def minimal(self) -> bool | None:
        """Whether every claimed segment is individually necessary (None without a claim)."""
        if self.true_segments is None or self.necessary_segments is None:
            return None
        return set(self.necessary_segments) == set(self.true_segments)

    @property
    def cluster(self) -> str:
        """The unit of independence: ``info["cluster"]``, else the song, else the case itself."""
        info = self.info or {}
        if info.get("cluster") is not None:
            return str(info["cluster"])
        if info.get("song_seed") is not None:
            return str(info["song_seed"])
        return self.case_id

    @property
    def delta(self) -> np.ndarray:
        """The perturbation in the explanation domain, ``x_mod - x``."""
        return self.x_mod - self.x

    def direction(self, classes: tuple[str, ...]) -> str:
        """E.g. ``"no-voice-to-voice"``."""
        return f"{classes[self.original]}-to-{classes[self.target]}"


#: hex digits of a case's content hash (128 bits)
CONTENT_HASH_DIGITS = 32


def content_hash(case: Case) -> str:
    """The identity of a case: SHA-256 over its arrays and its cause.

    What is hashed: ``x`` and ``x_mod`` as little-endian float32 in C order, each with its
    shape, then ``original``, ``target``, ``true_segments`` and ``necessary_segments`` as JSON.
    Two cases with equal hashes pose the same question with the same answer, whichever
    machine, generator version or recipe made them; this, never a case id or a cache key,
    decides whether two runs explained the same case. The clean audio and the stems are not
    hashed: they serve listening, and the explanation domain holds what is explained.

    Returns
    -------
    str
        :data:`CONTENT_HASH_DIGITS` hex digits.
    """
    h = hashlib.sha256(b"explbench-case-v1\0")
    for name in ("x", "x_mod"):
        a = np.ascontiguousarray(np.asarray(getattr(case, name)), dtype="<f4")
        h.update(f"{name}|{a.shape}|".encode())
        h.update(a.tobytes())
    cause = {"original": int(case.original), "target": int(case.target),
             "true_segments": None if case.true_segments is None else [int(s) for s in case.true_segments],
             "necessary_segments": (None if case.necessary_segments is None
                                    else [int(s) for s in case.necessary_segments])}
    h.update(json.dumps(cause, sort_keys=True).encode())
    return h.hexdigest()[:CONTENT_HASH_DIGITS]


def cache_key(**parts: object) -> str:
    """Content address of a set of cases: SHA-256 over the sorted JSON of ``parts``."""
    blob = json.dumps({"format": CASE_FORMAT, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


_ARRAYS = ("x", "x_mod", "audio", "audio_mod")


def save_cases(path: Path, cases: list[Case], stats: dict) -> None:
    """Write cases to one ``.npz`` (arrays) with their metadata as JSON inside it; atomic."""
    arrays: dict[str, np.ndarray] = {}
    meta = []
    for i, c in enumerate(cases):
        for name in _ARRAYS:
            a = getattr(c, name)
            if a is not None:
                arrays[f"{i}/{name}"] = np.asarray(a, dtype=np.float32)
        for stem, a in (c.stems or {}).items():
            arrays[f"{i}/stem/{stem}"] = np.asarray(a, dtype=np.float32)
        meta.append({
            "case_id": c.case_id, "generator": c.generator, "original": int(c.original),
            "target": int(c.target), "domain": c.domain,
            "true_segments": None if c.true_segments is None else [int(s) for s in c.true_segments],
            "necessary_segments": (None if c.necessary_segments is None
                                   else [int(s) for s in c.necessary_segments]),
            "stems": sorted(c.stems) if c.stems else None,
            "info": c.info,
        })
    arrays["meta"] = np.frombuffer(json.dumps({"cases": meta, "stats": stats}).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_cases(path: Path) -> tuple[list[Case], dict]:
    """Read cases written by :func:`save_cases` (no pickles)."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z["meta"].tobytes().decode())
        cases = []
        for i, m in enumerate(meta["cases"]):
            arr = {name: (z[f"{i}/{name}"] if f"{i}/{name}" in z.files else None) for name in _ARRAYS}
            ts, ns = m["true_segments"], m.get("necessary_segments")
            stems = {k: z[f"{i}/stem/{k}"] for k in m.get("stems") or []} or None
            cases.append(Case(
                case_id=m["case_id"], generator=m["generator"], x=arr["x"], x_mod=arr["x_mod"],
                original=m["original"], target=m["target"], domain=m["domain"],
                true_segments=None if ts is None else tuple(ts), audio=arr["audio"],
                audio_mod=arr["audio_mod"], stems=stems, info=m["info"],
                necessary_segments=None if ns is None else tuple(ns),
            ))
    return cases, meta["stats"]
