"""Planted cases (the "horses"): a known pattern drawn into chosen segments until the label flips.

For excerpts the model decides as ``source_class`` (svd: no voice), k segments S* are drawn
at random (seeded), a voice-like pattern P confined to M(S*) is scaled by an amplitude ``a``
(log-mel units) and mixed into the excerpt, ``a`` growing geometrically and then refined by
bisection until the decision becomes ``target_class``.

What is known about such a case: S* *suffices* (the perturbation is zero outside M(S*), non-zero
in every segment of S*, and flips the decision). S* need not be minimal: the model may not look
at every segment of it. A leave-one-segment-out test (k extra forwards per case) records in
``necessary_segments`` those segments of S* whose removal un-flips the decision; the case is
*minimal* when that is all of S*. ``minimal_only`` keeps only minimal cases.

Excerpts are spread over clusters (the task's unit of independence, svd-synth: the song): at
most ``per_cluster`` excerpts of one cluster are tried (default 1). Model-agnostic: only the
classifier on the explanation domain is queried, under ``torch.inference_mode``.
"""

from __future__ import annotations

from pathlib import Path

import time
from collections import Counter
from typing import ClassVar

import numpy as np
import torch
from tqdm import tqdm

from explbench.api import Task
from explbench.core.cases import Case
from explbench.api.generator import Generator
from explbench.generators.common import (SHARED_SOURCES, ClusterQuota, Drawn, check_per_cluster, decide, decided_excerpts,
                                         direction_name, minimal_counts, n_classes,
                                         necessary_segments, rate, stems_of)
from explbench.generators.patterns import PATTERN_KINDS, band_centres, make_pattern
from explbench.api.registry import register_generator
from explbench.core.segmentation import Segmentation

MIXES = ("add", "max")


