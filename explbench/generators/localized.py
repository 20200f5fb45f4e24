"""Localised cases: a parent's perturbation restricted to its k most energetic segments.

For a parent case (x, delta, target) and k: S = top-k segments by ``E_i = sum(M_i * delta^2)``,
``x_k = x + M(S) * delta``. Only the ``x_k`` whose decision is the parent's target are kept;
their cause is exactly S (the protocol's segment-recovery cases, paper Fig. 3).
"""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np
import torch

from explbench.api import Task
from explbench.cases import Case
from explbench.generators.common import decide, direction_name, log, rate
from explbench.registry import register_generator
from explbench.segmentation import Segmentation, top_k


@register_generator("localized")
class Localized:
    """Derived generator: restrict parent cases' perturbations to their top-k energy segments.

    Parameters
    ----------
    ks : tuple of int
        Numbers of segments to keep (default 1, 3, 5).
    batch_size : int
        Batch size of the forward passes.
    """

    name: ClassVar[str] = "localized"
    description: ClassVar[str] = "parent perturbation restricted to its top-k energy segments (k = 1, 3, 5)"
    derived: ClassVar[bool] = True

    def __init__(self, ks: tuple[int, ...] = (1, 3, 5), batch_size: int = 16) -> None:
        self.ks = tuple(int(k) for k in ks)
        self.batch_size = batch_size

    def get_params(self) -> dict:
        return {"ks": list(self.ks), "batch_size": self.batch_size}

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
            ``true_segments = S`` (top-k by energy, descending).
        stats : dict
            Per k and direction: parents, flipped, flip rate; seconds.
        """
        t0 = time.perf_counter()
        clf = task.classifier().eval()
        cases: list[Case] = []
        per_k: dict[str, dict] = {}
        if parents:
            x = torch.from_numpy(np.stack([p.x for p in parents]).astype(np.float32))
            delta = torch.from_numpy(np.stack([p.delta for p in parents]).astype(np.float32))
            energy = segments.project(delta.double() ** 2)  # (P, d)
            targets = torch.tensor([p.target for p in parents])
        for k in self.ks:
            if not parents or not 1 <= k <= segments.d:
                per_k[f"k{k}"] = {"k": k, "parents": len(parents), "flipped": 0, "flip_rate": None,
                                  "directions": {}}
                continue
            chosen = [top_k(e, k) for e in energy]
            z = np.zeros((len(parents), segments.d), dtype=np.float32)
            for i, s in enumerate(chosen):
                z[i, s] = 1.0
            x_k = x + segments.mask(z) * delta
            _, dec = decide(task, clf, x_k, self.batch_size)
            ok = (dec == targets).numpy()
            dirs: dict[str, dict] = {}
            for i, p in enumerate(parents):
                d = dirs.setdefault(direction_name(task, p.original, p.target), {"parents": 0, "flipped": 0})
                d["parents"] += 1
                d["flipped"] += int(ok[i])
                if not ok[i]:
                    continue
                cases.append(Case(
                    case_id=f"localized-k{k}/{p.case_id}",
                    generator=self.name,
                    x=p.x.astype(np.float32),
                    x_mod=x_k[i].numpy().astype(np.float32),
                    original=p.original,
                    target=p.target,
                    domain=p.domain,
                    true_segments=tuple(int(s) for s in chosen[i]),
                    audio=p.audio,
                    stems=p.stems,
                    info={**{key: p.info[key] for key in ("song_seed", "offset", "label") if key in p.info},
                          "k": k, "parent": p.case_id, "parent_generator": p.generator,
                          "energy_fraction": float(energy[i, chosen[i]].sum() / max(energy[i].sum(), 1e-300))},
                ))
            for d in dirs.values():
                d["flip_rate"] = rate(d["flipped"], d["parents"])
            per_k[f"k{k}"] = {"k": k, "parents": len(parents), "flipped": int(ok.sum()),
                              "flip_rate": rate(int(ok.sum()), len(parents)), "directions": dirs}
            log(progress, f"localized k={k}: {int(ok.sum())}/{len(parents)} flip")
        stats = {
            "generator": self.name, "config": self.get_params(), "parents": len(parents),
            "parent_generators": sorted({p.generator for p in parents}),
            "n_cases": len(cases), "empty": not cases, "per_k": per_k,
            "seconds": round(time.perf_counter() - t0, 3),
        }
        return cases, stats
