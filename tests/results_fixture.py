"""Synthetic run folders for the results-side tests (leaderboard, compare, report).

A run made here has the exact layout of a real one (config.json, provenance.json, cases.json,
records.jsonl, and metrics.csv/timing.csv written by :func:`explbench.run.runner.finish`), but its
records are simulated: every case has a hidden per-segment relevance ``r``; the norm reference
ranks segments by ``r``; an explainer of quality ``q`` gives weights ``q * r + noise``; a case
flips at ``k`` once the chosen segments hold more than a per-case share of the total relevance.
Cases with their arrays are saved to ``explbench.store.provenance.cache_dir() / "cases"`` so that the report
can draw per-case views; point ``EXPLBENCH_CACHE`` at a temporary folder first.

    python tests/results_fixture.py OUT_DIR     # writes OUT_DIR/run-a and caches cases
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import numpy as np

from explbench.core.cases import Case, cache_key, content_hash, save_cases
from explbench.run.runner import finish
from explbench.store.run_store import RunStore
from explbench.store.provenance import cache_dir
from explbench.run.suite import SuiteConfig

SR = 22050
N_SAMPLES = 36934
DOMAIN = (80, 115)
D = 20
CLASSES = ("no-voice", "voice")
ADVERSARIAL = ("cw-spectrogram", "cw-waveform")
LOCALISED_KS = {1: 6, 3: 4, 5: 4}

#: default explainers: name -> (quality, oracle, own fidelity score?, queries)
DEFAULT_EXPLAINERS = {
    "lime": (3.0, False, True, 256),
    "random": (0.0, False, False, 0),
    "oracle-norm": (None, True, False, 0),
}


def _audio(rng: np.random.Generator) -> np.ndarray:
    """A few seconds of harmonic tones with noise (looks like music on a log-mel)."""
    t = np.arange(N_SAMPLES) / SR
    out = 0.01 * rng.standard_normal(N_SAMPLES)
    for _ in range(3):
        f0 = rng.uniform(110, 440)
        env = np.clip(np.sin(np.pi * rng.uniform(0.5, 3) * t + rng.uniform(0, np.pi)), 0, None)
        for h in range(1, 6):
            out += 0.1 / h * env * np.sin(2 * np.pi * f0 * h * t)
    return out.astype(np.float32)


@functools.lru_cache(maxsize=1)
def _svd_task() -> object:
    from explbench.api import registry

    return registry.tasks.get("svd-synth")()


def _logmel(audio: np.ndarray) -> np.ndarray:
    """Log-mel of the svd front-end when available, else a plain spectrogram-like image."""
    try:
        import torch

        task = _svd_task()
        with torch.no_grad():
            return task.to_domain(torch.as_tensor(audio)[None])[0].cpu().numpy().astype(np.float32)
    except Exception:  # the fixture must work without the svd task
        rng = np.random.default_rng(int(abs(audio[:100]).sum() * 1e6) % 2**32)
        return rng.standard_normal(DOMAIN).astype(np.float32)


def _segment_masks() -> np.ndarray:
    from explbench.core.segmentation import grid

    return grid(DOMAIN, 5, 4).masks.numpy()


def _flips(order: np.ndarray, r: np.ndarray, share: float) -> list[bool]:
    cum = np.cumsum(r[order]) / r.sum()
    return [bool(c > share) for c in cum]


def _weights(quality: float | None, r: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if quality is None:  # oracle: the energy itself
        return r.copy()
    return quality * r / r.max() + rng.standard_normal(r.size)


def make_cases(seed: int) -> tuple[dict[str, list[Case]], dict[str, np.ndarray]]:
    """Cases of two adversarial generators and their localised derivations, with relevances."""
    rng = np.random.default_rng(seed)
    masks = _segment_masks()
    cases: dict[str, list[Case]] = {g: [] for g in (*ADVERSARIAL, "localized")}
    relevance: dict[str, np.ndarray] = {}
    n_adv = 15
    for g in ADVERSARIAL:
        for i in range(n_adv):
            audio = _audio(rng)
            x = _logmel(audio)
            r = rng.gamma(0.6, size=D) + 1e-3
            delta = sum(np.sqrt(r[j]) * 0.5 * masks[j] for j in range(D)).astype(np.float32)
            original = int(i % 2)
            audio_mod = (audio + 0.005 * rng.standard_normal(N_SAMPLES)).astype(np.float32) \
                if g == "cw-waveform" else None
            c = Case(f"{g}/{i:04d}", g, x, x + delta, original, 1 - original,
                     g.split("-")[1], None, audio, audio_mod,
                     info={"iterations": 100, "cluster": f"song-{g}-{i}"})
            cases[g].append(c)
            relevance[c.case_id] = r
    parents = [c for g in ADVERSARIAL for c in cases[g]]
    j = 0
    for k, count in LOCALISED_KS.items():
        for _ in range(count):
            p = parents[j % len(parents)]
            j += 1
            r_p = relevance[p.case_id]
            truth = tuple(int(s) for s in np.argsort(-r_p, kind="stable")[:k])
            m = masks[list(truth)].sum(axis=0)
            c = Case(f"localized/{p.case_id}/k{k}", "localized", p.x, p.x + m * p.delta,
                     p.original, p.target, p.domain, truth, p.audio, None,
                     info={"parent": p.case_id, "k": k, "cluster": p.info["cluster"]})
            cases["localized"].append(c)
            r = np.full(D, 1e-3)
            r[list(truth)] = r_p[list(truth)] + 0.5
            relevance[c.case_id] = r
    return cases, relevance


def make_records(cases: dict[str, list[Case]], relevance: dict[str, np.ndarray],
                 explainers: dict[str, tuple], seed: int) -> list[dict]:
    """Simulated protocol records, one per (case, explainer)."""
    hashes = {c.case_id: content_hash(c) for cs in cases.values() for c in cs}
    rng = np.random.default_rng(seed + 1)
    records = []
    for g, cs in cases.items():
        for c in cs:
            r = relevance[c.case_id]
            share = rng.uniform(0.1, 0.5)
            norm_order = np.lexsort((np.arange(D), -r))
            flip_norm = _flips(norm_order, r, share)
            for name, (quality, oracle, own_score, queries) in explainers.items():
                w = _weights(quality, r, rng)
                order = np.lexsort((np.arange(D), -w))
                flip = _flips(order, r, share)
                n_pos = int((w > 0).sum())
                hit = c.true_segments is not None and int(order[0]) in c.true_segments
                score = float(np.clip(rng.normal(0.72 if hit else 0.66, 0.03), 0, 1)) if own_score else None
                records.append({
                    "case_id": c.case_id, "case_hash": hashes[c.case_id], "generator": g,
                    "direction": c.direction(CLASSES), "explainer": name, "oracle": oracle,
                    "status": "ok", "error": None, "d": D, "cluster": c.info["cluster"],
                    "signed": True, "flip_absmean_at_k": flip_norm,
                    "necessary_segments": None if c.true_segments is None else list(c.true_segments),
                    "true_segments": None if c.true_segments is None else list(c.true_segments),
                    "weights": [float(v) for v in w], "score": score,
                    "agnostic_score": float(np.clip(rng.normal(0.5, 0.1), 0, 1)),
                    "intercept": 0.1, "queries": queries,
                    "seconds": round(float(rng.uniform(0.5, 1.5) if queries else rng.uniform(0.001, 0.01)), 4),
                    "flip_at_k": flip, "flip_norm_at_k": flip_norm, "n_positive": n_pos,
                    "flip_positive": bool(flip[n_pos - 1]) if n_pos else False,
                    "flip_norm_positive": bool(flip_norm[n_pos - 1]) if n_pos else False,
                })
    return records


def make_run(folder: Path, *, seed: int = 0, explainers: dict[str, tuple] | None = None,
             segmentation: str = "grid:5x4", name: str = "fixture", n_boot: int = 200,
             lime_samples: int = 256, run_id: str | None = None,
             explainer_params: dict[str, dict] | None = None) -> Path:
    """Write a finished synthetic run folder and cache its cases; returns the folder.

    Parameters
    ----------
    folder : Path
        The run folder to create (must not hold a run).
    seed : int
        Master seed: the same seed gives the same cases (and cache keys).
    explainers : dict, optional
        name -> (quality or None for the energy oracle, oracle flag, own score?, queries).
    segmentation : str
        Written into the suite (the records always use a 5x4 grid).
    """
    explainers = dict(DEFAULT_EXPLAINERS if explainers is None else explainers)
    cases, relevance = make_cases(seed)
    keys = {}
    for g, cs in cases.items():
        keys[g] = cache_key(fixture=True, generator=g, seed=seed)
        save_cases(cache_dir() / "cases" / f"{keys[g]}.npz", cs, {"fixture": True})
    params = explainer_params if explainer_params is not None else \
        ({"lime": {"n_samples": lime_samples}} if "lime" in explainers else {})
    config = SuiteConfig(
        name=name, task="svd-synth", seed=seed, segmentation=segmentation, budget=256,
        n_boot=n_boot, explainers=list(explainers), explainer_params=params,
        generators={"cw-spectrogram": {"n": 15}, "cw-waveform": {"n": 15},
                    "localized": {"from": list(ADVERSARIAL), "ks": [1, 3, 5]}},
    )
    rid = run_id or f"{name}-s{seed}"
    store = RunStore(folder)
    prov = {"packages": {"explbench": "0.0.test"}, "python": "3.11", "git_revision": "abc123",
            "task": {"name": "svd-synth", "version": "1", "model_hash": "feedface",
                     "data_version": "renderer-1"},
            "identity": {"task": "svd-synth", "task_version": "1", "model": "feedface",
                         "model_declared": "feedface", "model_source": "state_dict",
                         "data": "renderer-1+excerpts-fixture", "task_params": {},
                         "sample_rate": SR, "domain_shape": list(DOMAIN),
                         "domain_axes": ["mel band", "frame"], "batch_size": 16},
            "seed": seed, "machine": {"platform": "test", "cpus": 2}}
    store.create({"run_id": rid, "suite": config.to_dict()}, prov)
    store.write_json("cases.json", {
        g: {"version": "1", "cache_key": keys[g], "n_cases": len(cs), "stats": {},
            "from": list(ADVERSARIAL) if g == "localized" else []} for g, cs in cases.items()})
    for rec in make_records(cases, relevance, explainers, seed):
        store.append(rec)
    finish(store, config, rid)
    return folder


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "fixture-runs")
    print(make_run(out / "run-a"))
    print(json.dumps({"cache": str(cache_dir())}))
