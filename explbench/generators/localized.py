"""Localised cases: a parent's perturbation restricted to its k most energetic segments.

For a parent case (x, delta, target) and k: S = the k segments of largest energy
``E_i = sum(M_i * delta^2)``, ``x_k = x + M(S) * delta``. A segment with ``E_i = 0`` carries no
perturbation and is never claimed: a parent whose perturbation touches fewer than k segments
yields no case for that k. Only the ``x_k`` decided as the parent's target are kept (the
protocol's segment-recovery cases, paper Fig. 3).

What is known about such a case: S *suffices* (the perturbation on S alone flips the decision)
and every segment of S carries perturbation. S need not be the cause's minimal form: a
leave-one-segment-out test (k extra forwards per case) records in ``necessary_segments`` those
segments of S whose removal un-flips the decision, and the case is *minimal* when that is all of
S. ``minimal_only`` keeps only minimal cases.
"""

from __future__ import annotations

from pathlib import Path

import time
from typing import ClassVar

import numpy as np
import torch

from explbench.api import Task
from explbench.core.cases import Case
from explbench.api.generator import Generator
from explbench.generators.common import (SHARED_SOURCES, decide, direction_name, log, necessary_segments,
                                         rate)
from explbench.api.registry import register_generator
from explbench.core.segmentation import Segmentation


def parent_cluster(case: Case) -> str:
    """A case's cluster: ``info["cluster"]``, else its song seed, else its id."""
    if "cluster" in case.info:
        return str(case.info["cluster"])
    if "song_seed" in case.info:
        return str(case.info["song_seed"])
    return case.case_id


def support_top_k(energy: np.ndarray, k: int) -> np.ndarray | None:
    """The ``k`` segments of largest energy, descending (ties by lower index), or None when fewer
    than ``k`` segments have energy > 0.

    Parameters
    ----------
    energy : np.ndarray, shape (d,), float64, >= 0
    """
    e = np.asarray(energy, dtype=np.float64)
    if int((e > 0).sum()) < k:
        return None
    return np.lexsort((np.arange(e.size), -e))[:k]


