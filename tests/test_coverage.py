"""Coverage of every interval method at the sizes the suites use (issue 9, DESIGN.md §8).

- Proportions: the coverage of the nominal 95 % Wilson and Clopper-Pearson intervals is
  computed exactly from the binomial distribution (no simulation) on the grid
  p in {0.05, 0.1, 0.3, 0.5} x n in {6, 16, 64}.
- Clustered proportions: Wilson on the Kish effective n, simulated.
- Means, medians and associations: the cluster bootstrap on clustered data with
  intra-cluster correlation (1-4 cases per cluster, cluster counts MIN_CLUSTERS, 16, 32, 64),
  2,000 repetitions per grid point with fixed seeds.
- Paired comparisons: the false-positive rate of paired_cluster_bootstrap under the null.

Run with ``-s`` to print the tables (markdown) for the release note. To stay within a minute
on one core the bootstrap simulations use ``n_boot = 500``, half the aggregator's 1000; the
coverage at 1000 is the same or higher (log-normal mean at 10-16 clusters, 6000 runs each:
0.902-0.916 at 500, 0.904-0.918 at 1000).
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Callable

import numpy as np
import pytest
from scipy import stats as sps

from explbench.stats.intervals import clopper_pearson_bounds, clopper_pearson_interval, wilson_interval
from explbench.stats.bootstrap import cluster_bootstrap, paired_cluster_bootstrap
from explbench.stats.clusters import MIN_CLUSTERS, effective_n
from explbench.stats.association import point_biserial, roc_auc

LEVEL = 0.95
REPS = 2000
N_BOOT = 500
CLUSTER_COUNTS = (MIN_CLUSTERS, 16, 32, 64)
SEED = 20261202


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng([SEED, *keys])


def _print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


# --------------------------------------------------------------------------- exact binomial

PS = (0.05, 0.1, 0.3, 0.5)
NS = (6, 16, 64)


def exact_coverage(interval: Callable[..., tuple[float, float]], n: int, p: float) -> float:
    """P(lo <= p <= hi) summed over every outcome k = 0..n of Bin(n, p): no simulation."""
    pmf = sps.binom.pmf(np.arange(n + 1), n, p)
    bounds = [interval(k, n, LEVEL) for k in range(n + 1)]
    return float(sum(pmf[k] for k, (lo, hi) in enumerate(bounds) if lo <= p <= hi))


def test_proportion_intervals_hold_their_level_exactly():
    rows, worst = [], {"Wilson": 1.0, "Clopper-Pearson": 1.0}
    methods = (("Wilson", wilson_interval), ("Clopper-Pearson", clopper_pearson_interval))
    for name, interval in methods:
        for n in NS:
            cov = [exact_coverage(interval, n, p) for p in PS]
            worst[name] = min(worst[name], *cov)
            rows.append([name, str(n), *(f"{c:.3f}" for c in cov)])
    _print_table(
        "Exact coverage of the nominal 95 % interval for a proportion (binomial, no simulation)",
        ["method", "n", *(f"p = {p}" for p in PS)],
        rows,
    )
    assert worst["Wilson"] >= 0.92
    assert worst["Clopper-Pearson"] >= 0.95
    # the figures: Wilson dips to 0.923 at n = 16, p = 0.5; Clopper-Pearson >= 0.96
    assert exact_coverage(wilson_interval, 16, 0.5) == pytest.approx(0.9232, abs=5e-4)
    assert worst["Clopper-Pearson"] >= 0.96


# --------------------------------------------------------------------------- clustered data


def _sizes(rng: np.random.Generator, g: int) -> np.ndarray:
    return rng.integers(1, 5, g)  # 1-4 cases per cluster


def _beta(rng: np.random.Generator, mean: float, icc: float, g: int) -> np.ndarray:
    """Cluster success probabilities with the given mean and intra-cluster correlation."""
    total = 1.0 / icc - 1.0
    return rng.beta(mean * total, (1.0 - mean) * total, g)


def _normal(rng, g):
    m = _sizes(rng, g)
    y = np.repeat(rng.normal(0.0, np.sqrt(0.3), g), m) + rng.normal(0.0, np.sqrt(0.7), m.sum())
    return (y,), m


def _share(rng, g):
    # a recovery-like share: 0, 1/3, 2/3 or 1, skewed (mean 0.2), ICC 0.3
    m = _sizes(rng, g)
    return (rng.binomial(3, np.repeat(_beta(rng, 0.2, 0.3, g), m)) / 3.0,), m


def _bernoulli(rng, g):
    m = _sizes(rng, g)
    p = np.repeat(_beta(rng, 0.3, 0.2, g), m)
    return ((rng.random(m.sum()) < p).astype(float),), m


def _lognormal(rng, g):
    # a cost-like positive, right-skewed value (skewness ~2.6)
    m = _sizes(rng, g)
    z = np.repeat(rng.normal(0.0, np.sqrt(0.2), g), m) + rng.normal(0.0, np.sqrt(0.35), m.sum())
    return (np.exp(z),), m


def _scored(rng, g):
    # labels clustered (ICC 0.2, mean 0.5); score = label + N(0, 1)
    m = _sizes(rng, g)
    labels = rng.random(m.sum()) < np.repeat(_beta(rng, 0.5, 0.2, g), m)
    return (labels + rng.normal(0.0, 1.0, m.sum()), labels), m


_AUC = NormalDist().cdf(1.0 / np.sqrt(2.0))  # P(N(1, 1) > N(0, 1))
_R = 0.25 / np.sqrt(0.25 * 1.25)  # cov(score, label) / (sd(label) sd(score)) at p = 0.5

#: name -> (simulate, statistic, true value)
MODELS: dict[str, tuple[Callable, object, float]] = {
    "normal, mean": (_normal, np.mean, 0.0),
    "share 0-1 (skewed), mean": (_share, np.mean, 0.2),
    "Bernoulli 0.3, mean": (_bernoulli, np.mean, 0.3),
    "log-normal, mean": (_lognormal, np.mean, float(np.exp(0.55 / 2.0))),
    "normal, median": (_normal, np.median, 0.0),
    "ROC AUC": (_scored, roc_auc, _AUC),
    "point-biserial r": (_scored, point_biserial, _R),
}


def _simulate(model: str, g: int) -> tuple[float, float]:
    """(coverage among reported intervals, share of repetitions with an interval)."""
    simulate, statistic, truth = MODELS[model]
    rng = _rng(list(MODELS).index(model), g)
    covered = reported = 0
    for _ in range(REPS):
        arrays, sizes = simulate(rng, g)
        clusters = np.repeat(np.arange(g), sizes)
        lo, hi = cluster_bootstrap(arrays, clusters, statistic, rng, n_boot=N_BOOT, level=LEVEL)
        if np.isfinite(lo):
            reported += 1
            covered += lo <= truth <= hi
    return covered / max(reported, 1), reported / REPS


def test_cluster_bootstrap_holds_its_level_wherever_it_reports():
    rows, failures = [], []
    for model in MODELS:
        cells = []
        for g in CLUSTER_COUNTS:
            coverage, reported = _simulate(model, g)
            cells.append(f"{coverage:.3f}" + ("" if reported > 0.995 else f" ({reported:.0%})"))
            if coverage < 0.90 or reported < 0.95:
                failures.append((model, g, coverage, reported))
        rows.append([model, *cells])
    _print_table(
        f"Simulated coverage of the nominal 95 % cluster-bootstrap interval (BCa, expanded), "
        f"{REPS} repetitions, 1-4 cases per cluster, n_boot = {N_BOOT}; in brackets the share "
        f"of repetitions with an interval where below 100 %",
        ["statistic", *(f"G = {g}" for g in CLUSTER_COUNTS)],
        rows,
    )
    assert not failures, failures


def test_cluster_bootstrap_reports_nothing_below_min_clusters():
    rng = _rng(99)
    for g in range(2, MIN_CLUSTERS):
        for model in ("normal, mean", "normal, median", "ROC AUC"):
            simulate, statistic, _ = MODELS[model]
            arrays, sizes = simulate(rng, g)
            clusters = np.repeat(np.arange(g), sizes)
            lo, hi = cluster_bootstrap(arrays, clusters, statistic, rng, n_boot=200)
            assert np.isnan(lo) and np.isnan(hi), (model, g)
    # and at MIN_CLUSTERS it does
    arrays, sizes = _normal(rng, MIN_CLUSTERS)
    lo, hi = cluster_bootstrap(arrays, np.repeat(np.arange(MIN_CLUSTERS), sizes), np.mean, rng)
    assert lo < hi


def test_wilson_on_the_effective_n_holds_its_level_for_clustered_outcomes():
    rows, worst = [], 1.0
    for j, p in enumerate((0.05, 0.1, 0.3, 0.5)):
        cells = []
        for g in CLUSTER_COUNTS:
            rng = _rng(200 + j, g)
            covered = naive = 0
            for _ in range(REPS):
                m = _sizes(rng, g)
                y = (rng.random(m.sum()) < np.repeat(_beta(rng, p, 0.2, g), m)).astype(float)
                n_eff = effective_n(y, np.repeat(np.arange(g), m))
                lo, hi = wilson_interval(y.mean() * n_eff, n_eff, LEVEL)
                covered += lo <= p <= hi
                lo, hi = wilson_interval(y.sum(), y.size, LEVEL)
                naive += lo <= p <= hi
            worst = min(worst, covered / REPS)
            cells.append(f"{covered / REPS:.3f} ({naive / REPS:.3f})")
        rows.append([f"p = {p}", *cells])
    _print_table(
        f"Simulated coverage of the nominal 95 % Wilson interval on the Kish effective n, "
        f"clustered Bernoulli outcomes (ICC 0.2, 1-4 cases per cluster), {REPS} repetitions; "
        f"in brackets Wilson on the raw n, ignoring the clusters",
        ["p", *(f"G = {g}" for g in CLUSTER_COUNTS)],
        rows,
    )
    assert worst >= 0.92


def test_paired_cluster_bootstrap_false_positive_rate_under_the_null():
    rows, worst = [], 0.0
    nulls = ("normal differences, cluster-correlated", "paired Bernoulli outcomes")
    for j, null in enumerate(nulls):
        cells = []
        for g in (MIN_CLUSTERS, 16, 32):
            rng = _rng(300 + j, g)
            rejected = tested = 0
            for _ in range(REPS):
                m = _sizes(rng, g)
                if j == 0:
                    shared = np.repeat(rng.normal(0.0, 1.0, g), m) + rng.normal(0.0, 1.0, m.sum())
                    # a cluster-level difference with mean 0 (ICC of the differences ~0.2)
                    diff = np.repeat(rng.normal(0.0, np.sqrt(0.5), g), m)
                    a = shared + diff + rng.normal(0.0, 1.0, m.sum())
                    b = shared
                else:  # two explainers with the same per-cluster success probability
                    p = np.repeat(_beta(rng, 0.4, 0.2, g), m)
                    a = (rng.random(m.sum()) < p).astype(float)
                    b = (rng.random(m.sum()) < p).astype(float)
                res = paired_cluster_bootstrap(a, b, np.repeat(np.arange(g), m), rng, n_boot=N_BOOT)
                tested += 1
                rejected += res["p"] <= 0.05
            rate = rejected / tested
            worst = max(worst, rate)
            cells.append(f"{rate:.3f}")
        rows.append([null, *cells])
    _print_table(
        f"False-positive rate of paired_cluster_bootstrap at alpha 0.05 under the null, "
        f"{REPS} repetitions, 1-4 cases per cluster",
        ["null", *(f"G = {g}" for g in (MIN_CLUSTERS, 16, 32))],
        rows,
    )
    assert worst <= 0.07


# --------------------------------------------------------------------------- the whole grid

#: every group size the suites can give a proportion: 1 case up to the paper suite's 462
#: localised cases (a generator, a direction, an explainer); p on a grid of 999 points
GRID_N = np.arange(1, 481)
GRID_P = np.linspace(0.001, 0.999, 999)


def _harness_bounds(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The aggregator's own 95 % interval (``summarise``) for k = 0..n successes of n
    independent cases."""
    from explbench.api.metric import PROPORTION, Scores
    from explbench.metrics.aggregate import summarise

    rng = np.random.default_rng(0)
    lo, hi = np.empty(n + 1), np.empty(n + 1)
    clusters = np.array([f"c{i}" for i in range(n)], dtype=object)
    for k in range(n + 1):
        v = summarise(Scores("flip-rate", 3, PROPORTION, (np.arange(n) < k).astype(float), clusters), rng, 100)
        lo[k], hi[k] = v.ci_low, v.ci_high
    return lo, hi


