"""Adaptive sampling against fixed sampling on svd-synth, in one run (``make bench``).

LIME with ``n_samples = "auto"`` (up to 8192) against LIME with 8192 samples, on the same
attacked excerpts (cw-spectrogram and cw-waveform cases, half each), each explained through
the harness (:class:`explbench.protocol.scorer.Scorer`, which counts the queries). Both get the same
seed, so auto's masks are the first rows of the fixed run's. Reported in one line per design,
the share of cases whose top-3 *set* agrees, the mean and 95th-percentile queries of auto, and
the ratio of fixed to auto mean queries:

* ``predicted`` -- ``predict_rest = True, confidence = 0.95``: each look predicts the fit on
  all 8192 masks from the answers so far and stops when its top-3 set is settled. Targets:
  agreement >= 95 % with <= 2048 queries on average (asserted).
* ``iid`` -- ``auto`` at its defaults (stop at the first look whose bound on a change of the
  top-3 set is at most 1 - confidence = 0.03; what it returns is exactly the fit on the masks
  queried). Reported, not asserted: it lands at the targets' edge (47 or 48 of 50).
* ``paired`` -- antithetic pairs on both sides (``paired = true``). Reported, not asserted.

The fixed side of ``iid`` and ``predicted`` is the same run (same masks), made once.
``scripts/adaptive_replay.py`` measures the same on recorded neighbourhoods, for any stopping
setting, without new model queries; ``record --benchmark`` records this benchmark's own cases
and seeds, so its replay at the default setting gives this benchmark's numbers.

About 8192 x 50 forwards for the fixed side of each design, an hour of CPU on a 2-core
machine. For a quick check, ``EXPLBENCH_ADAPTIVE_CASES=10`` (the cases are generated once and
cached); ``-k predicted``, ``-k iid`` or ``-k paired`` runs one design.
"""

import os

import numpy as np
import pytest

from explbench.api import registry
from explbench.protocol.scorer import Scorer
from explbench.run.case_cache import build_cases
from explbench.run.prepare import make_task
from explbench.core.segmentation import from_spec
from explbench.core.seeding import seed_for
from explbench.run.suite import SuiteConfig
from explbench.run.batching import best_batch_size

N_CASES = int(os.environ.get("EXPLBENCH_ADAPTIVE_CASES", "50"))
MAX = 8192
K = 3
GENERATORS = ("cw-spectrogram", "cw-waveform")
#: auto's settings per design, and whether the targets are asserted for it
DESIGNS = {
    "predicted": (dict(paired=False, predict_rest=True, confidence=0.95), True),
    "iid": (dict(paired=False), False),
    "paired": (dict(paired=True), False),
}
_fixed: dict[tuple[bool, str], tuple[frozenset, int]] = {}  # (paired, case id) -> top-3 set, queries


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


@pytest.mark.parametrize("design", list(DESIGNS))
def test_auto_agrees_with_fixed_8192_at_a_fraction_of_the_queries(benchmark, setting, design):
    scorer, cases = setting
    lime = registry.explainers.get("lime")
    params, asserted = DESIGNS[design]
    paired = params["paired"]
    fixed = lime(n_samples=MAX, paired=paired)
    auto = lime(n_samples="auto", max_samples=MAX, **params)
    rows = []

    def run():
        rows.clear()
        for case in cases:
            seed = case_seed(case)
            key = (paired, case.case_id)
            if key not in _fixed:
                f = scorer.explain(fixed, case, MAX, np.random.default_rng(seed))
                _fixed[key] = (top_set(f.weights), f.queries)
            fixed_top, fixed_queries = _fixed[key]
            a = scorer.explain(auto, case, MAX, np.random.default_rng(seed))
            rows.append((fixed_top == top_set(a.weights), a.queries, fixed_queries,
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
    print(f"\nadaptive LIME, {design} (top-{K}, up to {MAX}) on {len(rows)} svd-synth cases: "
          f"agreement with fixed {MAX} {100 * result['agreement']:.1f} %; "
          f"queries mean {result['mean_queries']:.0f}, 95th percentile {result['p95_queries']:.0f}; ratio {result['ratio']:.2f}x fewer; "
          f"stopped because {reasons}")
    assert len(rows) >= min(N_CASES, 50)
    if asserted:
        assert result["agreement"] >= 0.95
        assert result["mean_queries"] <= 2048
