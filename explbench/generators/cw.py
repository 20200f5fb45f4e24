"""Adversarial cases: Carlini–Wagner-style attacks on the |STFT| magnitude or on the waveform.

Both generators share :func:`explbench.generators.attack.attack_stream`; they differ only in
where the perturbation lives (:meth:`_CarliniWagner.lift`, :meth:`_CarliniWagner.space_to_domain`)
and in its default ``eps``/``eta``/``alpha`` (paper: waveform 0.01 / 3e-4 / 2, spectrogram
0.1 / 5e-4 / 15). A task may override them with a class attribute
``attack_defaults = {"cw-waveform": {"eps": …}, …}`` (keys: generator name or attack space);
constructor arguments override both.

Excerpts are spread over clusters (the task's unit of independence, svd-synth: the song): at
most ``per_cluster`` excerpts of one cluster are attacked (default 1), so n cases come from
about n clusters.
"""

from __future__ import annotations

from pathlib import Path

import time
from typing import Any, ClassVar

import numpy as np
import torch
from tqdm import tqdm

from explbench.api import Task
from explbench.core.cases import Case
from explbench.generators.attack import AttackConfig, Item, Outcome, attack_stream
from explbench.api.generator import Generator
from explbench.generators.common import (SHARED_SOURCES, ClusterQuota, Drawn, check_per_cluster, decided_excerpts,
                                         direction_name, n_classes, rate, split_n,
                                         stems_of)
from explbench.api.registry import register_generator
from explbench.core.segmentation import Segmentation