def _grid_coverage(lo: np.ndarray, hi: np.ndarray, n: int) -> np.ndarray:
    """Exact coverage at every p of GRID_P, shape (len(GRID_P),)."""
    k = np.arange(n + 1)
    pmf = sps.binom.pmf(k[None, :], n, GRID_P[:, None])
    inside = (lo[None, :] <= GRID_P[:, None]) & (GRID_P[:, None] <= hi[None, :])
    return (pmf * inside).sum(axis=1)


def test_the_metrics_use_clopper_pearson_on_the_effective_n():
    """``summarise`` (the aggregator) gives exactly the interval the grid test covers."""
    for n in (1, 2, 3, 5, 8, 16, 32, 64, 106, 320, 462):
        lo, hi = _harness_bounds(n)
        blo, bhi = clopper_pearson_bounds(np.arange(n + 1), n, LEVEL)
        for k in {0, 1, n // 3, n // 2, n - 1, n}:
            assert (lo[k], hi[k]) == clopper_pearson_interval(k, n, LEVEL) == (blo[k], bhi[k]), (k, n)


def test_the_metrics_proportion_interval_holds_95_at_every_n_and_p():
    """At every n from 1 to 480 and every p of a 999-point grid, the exact coverage of the
    metrics' proportion interval is at least 95 %. Wilson, on the same grid, is not."""
    worst, worst_at = 1.0, None
    for n in GRID_N:
        lo, hi = clopper_pearson_bounds(np.arange(n + 1), int(n), LEVEL)
        cov = _grid_coverage(lo, hi, int(n))
        i = int(np.argmin(cov))
        if cov[i] < worst:
            worst, worst_at = float(cov[i]), (int(n), float(GRID_P[i]))
        assert np.all(hi > lo), n  # never a zero-width interval
    assert worst >= LEVEL - 1e-9, f"coverage {worst:.4f} at n, p = {worst_at}"
    # the interval it replaced, at the three points
    def wilson_at(n: int, p: float) -> float:
        lo, hi = (np.array(b) for b in zip(*(wilson_interval(k, n, LEVEL) for k in range(n + 1))))
        return float(_grid_coverage(lo, hi, n)[np.argmin(abs(GRID_P - p))])

    assert wilson_at(6, 0.03) == pytest.approx(0.833, abs=2e-3)
    assert wilson_at(16, 0.01) == pytest.approx(0.851, abs=2e-3)
    assert wilson_at(6, 0.4) == pytest.approx(0.912, abs=2e-3)
