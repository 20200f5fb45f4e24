"""Helpers shared by the generators: drawing and deciding excerpts, clusters, targets, directions,
the leave-one-segment-out necessity test, stats, and the source files the case cache is keyed by."""

from __future__ import annotations

import hashlib
import inspect
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from explbench.api import Excerpt, Task
from explbench.api.model_access import forward_batched
from explbench.core.segmentation import Segmentation

_HERE = Path(__file__).resolve().parent
#: sources every generator's cases depend on, besides the generator's own module
SHARED_SOURCES: tuple[Path, ...] = (
    _HERE / "common.py", _HERE / "attack.py", _HERE / "patterns.py", _HERE.parent / "core" / "cases.py",
)
#: how many excerpts per cluster a task's stream is assumed to hold when the task cannot be asked
#: for a cluster-spread stream (svd-synth cuts up to 8 excerpts from one song)
STREAM_STRETCH = 8


def code_version(*sources: str | Path) -> str:
    """Hash of source files: 16 hex digits of SHA-256 over each file's name and bytes, in order.

    Parameters
    ----------
    sources : paths of the files

    Raises
    ------
    FileNotFoundError
        Naming the missing file.
    """
    h = hashlib.sha256()
    for src in sources:
        path = Path(src)
        if not path.is_file():
            raise FileNotFoundError(f"generator source {str(path)!r} not found; cannot version its cases")
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]




def cluster_of(task: Task, excerpt: Excerpt) -> str:
    """The unit of independence of an excerpt: ``task.cluster(excerpt)`` when the task defines
    it, else ``str(excerpt.song_seed)``."""
    fn = getattr(task, "cluster", None)
    return str(fn(excerpt)) if callable(fn) else str(excerpt.song_seed)


def check_per_cluster(per_cluster: int | None) -> int | None:
    """Validate a generator's ``per_cluster`` (None: no limit)."""
    if per_cluster is None:
        return None
    if isinstance(per_cluster, bool) or int(per_cluster) != per_cluster or per_cluster < 1:
        raise ValueError(f"per_cluster must be a positive integer or None (no limit), got {per_cluster!r}")
    return int(per_cluster)


@dataclass
class ClusterQuota:
    """At most ``per_cluster`` admitted excerpts per cluster (``None``: no limit).

    Attributes
    ----------
    per_cluster : int or None
    taken : Counter of str
        Excerpts admitted so far per cluster.
    refused : int
        Excerpts turned away because their cluster was full.
    """

    per_cluster: int | None
    taken: Counter = field(default_factory=Counter)
    refused: int = 0

    def admit(self, cluster: str) -> bool:
        """Take one slot of ``cluster`` if it has one left; count a refusal otherwise."""
        if self.per_cluster is not None and self.taken[cluster] >= self.per_cluster:
            self.refused += 1
            return False
        self.taken[cluster] += 1
        return True


def excerpt_stream(task: Task, split: str, m: int, seed: int, per_cluster: int | None) -> Iterator[Excerpt]:
    """The task's excerpt stream, long enough to reach about ``m`` clusters.

    Without a cluster limit this is ``task.excerpts(split, m, seed)``. With one, a task whose
    ``excerpts`` takes a ``per_cluster`` keyword is asked for a stream with at most that many
    excerpts of each class per cluster; other tasks are asked for ``STREAM_STRETCH`` times as
    many excerpts (streams are lazy: only what the generator consumes is rendered).
    """
    if per_cluster is None:
        return iter(task.excerpts(split, m, seed))
    try:
        takes = "per_cluster" in inspect.signature(task.excerpts).parameters
    except (TypeError, ValueError):
        takes = False
    if takes:
        return iter(task.excerpts(split, m, seed, per_cluster=per_cluster))  # type: ignore[call-arg]
    return iter(task.excerpts(split, m * STREAM_STRETCH, seed))


@dataclass
class Drawn:
    """One excerpt with the model's decision on it.

    Attributes
    ----------
    index : int
        Position in the seeded excerpt stream (orders cases deterministically).
    excerpt : Excerpt
    cluster : str
        The excerpt's unit of independence (:func:`cluster_of`).
    x : torch.Tensor, shape domain_shape
        The clean input in the explanation domain.
    original : int
        The model's decision on ``x``.
    target : int
        The class an attack aims for (:func:`target_class`).
    probs : torch.Tensor, shape (C,)
        Class probabilities on ``x``.
    """

    index: int
    excerpt: Excerpt
    cluster: str
    x: torch.Tensor
    original: int
    target: int
    probs: torch.Tensor


def target_class(probabilities: torch.Tensor, decisions: torch.Tensor) -> torch.Tensor:
    """Target classes ``(B,)``: the other class for binary tasks, else the runner-up.

    Parameters
    ----------
    probabilities : torch.Tensor, shape (B, C)
    decisions : torch.Tensor, shape (B,), int
    """
    if probabilities.shape[1] == 2:
        return 1 - decisions
    masked = probabilities.clone()
    masked.scatter_(1, decisions[:, None], float("-inf"))
    return masked.argmax(dim=1)