@register_generator("planted")
class Planted(Generator):
    """Draw voice-like harmonic strokes into k random segments until the decision flips.

    Parameters
    ----------
    ks : tuple of int
        Numbers of segments to choose from (uniformly, per case).
    max_amplitude : float
        Largest amplitude tried, log-mel units (default 20; under "add" the pattern's peak cell
        is raised by up to 20 log units). On svd-synth, 8 flipped 16 % of the no-voice excerpts
        tried and 20 flipped 31 % (12 requested, seed 0).
    min_amplitude : float
        First amplitude of the geometric ladder.
    steps : int
        Rungs of the geometric ladder from ``min_amplitude`` to ``max_amplitude``.
    refine : int
        Bisection steps between the last non-flipping and the first flipping rung.
    pattern : {"harmonic", "steady", "block"}
        Harmonic strokes with vibrato and glide, without them, or a uniform fill.
    mix : {"add", "max"}
        ``x + a P`` (log-domain gain), or ``max(x, median(x) + a P)`` where ``P > 0``.
    f0_range : (float, float)
        Fundamental range of the strokes, Hz.
    fmin, fmax : float
        Frequency range of the domain's mel bands (used when the task has no
        ``band_frequencies`` attribute).
    frame_rate : float
        Frames per second of the domain (svd: 22050 / 315; used when the task has no
        ``frame_rate`` attribute).
    source_class, target_class : int
        Excerpts decided as ``source_class`` are planted until decided as ``target_class``.
    batch_size : int
    cap_factor : int
        At most ``cap_factor * n`` excerpts are tried.
    per_cluster : int or None
        At most this many excerpts of one cluster are tried (default 1; None: no limit).
    minimal_only : bool
        Keep only cases whose every planted segment is individually necessary; the others are
        discarded (and counted) and planting goes on until ``n`` cases exist or the cap is hit.
    """

    name: ClassVar[str] = "planted"
    requires_hooks: ClassVar[tuple[str, ...]] = ("band_frequencies",)
    axis_orders: ClassVar[tuple[tuple[str, ...], ...] | None] = (("frequency", "time"),)
    requirement_text: ClassVar[str] = ("it draws harmonic strokes at the frequency rows' frequencies "
                                       "into a bands x frames domain")
    description: ClassVar[str] = "voice-like harmonic strokes drawn into 1-3 random segments until the label flips"
    version: ClassVar[str] = "1"
    shared_sources: ClassVar[tuple[Path, ...]] = SHARED_SOURCES

    def __init__(self, ks: tuple[int, ...] = (1, 2, 3), max_amplitude: float = 20.0,
                 min_amplitude: float = 0.05, steps: int = 16, refine: int = 4,
                 pattern: str = "harmonic", mix: str = "add",
                 f0_range: tuple[float, float] = (120.0, 350.0), fmin: float = 27.5,
                 fmax: float = 8000.0, frame_rate: float = 22050 / 315, source_class: int = 0,
                 target_class: int = 1, batch_size: int = 16, cap_factor: int = 3,
                 per_cluster: int | None = 1, minimal_only: bool = False) -> None:
        if pattern not in PATTERN_KINDS:
            raise ValueError(f"unknown pattern {pattern!r}; use one of {', '.join(PATTERN_KINDS)}")
        if mix not in MIXES:
            raise ValueError(f"unknown mix {mix!r}; use one of {', '.join(MIXES)}")
        if not 0 < min_amplitude <= max_amplitude:
            raise ValueError("need 0 < min_amplitude <= max_amplitude")
        self.ks = tuple(int(k) for k in ks)
        self.max_amplitude, self.min_amplitude = float(max_amplitude), float(min_amplitude)
        self.steps, self.refine = int(steps), int(refine)
        self.pattern, self.mix = pattern, mix
        self.f0_range = (float(f0_range[0]), float(f0_range[1]))
        self.fmin, self.fmax, self.frame_rate = float(fmin), float(fmax), float(frame_rate)
        self.source_class, self.target_class = int(source_class), int(target_class)
        self.batch_size, self.cap_factor = int(batch_size), int(cap_factor)
        self.per_cluster = check_per_cluster(per_cluster)
        self.minimal_only = bool(minimal_only)


    # -- pieces ------------------------------------------------------------------------------

    def planted_pattern(self, segments: Segmentation, centres: np.ndarray, seed: int,
                        index: int, frame_rate: float | None = None) -> tuple[tuple[int, ...], np.ndarray, dict]:
        """Choose S* and build the pattern confined to it, for excerpt ``index`` of the stream.

        ``frame_rate`` (frames per second) defaults to the generator's ``frame_rate``.

        Returns
        -------
        chosen : tuple of int, ascending
        pattern : np.ndarray, shape segments.shape, float32; each chosen segment peaks at 1
        params : dict
        """
        rng = np.random.default_rng([seed, index, 0x91A7])
        k = int(rng.choice([k for k in self.ks if 1 <= k <= segments.d]))
        chosen = tuple(sorted(int(s) for s in rng.choice(segments.d, size=k, replace=False)))
        full, params = make_pattern(self.pattern, rng, segments.shape, centres, frame_rate or self.frame_rate,
                                    self.f0_range)
        masks = segments.masks[list(chosen)].numpy()  # (k, bands, frames)
        parts = masks * full[None]
        peak = parts.reshape(k, -1).max(axis=1)
        parts = parts / np.where(peak > 0, peak, 1.0)[:, None, None]
        return chosen, parts.sum(axis=0).astype(np.float32), params

    def apply(self, x: torch.Tensor, pattern: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Mix patterns ``(N, *domain)`` into inputs ``(N, *domain)`` at amplitudes ``(N,)``."""
        a = a.view(-1, *[1] * (x.ndim - 1))
        if self.mix == "add":
            return x + a * pattern
        level = x.flatten(1).median(dim=1).values.view_as(a) + a * pattern
        return torch.where(pattern > 0, torch.maximum(x, level), x)

    def search(self, task: Task, clf: torch.nn.Module, x: torch.Tensor,
               pattern: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Smallest flipping amplitude per input: geometric ladder, then bisection.

        Parameters
        ----------
        x, pattern : torch.Tensor, shape (N, *domain)

        Returns
        -------
        hi : torch.Tensor, shape (N,)
            Flipping amplitude (NaN where no rung flipped).
        lo : torch.Tensor, shape (N,)
            Largest amplitude known not to flip below ``hi``.
        forwards : int
            Inputs passed through the model.
        """
        n = x.shape[0]
        lo, hi = torch.zeros(n), torch.full((n,), float("nan"))
        active = torch.arange(n)
        forwards = 0
        for a in np.geomspace(self.min_amplitude, self.max_amplitude, self.steps):
            if active.numel() == 0:
                break
            amp = torch.full((active.numel(),), float(a))
            _, dec = decide(task, clf, self.apply(x[active], pattern[active], amp), self.batch_size)
            forwards += active.numel()
            flip = dec == self.target_class
            hi[active[flip]] = float(a)
            lo[active[~flip]] = float(a)
            active = active[~flip]
        found = (~hi.isnan()).nonzero().flatten()
        for _ in range(self.refine if found.numel() else 0):
            mid = (lo[found] + hi[found]) / 2
            _, dec = decide(task, clf, self.apply(x[found], pattern[found], mid), self.batch_size)
            forwards += found.numel()
            flip = dec == self.target_class
            hi[found[flip]] = mid[flip]
            lo[found[~flip]] = mid[~flip]
        return hi, lo, forwards

    # -- generation --------------------------------------------------------------------------

    def generate(self, task: Task, segments: Segmentation, n: int, seed: int, *, split: str = "test",
                 progress: bool = True) -> tuple[list[Case], dict]:
        """Up to ``n`` planted cases from excerpts of ``split`` decided as ``source_class``.

        Returns
        -------
        cases : list of Case, in excerpt draw order
            ``true_segments`` = S* (ascending), ``necessary_segments``, ``info["minimal"]``,
            ``info["cluster"]``.
        stats : dict
            attempted / succeeded / success_rate, per-k counts (with how many were minimal),
            not_minimal (discarded under ``minimal_only``), clusters, mean amplitude, forwards,
            seconds.
        """
        t0 = time.perf_counter()
        if len(segments.shape) != 2:
            raise ValueError(f"planted needs a 2-D (bands x frames) domain, got shape {segments.shape}")
        if not any(1 <= k <= segments.d for k in self.ks):
            raise ValueError(f"planted: no k in {self.ks} fits a segmentation of {segments.d} segments")
        clf = task.classifier().eval()
        centres = getattr(task, "band_frequencies", None)
        centres = np.asarray(centres) if centres is not None else band_centres(segments.shape[0], self.fmin, self.fmax)
        frame_rate = float(getattr(task, "frame_rate", None) or self.frame_rate)
        n = max(int(n), 0)
        cap = self.cap_factor * n
        quota = ClusterQuota(self.per_cluster)
        stream = decided_excerpts(task, clf, split, self.cap_factor * max(n, 1) * n_classes(task), seed,
                                  self.batch_size, self.per_cluster)
        results: list[tuple[Drawn, tuple[int, ...], dict, torch.Tensor, float, tuple[int, ...]]] = []
        attempted = drawn = forwards = recheck_failed = not_confined = not_minimal = 0
        tried_k: Counter = Counter()
        won_k: Counter = Counter()
        minimal_k: Counter = Counter()
        bar = tqdm(total=n, desc=self.name, disable=not progress)
        exhausted = n == 0
        while not exhausted and len(results) < n and attempted < cap:
            # admit up to twice the missing count (about half the plants flip); extra successes
            # are trimmed in draw order (the first n successes of the stream are kept)
            room = min(self.batch_size, 2 * (n - len(results)), cap - attempted)
            batch: list[Drawn] = []
            while len(batch) < room:
                dr = next(stream, None)
                if dr is None:
                    exhausted = True
                    break
                drawn += 1
                if dr.original == self.source_class and quota.admit(dr.cluster):
                    batch.append(dr)
            if not batch:
                break
            attempted += len(batch)
            plans = [self.planted_pattern(segments, centres, seed, dr.index, frame_rate) for dr in batch]
            for chosen, _, _ in plans:
                tried_k[len(chosen)] += 1
            x = torch.stack([dr.x for dr in batch]).float()
            pat = torch.from_numpy(np.stack([p[1] for p in plans])).to(x.device)
            hi, _, f = self.search(task, clf, x, pat)
            forwards += f
            ok = (~hi.isnan()).nonzero().flatten()
            if ok.numel():
                x_mod = self.apply(x[ok], pat[ok], hi[ok])
                probs, dec = decide(task, clf, x_mod, self.batch_size)
                forwards += ok.numel()
                kept = []
                for j, i in enumerate(ok.tolist()):
                    if int(dec[j]) != self.target_class:
                        recheck_failed += 1
                        continue
                    chosen = plans[i][0]
                    energy = segments.energy((x_mod[j] - x[i]).cpu())
                    outside = np.delete(energy, list(chosen))
                    if outside.any() or not (energy[list(chosen)] > 0).all():
                        not_confined += 1
                        continue
                    kept.append((j, i))
                necessary: list[tuple[int, ...]] = []
                if kept:  # leave-one-segment-out: which planted segments the flip needs
                    rows = torch.tensor([j for j, _ in kept])
                    cols = torch.tensor([i for _, i in kept])
                    necessary = necessary_segments(task, clf, segments, x[cols], x_mod[rows] - x[cols],
                                                   [plans[i][0] for _, i in kept],
                                                   [self.target_class] * len(kept), self.batch_size)
                    forwards += sum(len(plans[i][0]) for _, i in kept)
                for (j, i), nec in zip(kept, necessary):
                    chosen, _, params = plans[i]
                    minimal = set(nec) == set(chosen)
                    won_k[len(chosen)] += 1
                    minimal_k[len(chosen)] += int(minimal)
                    if self.minimal_only and not minimal:
                        not_minimal += 1
                        continue
                    results.append((batch[i], chosen, {**params, "p_target_mod": float(probs[j, self.target_class])},
                                    x_mod[j].clone(), float(hi[i]), nec))
                    bar.update(1)
        bar.close()
        results.sort(key=lambda r: r[0].index)
        cases = [self._case(task, i, *r) for i, r in enumerate(results[:n])]
        stats = {
            "generator": self.name, "config": self.get_params(), "split": split, "seed": int(seed),
            "n_requested": n, "n_cases": len(cases), "empty": not cases,
            "direction": direction_name(task, self.source_class, self.target_class),
            "excerpts_drawn": drawn, "attempted": attempted, "succeeded": sum(won_k.values()),
            "success_rate": rate(sum(won_k.values()), attempted),
            "recheck_failed": recheck_failed, "not_confined": not_confined,
            "minimal": sum(minimal_k.values()), "not_minimal": not_minimal,
            "minimal_only": self.minimal_only,
            "per_k": {str(k): {"attempted": tried_k[k], "succeeded": won_k[k],
                               "success_rate": rate(won_k[k], tried_k[k]),
                               "minimal": minimal_k[k], "minimal_rate": rate(minimal_k[k], won_k[k])}
                      for k in sorted(tried_k)},
            "cases_per_k": minimal_counts(cases),
            "per_cluster": self.per_cluster,
            "n_clusters": len({c.info["cluster"] for c in cases}),
            "clusters_tried": len(quota.taken),
            "excerpts_refused_cluster_full": quota.refused,
            "mean_amplitude": float(np.mean([c.info["amplitude"] for c in cases])) if cases else None,
            "forwards": forwards, "seconds": round(time.perf_counter() - t0, 3),
        }
        if not cases:
            stats["message"] = (f"planted: no excerpt flipped to class {self.target_class} out of "
                                f"{attempted} tried ({drawn} drawn)")
        return cases, stats

    def _case(self, task: Task, i: int, dr: Drawn, chosen: tuple[int, ...], params: dict,
              x_mod: torch.Tensor, amplitude: float, necessary: tuple[int, ...]) -> Case:
        return Case(
            case_id=f"{self.name}/{i:04d}",
            generator=self.name,
            x=dr.x.cpu().numpy().astype(np.float32),
            x_mod=x_mod.cpu().numpy().astype(np.float32),
            original=self.source_class,
            target=self.target_class,
            domain="planted",
            true_segments=chosen,
            necessary_segments=necessary,
            audio=np.asarray(dr.excerpt.audio, dtype=np.float32),
            stems=stems_of(dr),
            info={
                "cluster": dr.cluster, "minimal": set(necessary) == set(chosen),
                "song_seed": int(dr.excerpt.song_seed), "offset": float(dr.excerpt.offset),
                "label": int(dr.excerpt.label), "draw_index": int(dr.index), "k": len(chosen),
                "amplitude": amplitude, "pattern": self.pattern, "mix": self.mix,
                "p_target_clean": float(dr.probs[self.target_class]), **params,
            },
        )
