"""Adaptive sampling against fixed sampling on svd-synth, in one run (``make bench``).

LIME with ``n_samples = "auto"`` (up to 8192) against LIME with 8192 samples, on the same
attacked excerpts (cw-spectrogram and cw-waveform cases, half each), each explained through
the harness (:class:`explbench.protocol.Scorer`, which counts the queries). Both get the same
seed, so auto's masks are the first rows of the fixed run's. Reported in one line per mask
design -- independent masks (LIME's own, the default) and antithetic pairs (``paired = true``,
for both sides) -- the share of cases whose top-3 *set* agrees, the mean and
95th-percentile queries of auto, and the ratio of fixed to auto mean queries. Targets:
agreement >= 95 % with <= 2048 queries on average. ``auto`` runs at its defaults (stop at the
first look whose bound on a change of the top-3 set is at most 1 - confidence = 0.03).
``scripts/adaptive_replay.py`` measures the same on recorded neighbourhoods, for any stopping
setting, without new model queries; ``record --benchmark`` records this benchmark's own cases
and seeds, so its replay at the default setting gives this benchmark's numbers.

About 8192 x 50 forwards for the fixed side of each design, an hour of CPU on a 2-core
machine. For a quick check, ``EXPLBENCH_ADAPTIVE_CASES=10`` (the cases are generated once and
cached); ``-k iid`` or ``-k paired`` runs one design.
"""

import os

import numpy as np
import pytest

from explbench import registry
from explbench.protocol import Scorer
from explbench.runner import build_cases, make_task
from explbench.segmentation import from_spec
from explbench.stats import seed_for
from explbench.suite import SuiteConfig
from explbench.tuning import best_batch_size

N_CASES = int(os.environ.get("EXPLBENCH_ADAPTIVE_CASES", "50"))
MAX = 8192
K = 3
GENERATORS = ("cw-spectrogram", "cw-waveform")


def benchmark_setting(n_cases: int = N_CASES):
    """The scorer and the ``n_cases`` cases (half per attack domain) this benchmark explains."""
    # a few spare attempts (an attack may fail); at least the default suite's 16, whose cases are cached
    per = max(16, (n_cases + 1) // 2 + 4)
    config = SuiteConfig(name="bench-adaptive", task="svd-synth", seed=0, split="test",
                         segmentation="grid:5x4", generators={g: {"n": per} for g in GENERATORS})
    task = make_task(config)
    segments = from_spec(config.segmentation, tuple(task.domain_shape))
    by_gen, _ = build_cases(config, task, segments, progress=False, log=lambda *_: None)
    half = n_cases // 2
    cases = by_gen[GENERATORS[0]][: n_cases - half] + by_gen[GENERATORS[1]][:half]
    batch = best_batch_size(task.classifier(), tuple(task.domain_shape), task.model_hash())
    scorer = Scorer(task, segments, content="mean", agnostic_samples=0, batch_size=batch, headline_k=K)
    return scorer, cases


def case_seed(case) -> int:
    """The seed both sides get for ``case`` (auto's masks are the first rows of fixed's)."""
    return seed_for("bench-adaptive", case.case_id, base=0)


@pytest.fixture(scope="module")
def setting():
    return benchmark_setting(N_CASES)


def top_set(weights: np.ndarray) -> frozenset:
    return frozenset(np.argsort(-np.asarray(weights), kind="stable")[:K].tolist())


@pytest.mark.parametrize("design", ["iid", "paired"])
def test_auto_agrees_with_fixed_8192_at_a_fraction_of_the_queries(benchmark, setting, design):
    scorer, cases = setting
    lime = registry.explainers.get("lime")
    paired = design == "paired"
    fixed = lime(n_samples=MAX, paired=paired)
    auto = lime(n_samples="auto", max_samples=MAX, paired=paired)
    rows = []

    def run():
        rows.clear()
        for case in cases:
            seed = case_seed(case)
            f = scorer.explain(fixed, case, MAX, np.random.default_rng(seed))
            a = scorer.explain(auto, case, MAX, np.random.default_rng(seed))
            rows.append((top_set(f.weights) == top_set(a.weights), a.queries, f.queries,
                         a.extra["stopped_because"], case.generator))

    benchmark.pedantic(run, rounds=1, iterations=1)
    agree = np.array([r[0] for r in rows])
    queries = np.array([r[1] for r in rows], dtype=float)
    fixed_q = np.array([r[2] for r in rows], dtype=float)
    reasons = {s: sum(r[3] == s for r in rows) for s in sorted({r[3] for r in rows})}
    result = dict(design=design, cases=len(rows), agreement=float(agree.mean()),
                  mean_queries=float(queries.mean()), p95_queries=float(np.percentile(queries, 95)),
                  ratio=float(fixed_q.mean() / queries.mean()), stopped_because=reasons)
    for g in GENERATORS:
        sel = np.array([r[4] == g for r in rows])
        if sel.any():
            result[f"agreement[{g}]"] = float(agree[sel].mean())
            result[f"mean_queries[{g}]"] = float(queries[sel].mean())
    benchmark.extra_info.update(result)
    print(f"\nadaptive LIME, {design} masks (top-{K}, up to {MAX}) on {len(rows)} svd-synth cases: "
          f"agreement with fixed {MAX} {100 * result['agreement']:.1f} %; "
          f"queries mean {result['mean_queries']:.0f}, 95th percentile {result['p95_queries']:.0f}; ratio {result['ratio']:.2f}x fewer; "
          f"stopped because {reasons}")
    assert len(rows) >= min(N_CASES, 50)
    assert result["agreement"] >= 0.95
    assert result["mean_queries"] <= 2048
