"""Helpers shared by the generators: drawing and deciding excerpts, targets, directions, stats."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from explbench.api import Excerpt, Task, forward_batched


@dataclass
class Drawn:
    """One excerpt with the model's decision on it.

    Attributes
    ----------
    index : int
        Position in the seeded excerpt stream (orders cases deterministically).
    excerpt : Excerpt
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
    task: Task, clf: torch.nn.Module, split: str, m: int, seed: int, batch_size: int = 16
) -> Iterator[Drawn]:
    """Lazily draw up to ``m`` excerpts of ``split`` by ``seed`` with the model's clean decisions.

    Excerpts are rendered and classified ``batch_size`` at a time (one forward per chunk).
    """
    stream = task.excerpts(split, m, seed)
    index = 0
    while True:
        chunk: list[Excerpt] = []
        for ex in stream:
            chunk.append(ex)
            if len(chunk) == batch_size:
                break
        if not chunk:
            return
        audio = torch.from_numpy(np.stack([np.asarray(e.audio, dtype=np.float32) for e in chunk]))
        with torch.no_grad():  # not inference_mode: these tensors may enter autograd later
            x = task.to_domain(audio)
        probs, dec = decide(task, clf, x, batch_size)
        tgt = target_class(probs, dec)
        for j, ex in enumerate(chunk):
            yield Drawn(index, ex, x[j], int(dec[j]), int(tgt[j]), probs[j])
            index += 1
        if len(chunk) < batch_size:
            return


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