@register_generator("localized")
class Localized(Generator):
    """Derived generator: restrict parent cases' perturbations to their top-k energy segments.

    Parameters
    ----------
    ks : tuple of int
        Numbers of segments to keep (default 1, 3, 5).
    minimal_only : bool
        Keep only cases whose every claimed segment is individually necessary.
    batch_size : int
        Batch size of the forward passes.
    """

    name: ClassVar[str] = "localized"
    requirement_text: ClassVar[str] = "it restricts its parents' perturbations"
    description: ClassVar[str] = "parent perturbation restricted to its top-k energy segments (k = 1, 3, 5)"
    derived: ClassVar[bool] = True
    version: ClassVar[str] = "1"
    shared_sources: ClassVar[tuple[Path, ...]] = SHARED_SOURCES

    def __init__(self, ks: tuple[int, ...] = (1, 3, 5), minimal_only: bool = False, batch_size: int = 16) -> None:
        self.ks = tuple(int(k) for k in ks)
        self.minimal_only = bool(minimal_only)
        self.batch_size = batch_size


    def derive(self, task: Task, segments: Segmentation, parents: list[Case], seed: int, *,
               progress: bool = True) -> tuple[list[Case], dict]:
        """Localised cases from ``parents``.

        Parameters
        ----------
        parents : list of Case
            Cases with ``x``, ``x_mod`` of shape ``segments.shape``.
        seed : int
            Unused (the construction is deterministic); kept for a uniform signature.

        Returns
        -------
        cases : list of Case
            For each k (ascending) and parent (in order), the flipping ``x_k`` with
            ``true_segments = S`` (top-k by energy, descending), ``necessary_segments``,
            ``info["minimal"]`` and the parent's ``info["cluster"]``.
        stats : dict
            Per k: parents, skipped_support (parents whose perturbation touches fewer than k
            segments), flipped, minimal, kept, rates, and per direction; clusters; seconds.
        """
        t0 = time.perf_counter()
        clf = task.classifier().eval()
        cases: list[Case] = []
        per_k: dict[str, dict] = {}
        if parents:
            x = torch.from_numpy(np.stack([p.x for p in parents]).astype(np.float32))
            delta = torch.from_numpy(np.stack([p.delta for p in parents]).astype(np.float32))
            energy = segments.project(delta.double() ** 2)  # (P, d)
        for k in self.ks:
            entry = {"k": k, "parents": len(parents), "skipped_support": 0, "flipped": 0, "minimal": 0,
                     "kept": 0, "flip_rate": None, "minimal_rate": None, "directions": {}}
            per_k[f"k{k}"] = entry
            if not parents or not 1 <= k <= segments.d:
                entry["skipped_support"] = len(parents)
                continue
            chosen = [support_top_k(e, k) for e in energy]
            eligible = [i for i, s in enumerate(chosen) if s is not None]
            entry["skipped_support"] = len(parents) - len(eligible)
            dirs: dict[str, dict] = entry["directions"]
            for i, p in enumerate(parents):
                d = dirs.setdefault(direction_name(task, p.original, p.target),
                                    {"parents": 0, "skipped_support": 0, "flipped": 0, "minimal": 0})
                d["parents"] += 1
                d["skipped_support"] += int(chosen[i] is None)
            if not eligible:
                log(progress, f"localized k={k}: no parent's perturbation touches {k} segments")
                continue
            idx = torch.tensor(eligible)
            z = np.zeros((len(eligible), segments.d), dtype=np.float32)
            for row, i in enumerate(eligible):
                z[row, chosen[i]] = 1.0
            x_k = x[idx] + segments.mask(z) * delta[idx]
            targets = [parents[i].target for i in eligible]
            _, dec = decide(task, clf, x_k, self.batch_size)
            ok = (dec == torch.tensor(targets)).numpy()
            flipped = [row for row in range(len(eligible)) if ok[row]]
            necessary = necessary_segments(
                task, clf, segments, x[idx[flipped]], delta[idx[flipped]],
                [chosen[eligible[row]].tolist() for row in flipped], [targets[row] for row in flipped],
                self.batch_size) if flipped else []
            for row, nec in zip(flipped, necessary):
                i = eligible[row]
                p = parents[i]
                s = tuple(int(t) for t in chosen[i])
                minimal = set(nec) == set(s)
                d = dirs[direction_name(task, p.original, p.target)]
                d["flipped"] += 1
                d["minimal"] += int(minimal)
                entry["flipped"] += 1
                entry["minimal"] += int(minimal)
                if self.minimal_only and not minimal:
                    continue
                entry["kept"] += 1
                cases.append(Case(
                    case_id=f"localized-k{k}/{p.case_id}",
                    generator=self.name,
                    x=p.x.astype(np.float32),
                    x_mod=x_k[row].numpy().astype(np.float32),
                    original=p.original,
                    target=p.target,
                    domain=p.domain,
                    true_segments=s,
                    necessary_segments=nec,
                    audio=p.audio,
                    stems=p.stems,
                    info={**{key: p.info[key] for key in ("song_seed", "offset", "label") if key in p.info},
                          "cluster": parent_cluster(p), "k": k, "minimal": minimal,
                          "parent": p.case_id, "parent_generator": p.generator,
                          "energy_fraction": float(energy[i, list(s)].sum() / max(energy[i].sum(), 1e-300))},
                ))
            for d in dirs.values():
                d["flip_rate"] = rate(d["flipped"], d["parents"] - d["skipped_support"])
                d["minimal_rate"] = rate(d["minimal"], d["flipped"])
            entry["flip_rate"] = rate(entry["flipped"], len(eligible))
            entry["minimal_rate"] = rate(entry["minimal"], entry["flipped"])
            log(progress, f"localized k={k}: {entry['flipped']}/{len(eligible)} flip "
                          f"({entry['skipped_support']} parents touch fewer than {k} segments), "
                          f"{entry['minimal']} minimal")
        stats = {
            "generator": self.name, "config": self.get_params(), "parents": len(parents),
            "parent_generators": sorted({p.generator for p in parents}),
            "n_cases": len(cases), "empty": not cases, "per_k": per_k,
            "n_clusters": len({c.info["cluster"] for c in cases}),
            "seconds": round(time.perf_counter() - t0, 3),
        }
        return cases, stats