def decide(task: Task, clf: torch.nn.Module, x: torch.Tensor, batch_size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities ``(N, C)`` and decisions ``(N,)`` for domain inputs ``(N, *domain_shape)``."""
    p = forward_batched(clf, x, batch_size, x.device)
    if p.numel() == 0:
        p = torch.empty(0, max(len(task.classes), 2))
    return p, task.decide(p).long()


def decided_excerpts(
    task: Task, clf: torch.nn.Module, split: str, m: int, seed: int, batch_size: int = 16,
    per_cluster: int | None = None,
) -> Iterator[Drawn]:
    """Lazily draw excerpts of ``split`` by ``seed`` with the model's clean decisions.

    Parameters
    ----------
    m : int
        Excerpts wanted (about as many clusters when ``per_cluster`` is set).
    per_cluster : int, optional
        Pass on at most ``per_cluster`` excerpts of each ground-truth label per cluster: the
        caller admits at most ``per_cluster`` per cluster (:class:`ClusterQuota`), and one spare
        per label lets it find the other direction in a cluster. Excerpts beyond that are
        dropped before they are classified.

    Excerpts are classified ``batch_size`` at a time (one forward per chunk). ``index`` counts
    the excerpts passed on.
    """
    stream = excerpt_stream(task, split, m, seed, per_cluster)
    seen: Counter = Counter()
    index = 0
    while True:
        chunk: list[tuple[Excerpt, str]] = []
        for ex in stream:
            cl = cluster_of(task, ex)
            if per_cluster is not None:
                if seen[cl, ex.label] >= per_cluster:
                    continue
                seen[cl, ex.label] += 1
            chunk.append((ex, cl))
            if len(chunk) == batch_size:
                break
        if not chunk:
            return
        audio = torch.from_numpy(np.stack([np.asarray(e.audio, dtype=np.float32) for e, _ in chunk]))
        with torch.no_grad():  # not inference_mode: these tensors may enter autograd later
            x = task.to_domain(audio)
        probs, dec = decide(task, clf, x, batch_size)
        tgt = target_class(probs, dec)
        for j, (ex, cl) in enumerate(chunk):
            yield Drawn(index, ex, cl, x[j], int(dec[j]), int(tgt[j]), probs[j])
            index += 1
        if len(chunk) < batch_size:
            return


def necessary_segments(task: Task, clf: torch.nn.Module, segments: Segmentation, x: torch.Tensor,
                       delta: torch.Tensor, claimed: Sequence[Sequence[int]], targets: Iterable[int],
                       batch_size: int = 16) -> list[tuple[int, ...]]:
    """Leave-one-segment-out necessity of claimed causes, in one batched pass.

    For case ``i`` and each segment ``s`` of its claim ``S_i``, ``delta_i`` is applied on
    ``S_i`` minus ``s``: ``x_i + M(S_i - {s}) * delta_i``. ``s`` is necessary when that input is
    not decided as ``targets[i]``. ``sum_i |S_i|`` forwards.

    Parameters
    ----------
    x, delta : torch.Tensor, shape (N, *segments.shape)
        Clean inputs and perturbations (explanation domain).
    claimed : N sequences of int
        The claimed causes ``S_i`` (segment indices).
    targets : N ints
        The classes ``x_i + M(S_i) * delta_i`` is decided as.

    Returns
    -------
    list of N tuples of int
        The necessary segments of each claim, in the claim's order.
    """
    rows, owner, left_out = [], [], []
    for i, s_i in enumerate(claimed):
        for s in s_i:
            z = np.zeros(segments.d, dtype=np.float32)
            z[[int(t) for t in s_i if t != s]] = 1.0
            rows.append(z)
            owner.append(i)
            left_out.append(int(s))
    if not rows:
        return [() for _ in claimed]
    idx = torch.tensor(owner)
    probe = x[idx].float() + segments.mask(np.stack(rows)).to(x.device) * delta[idx].float()
    _, dec = decide(task, clf, probe, batch_size)
    tgt = torch.tensor([int(t) for t in targets])[idx]
    necessary: list[list[int]] = [[] for _ in claimed]
    for j, still in enumerate((dec.cpu() == tgt).tolist()):
        if not still:
            necessary[owner[j]].append(left_out[j])
    return [tuple(n) for n in necessary]


def minimal_counts(cases: Iterable, key: str = "k") -> dict[str, dict]:
    """Per value of ``case.info[key]``: cases and how many of them are minimal."""
    out: dict[str, dict] = {}
    for c in cases:
        e = out.setdefault(str(c.info[key]), {"cases": 0, "minimal": 0})
        e["cases"] += 1
        e["minimal"] += int(bool(c.minimal))
    for e in out.values():
        e["minimal_rate"] = rate(e["minimal"], e["cases"])
    return dict(sorted(out.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else kv[0]))


def stems_of(drawn: Drawn) -> dict[str, np.ndarray] | None:
    """The excerpt's stems as float32 arrays ``(n_samples,)``, or None when it has none."""
    stems = drawn.excerpt.stems
    return {k: np.asarray(v, dtype=np.float32) for k, v in stems.items()} if stems else None


def class_name(task: Task, c: int) -> str:
    return task.classes[c] if c < len(task.classes) else str(c)


def direction_name(task: Task, original: int, target: int | None = None) -> str:
    """E.g. ``"no-voice-to-voice"``; ``"no-voice-to-other"`` when targets vary (C > 2)."""
    t = class_name(task, target) if target is not None else "other"
    return f"{class_name(task, original)}-to-{t}"


def n_classes(task: Task) -> int:
    return max(len(task.classes), 2)


def split_n(n: int, parts: int) -> list[int]:
    """``n`` split into ``parts`` near-equal counts, the first ones taking the remainder."""
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def rate(succeeded: int, attempted: int) -> float | None:
    return succeeded / attempted if attempted else None


def log(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)