class _CarliniWagner(Generator):
    """Common driver: balanced excerpt drawing, batched attack, re-check, cases and stats.

    Parameters
    ----------
    eps, eta, alpha : float, optional
        Bound of ``|delta|``, step size and weight of the classification loss, in attack-space
        units; ``None`` takes the task's ``attack_defaults`` or the generator's defaults.
    max_iter : int, optional
        Maximum gradient steps per excerpt (default 1000).
    confidence : float, optional
        Target-class probability at which an excerpt's attack stops (default 0.9). Stopping at
        the first flip (0.5) leaves every case on the decision boundary, where applying any
        part of the perturbation flips nothing; a margin, as in Carlini–Wagner, gives causes
        that can be localised.
    batch_size : int
        Excerpts attacked at once.
    cap_factor : int
        At most ``cap_factor`` times the wanted number of excerpts are attacked per direction.
    per_cluster : int or None
        At most this many excerpts of one cluster are attacked (default 1; None: no limit).
    precision : {"auto", "float32", "bfloat16"}
        Arithmetic of the search's forward and backward passes (outcomes are always re-checked
        in float32); "auto" takes bfloat16 where the CPU or GPU computes it natively. See
        :mod:`explbench.generators.attack`.
    threads : int
        CPU sub-batches attacked at once, one torch thread each (0: torch's thread count).
        Changes speed, and results only by float rounding.
    """

    name: ClassVar[str] = ""
    space: ClassVar[str] = ""
    defaults: ClassVar[dict[str, float]] = {}
    description: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    shared_sources: ClassVar[tuple[Path, ...]] = SHARED_SOURCES

    def __init__(self, eps: float | None = None, eta: float | None = None, alpha: float | None = None,
                 max_iter: int | None = None, confidence: float | None = None, batch_size: int = 16,
                 cap_factor: int = 3, per_cluster: int | None = 1, precision: str = "auto",
                 threads: int = 0) -> None:
        self.eps, self.eta, self.alpha, self.max_iter = eps, eta, alpha, max_iter
        self.confidence = confidence
        self.batch_size = batch_size
        self.precision, self.threads = precision, int(threads)
        # the attack's own checks, now rather than at the first generate()
        AttackConfig(eps=1.0, eta=1.0, alpha=1.0, batch_size=int(batch_size), precision=precision,
                     threads=self.threads)
        self.cap_factor = cap_factor
        self.per_cluster = check_per_cluster(per_cluster)

    # -- the attack space (what differs between the two generators) ---------------------------

    def check(self, task: Task) -> None:
        """Raise a clear error when ``task`` cannot host this attack."""

    def lift(self, task: Task, audio: torch.Tensor) -> torch.Tensor:
        """Waveforms ``(B, n_samples)`` to clean attack-space inputs ``(B, *space)``."""
        raise NotImplementedError

    def space_to_domain(self, task: Task, base: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """Attack-space input plus perturbation ``(B, *space)`` to domain inputs ``(B, *domain)``."""
        raise NotImplementedError

    # -- configuration ----------------------------------------------------------------------

    def config(self, task: Task) -> AttackConfig:
        """Resolved attack configuration: constructor > task ``attack_defaults`` > defaults."""
        merged: dict[str, Any] = {"max_iter": 1000, "confidence": 0.9, **self.defaults}
        overrides = getattr(task, "attack_defaults", None) or {}
        for key in (self.space, self.name):
            merged.update(overrides.get(key, {}))
        for key in ("eps", "eta", "alpha", "max_iter", "confidence"):
            if getattr(self, key) is not None:
                merged[key] = getattr(self, key)
        return AttackConfig(eps=float(merged["eps"]), eta=float(merged["eta"]),
                            alpha=float(merged["alpha"]), max_iter=int(merged["max_iter"]),
                            confidence=float(merged["confidence"]),
                            batch_size=int(self.batch_size), precision=self.precision,
                            threads=self.threads)


    # -- generation --------------------------------------------------------------------------

    def generate(self, task: Task, segments: Segmentation, n: int, seed: int, *, split: str = "test",
                 progress: bool = True) -> tuple[list[Case], dict]:
        """Attack excerpts of ``split`` until about ``n / C`` cases per direction exist.

        Parameters
        ----------
        task : Task
        segments : Segmentation
            Unused by the attack (kept for a uniform generator signature).
        n : int
            Number of cases wanted in total, split evenly over the original decisions.
        seed : int
            Draws the excerpts; the attack itself is deterministic.

        Returns
        -------
        cases : list of Case, ordered by excerpt draw order
        stats : dict
            JSON-serialisable: per direction attempted / succeeded / success_rate / iterations,
            excerpts drawn, seconds and attack throughput.
        """
        self.check(task)
        t0 = time.perf_counter()
        cfg = self.config(task)
        clf = task.classifier().eval()
        n_cls = n_classes(task)
        need = split_n(max(int(n), 0), n_cls)
        cap = [self.cap_factor * k for k in need]
        attempted, succeeded, inflight = [0] * n_cls, [0] * n_cls, [0] * n_cls
        skipped, flipped_in_attack, recheck_failed = [0] * n_cls, [0] * n_cls, [0] * n_cls
        iters_ok: list[list[int]] = [[] for _ in range(n_cls)]
        iters_all: list[list[int]] = [[] for _ in range(n_cls)]
        quota = ClusterQuota(self.per_cluster)
        stream = decided_excerpts(task, clf, split, self.cap_factor * max(n, 1) * n_cls, seed,
                                  self.batch_size, self.per_cluster)
        pending: dict[int, tuple[Drawn, torch.Tensor]] = {}
        done: list[tuple[Drawn, torch.Tensor, torch.Tensor, Outcome, torch.Tensor]] = []
        state = {"drawn": 0, "exhausted": n <= 0}
        bar = tqdm(total=sum(need), desc=self.name, disable=not progress)

        def open_slot(c: int) -> bool:
            return succeeded[c] + inflight[c] < need[c] and attempted[c] < cap[c]

        def source() -> Item | None:
            while not state["exhausted"] and any(open_slot(c) for c in range(n_cls)):
                dr = next(stream, None)
                if dr is None:
                    state["exhausted"] = True
                    break
                state["drawn"] += 1
                c = dr.original
                if not open_slot(c):
                    skipped[c] += 1
                    continue
                if not quota.admit(dr.cluster):
                    continue
                attempted[c] += 1
                inflight[c] += 1
                audio = torch.from_numpy(np.asarray(dr.excerpt.audio, dtype=np.float32))[None]
                with torch.no_grad():
                    base = self.lift(task, audio)[0]
                pending[dr.index] = (dr, base)
                return Item(dr.index, base, dr.target)
            return None

        def on_done(outcomes: list[Outcome]) -> None:
            flipped = [o for o in outcomes if o.flipped]
            if flipped:  # a fresh forward decides, not the attack's own last step
                bases = torch.stack([pending[o.key][1] for o in flipped])
                deltas = torch.stack([o.delta for o in flipped])
                with torch.inference_mode():
                    x_mod = self.space_to_domain(task, bases, deltas)
                    probs = clf(x_mod).float()
                    dec = task.decide(probs)
                verdict = {o.key: (x_mod[i].clone(), probs[i].clone(), int(dec[i])) for i, o in enumerate(flipped)}
            for o in outcomes:
                dr, base = pending.pop(o.key)
                c = dr.original
                inflight[c] -= 1
                iters_all[c].append(o.iterations)
                if not o.flipped:
                    continue
                flipped_in_attack[c] += 1
                xm, pm, dm = verdict[o.key]
                if dm != dr.target or dm == dr.original:
                    recheck_failed[c] += 1
                    continue
                succeeded[c] += 1
                iters_ok[c].append(o.iterations)
                done.append((dr, base, xm, o, pm))
                bar.update(1)

        t_attack = time.perf_counter()
        work = attack_stream(clf, task.decide, lambda b, d: self.space_to_domain(task, b, d),
                             source, on_done, cfg)
        t_attack = time.perf_counter() - t_attack
        bar.close()

        done.sort(key=lambda r: r[0].index)
        cases = [self._case(task, i, *r) for i, r in enumerate(done)]
        directions = {}
        for c in range(n_cls):
            directions[direction_name(task, c, 1 - c if n_cls == 2 else None)] = {
                "original": c,
                "wanted": need[c],
                "attempted": attempted[c],
                "succeeded": succeeded[c],
                "success_rate": rate(succeeded[c], attempted[c]),
                "flipped_in_attack": flipped_in_attack[c],
                "recheck_failed": recheck_failed[c],
                "skipped_excerpts": skipped[c],
                "mean_iterations": float(np.mean(iters_ok[c])) if iters_ok[c] else None,
                "median_iterations": float(np.median(iters_ok[c])) if iters_ok[c] else None,
                "mean_iterations_all": float(np.mean(iters_all[c])) if iters_all[c] else None,
            }
        total_attempted = sum(attempted)
        stats = {
            "generator": self.name,
            "attack_space": self.space,
            "config": {"eps": cfg.eps, "eta": cfg.eta, "alpha": cfg.alpha, "max_iter": cfg.max_iter,
                       "confidence": cfg.confidence,
                       "batch_size": cfg.batch_size, "cap_factor": self.cap_factor},
            "split": split, "seed": int(seed), "n_requested": int(n),
            "n_cases": len(cases),
            "empty": not cases,
            "per_cluster": self.per_cluster,
            "n_clusters": len({c.info["cluster"] for c in cases}),
            "clusters_attempted": len(quota.taken),
            "excerpts_drawn": state["drawn"],
            "excerpts_refused_cluster_full": quota.refused,
            "directions": directions,
            "attempted": total_attempted,
            "succeeded": sum(succeeded),
            "success_rate": rate(sum(succeeded), total_attempted),
            "item_iterations": int(work),
            "attack_seconds": round(t_attack, 3),
            "excerpts_per_second": total_attempted / t_attack if t_attack > 0 and total_attempted else None,
            "item_iterations_per_second": work / t_attack if t_attack > 0 and work else None,
            "seconds": round(time.perf_counter() - t0, 3),
        }
        if not cases:
            stats["message"] = (f"{self.name}: no successful case out of {total_attempted} attacked "
                                f"excerpts ({state['drawn']} drawn)")
        return cases, stats

    def _case(self, task: Task, i: int, dr: Drawn, base: torch.Tensor, x_mod: torch.Tensor,
              o: Outcome, probs: torch.Tensor) -> Case:
        delta = o.delta.double()
        audio = np.asarray(dr.excerpt.audio, dtype=np.float32)
        audio_mod = None
        if self.space == "waveform":
            audio_mod = (base + o.delta).cpu().numpy().astype(np.float32)
        return Case(
            case_id=f"{self.name}/{i:04d}",
            generator=self.name,
            x=dr.x.cpu().numpy().astype(np.float32),
            x_mod=x_mod.cpu().numpy().astype(np.float32),
            original=dr.original,
            target=dr.target,
            domain=self.space,
            audio=audio,
            audio_mod=audio_mod,
            stems=stems_of(dr),
            info={
                "cluster": dr.cluster,
                "song_seed": int(dr.excerpt.song_seed),
                "offset": float(dr.excerpt.offset),
                "label": int(dr.excerpt.label),
                "draw_index": int(dr.index),
                "iterations": int(o.iterations),
                "linf": float(delta.abs().max()),
                "l2": float(delta.norm()),
                "p_target_clean": float(dr.probs[dr.target]),
                "p_target_mod": float(probs[dr.target]),
            },
        )


@register_generator("cw-waveform")
class CWWaveform(_CarliniWagner):
    """C&W attack on the waveform through the differentiable front-end (delta stored in log-mel)."""

    name = "cw-waveform"
    requirement_text = "it perturbs the waveform through to_domain"
    space = "waveform"
    description = "Carlini-Wagner attack on the waveform (sign steps, eps 0.01)"
    defaults = {"eps": 0.01, "eta": 3e-4, "alpha": 2.0}

    def lift(self, task: Task, audio: torch.Tensor) -> torch.Tensor:
        return audio.to(getattr(task, "device", "cpu"))

    def space_to_domain(self, task: Task, base: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return task.to_domain(base + delta)


@register_generator("cw-spectrogram")
class CWSpectrogram(_CarliniWagner):
    """C&W attack on the |STFT| magnitude, mapped into the log-mel domain (clamped at >= 0)."""

    name = "cw-spectrogram"
    requires_hooks = ("magnitude", "magnitude_to_domain")
    requirement_text = "it perturbs the |STFT| magnitude and maps it into the domain"
    space = "spectrogram"
    description = "Carlini-Wagner attack on the |STFT| magnitude (sign steps, eps 0.1)"
    defaults = {"eps": 0.1, "eta": 5e-4, "alpha": 15.0}

    def check(self, task: Task) -> None:
        missing = [m for m in ("magnitude", "magnitude_to_domain") if not callable(getattr(task, m, None))]
        if missing:
            raise TypeError(
                f"task {task.name!r} cannot host the spectrogram attack: it lacks "
                f"{' and '.join(missing)}(); give it magnitude(audio) -> |STFT| and "
                f"magnitude_to_domain(mag) -> domain, or use cw-waveform"
            )

    def lift(self, task: Task, audio: torch.Tensor) -> torch.Tensor:
        return task.magnitude(audio)  # type: ignore[attr-defined]

    def space_to_domain(self, task: Task, base: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return task.magnitude_to_domain((base + delta).clamp_min(0.0))  # type: ignore[attr-defined]
