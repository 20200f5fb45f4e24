"""Tests of explbench.stats.intervals on numbers computed by hand or by independent means."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from explbench.stats import power
from explbench.stats.intervals import clopper_pearson_interval, wilson_interval


# --------------------------------------------------------------------------- bootstrap_ci
from explbench.stats.bootstrap import bootstrap_ci, cluster_bootstrap, paired_cluster_bootstrap
from explbench.stats.clusters import MIN_CLUSTERS, effective_n
from explbench.stats.association import point_biserial, roc_auc
from explbench.stats.tests import MCNEMAR_EXACT_BELOW, holm, mcnemar, mcnemar_pvalue
from explbench.core.seeding import seed_for


def test_bootstrap_ci_contains_mean_and_narrows_with_n():
    rng = np.random.default_rng(0)
    small = rng.normal(1.0, 1.0, 30)
    large = rng.normal(1.0, 1.0, 3000)
    lo_s, hi_s = bootstrap_ci(small, np.random.default_rng(1))
    lo_l, hi_l = bootstrap_ci(large, np.random.default_rng(1))
    assert lo_s <= small.mean() <= hi_s
    assert lo_l <= large.mean() <= hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 5  # width ~ 1/sqrt(n): 10x more data narrower


def test_bootstrap_ci_width_matches_normal_theory():
    x = np.random.default_rng(3).normal(0.0, 2.0, 2000)
    lo, hi = bootstrap_ci(x, np.random.default_rng(4), n_boot=4000)
    expected = 2 * 1.96 * x.std(ddof=1) / math.sqrt(x.size)
    assert hi - lo == pytest.approx(expected, rel=0.1)


def test_bootstrap_ci_is_deterministic_for_a_seed():
    x = np.arange(50.0) ** 1.5
    a = bootstrap_ci(x, np.random.default_rng(7))
    b = bootstrap_ci(x, np.random.default_rng(7))
    c = bootstrap_ci(x, np.random.default_rng(8))
    assert a == b
    assert a != c


def test_bootstrap_ci_edge_sizes():
    lo, hi = bootstrap_ci([], np.random.default_rng(0))
    assert math.isnan(lo) and math.isnan(hi)
    assert bootstrap_ci([2.5], np.random.default_rng(0)) == (2.5, 2.5)
    assert bootstrap_ci([True, True, True], np.random.default_rng(0)) == (1.0, 1.0)


def test_bootstrap_ci_median_and_level():
    x = np.random.default_rng(5).exponential(1.0, 500)
    lo, hi = bootstrap_ci(x, np.random.default_rng(0), statistic=np.median)
    assert lo <= np.median(x) <= hi
    lo90, hi90 = bootstrap_ci(x, np.random.default_rng(0), statistic=np.median, level=0.9)
    assert hi90 - lo90 <= hi - lo
    with pytest.raises(ValueError):
        bootstrap_ci(x, np.random.default_rng(0), level=95)


def test_bootstrap_ci_accepts_statistic_without_axis():
    x = np.arange(20.0)
    lo, hi = bootstrap_ci(x, np.random.default_rng(0), statistic=lambda v: float(np.max(v)))
    assert lo <= hi <= 19.0








def _pairs(b01: int, b10: int, both: int = 5) -> tuple[np.ndarray, np.ndarray]:
    a = np.array([False] * b01 + [True] * b10 + [True] * both)
    b = np.array([True] * b01 + [False] * b10 + [True] * both)
    return a, b


def test_mcnemar_exact_hand_computed():
    res = mcnemar(*_pairs(1, 9))
    assert (res["b01"], res["b10"]) == (1, 9)
    # two-sided exact: 2 * P(X <= 1), X ~ Bin(10, 1/2) = 2 * 11 / 1024
    assert res["p"] == pytest.approx(22 / 1024)
    assert res["p"] == pytest.approx(0.0215, abs=1e-4)


def test_mcnemar_chi_square_for_many_discordant():
    res = mcnemar(*_pairs(10, 30))
    stat = (abs(10 - 30) - 1) ** 2 / 40
    assert res["statistic"] == pytest.approx(stat)
    assert res["p"] == pytest.approx(sps.chi2.sf(stat, 1))


def test_mcnemar_no_discordant_pairs():
    res = mcnemar(*_pairs(0, 0))
    assert res["p"] == 1.0 and res["statistic"] == 0.0


# --------------------------------------------------------------------------- AUC, point-biserial


def test_roc_auc_separation_and_reversal():
    labels = np.array([0, 0, 0, 1, 1], dtype=bool)
    scores = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    assert roc_auc(scores, labels) == 1.0
    assert roc_auc(-scores, labels) == 0.0
    assert roc_auc(np.ones(5), labels) == 0.5  # all ties
    assert math.isnan(roc_auc(scores, np.ones(5, dtype=bool)))
    assert math.isnan(roc_auc([], []))


def test_roc_auc_matches_pair_count_and_batches():
    rng = np.random.default_rng(2)
    s = rng.integers(0, 5, 40).astype(float)  # many ties
    y = rng.random(40) < 0.4
    pos, neg = s[y], s[~y]
    by_pairs = ((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean()
    assert roc_auc(s, y) == pytest.approx(by_pairs)
    batch = roc_auc(np.stack([s, -s]), np.stack([y, y]))
    assert batch == pytest.approx([by_pairs, 1 - by_pairs])


def test_point_biserial_is_pearson_with_binary_variable():
    rng = np.random.default_rng(4)
    y = rng.random(60) < 0.5
    s = rng.normal(0, 1, 60) + y
    assert point_biserial(s, y) == pytest.approx(np.corrcoef(s, y.astype(float))[0, 1])
    assert point_biserial(s, y) == pytest.approx(sps.pointbiserialr(y, s).statistic)
    assert math.isnan(point_biserial(s, np.zeros(60, dtype=bool)))
    assert math.isnan(point_biserial(np.full(60, 0.3), y))


# --------------------------------------------------------------------------- seeds


def test_seed_for_is_stable_and_distinguishes_keys():
    s = seed_for("cw-spectrogram", "lime", 3, base=42)
    assert s == seed_for("cw-spectrogram", "lime", 3, base=42)
    assert 0 <= s < 2**63
    assert s != seed_for("cw-spectrogram", "lime", 3, base=43)
    assert s != seed_for("cw-spectrogram", "lime", "3", base=42)
    assert seed_for("ab", "c", base=0) != seed_for("a", "bc", base=0)
    assert seed_for(np.int64(5), base=1) == seed_for(5, base=1)
    with pytest.raises(TypeError):
        seed_for(1.5, base=0)


def test_seed_for_known_value():
    # pinned: a change here silently changes every published interval
    assert seed_for("a", 1, base=0) == 2354362580496674353


# --------------------------------------------------------------------------- Wilson, C-P


def test_wilson_zero_of_sixteen_is_not_zero_width():
    lo, hi = wilson_interval(0, 16)
    assert lo == 0.0
    z2 = 1.959963984540054**2
    assert hi == pytest.approx(z2 / (16 + z2))  # upper bound at k = 0: z^2 / (n + z^2)
    assert hi == pytest.approx(0.1936, abs=1e-4)
    lo, hi = wilson_interval(16, 16)
    assert hi == 1.0 and lo == pytest.approx(1 - 0.1936, abs=1e-4)


def test_wilson_hand_computed_and_effective_n():
    # 5/10: centre 0.5, half-width z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/(4 n^2)) = 0.2634
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    # an effective n is a float; k = p_hat * n_eff keeps the observed proportion
    lo_eff, hi_eff = wilson_interval(0.25 * 7.5, 7.5)
    lo_raw, hi_raw = wilson_interval(4, 16)
    assert lo_eff < lo_raw < 0.25 < hi_raw < hi_eff  # fewer effective cases: wider
    assert wilson_interval(1, 4, level=0.8)[1] < wilson_interval(1, 4, level=0.95)[1]
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError, match="k must lie in"):
        wilson_interval(5, 4)
    with pytest.raises(ValueError, match="level"):
        wilson_interval(1, 4, level=95)


def test_clopper_pearson_known_values():
    assert clopper_pearson_interval(0, 16) == pytest.approx((0.0, 1 - 0.025 ** (1 / 16)))
    assert clopper_pearson_interval(0, 16)[1] == pytest.approx(0.2059, abs=1e-4)
    assert clopper_pearson_interval(10, 10)[0] == pytest.approx(0.025 ** (1 / 10))
    assert clopper_pearson_interval(5, 10) == pytest.approx((0.1871, 0.8129), abs=1e-4)
    # always at least as wide as Wilson at these sizes
    for k in range(17):
        w, c = wilson_interval(k, 16), clopper_pearson_interval(k, 16)
        assert c[0] <= w[0] + 1e-12 and c[1] >= w[1] - 1e-12


# --------------------------------------------------------------------------- effective n


def test_effective_n_hand_computed_icc():
    # clusters A = [1, 1], B = [0, 0], C = [1, 0]: MSB = 1/2, MSW = 1/6, n0 = 2,
    # ICC = (1/2 - 1/6) / (1/2 + 1/6) = 1/2, deff = 1 + (2 - 1) / 2 = 1.5, n_eff = 6 / 1.5 = 4
    assert effective_n([1, 1, 0, 0, 1, 0], ["a", "a", "b", "b", "c", "c"]) == pytest.approx(4.0)


def test_effective_n_limits():
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 1.0])
    assert effective_n(y, np.arange(6)) == 6.0  # one case per cluster
    # within-cluster variation only (negative ICC, clipped to 0): no loss
    assert effective_n([0, 1, 0, 1, 0, 1], [0, 0, 1, 1, 2, 2]) == 6.0
    # clusters internally identical, different between them: as many cases as clusters
    assert effective_n([0, 0, 0, 1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1, 2, 2, 2]) == 3.0
    # all values equal: the ICC is unknown, the conservative bound is the number of clusters
    assert effective_n(np.zeros(8), [0, 0, 1, 1, 2, 2, 3, 3]) == 4.0
    assert effective_n([1.0, 0.0, 1.0], ["s", "s", "s"]) == 1.0
    assert effective_n([], []) == 0.0
    with pytest.raises(ValueError, match="one label per case"):
        effective_n([1, 0, 1], [0, 1])
    with pytest.raises(ValueError, match="finite"):
        effective_n([1.0, np.nan], [0, 1])


def test_effective_n_tracks_the_true_design_effect():
    # 200 clusters of 4 with ICC 0.3: deff = 1 + 3 * 0.3 = 1.9, n_eff = 800 / 1.9 = 421
    rng = np.random.default_rng(1)
    g, m = 200, 4
    y = np.repeat(rng.normal(0, math.sqrt(0.3), g), m) + rng.normal(0, math.sqrt(0.7), g * m)
    assert effective_n(y, np.repeat(np.arange(g), m)) == pytest.approx(800 / 1.9, rel=0.12)


# --------------------------------------------------------------------------- cluster bootstrap


def _clustered(g: int, seed: int = 0, icc: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    m = rng.integers(1, 5, g)
    y = np.repeat(rng.normal(0, math.sqrt(icc), g), m) + rng.normal(0, math.sqrt(1 - icc), m.sum())
    return y, np.repeat(np.arange(g), m)


def test_cluster_bootstrap_needs_min_clusters_and_variation():
    y, c = _clustered(MIN_CLUSTERS - 1)
    assert all(math.isnan(v) for v in cluster_bootstrap((y,), c, np.mean, np.random.default_rng(0)))
    y, c = _clustered(MIN_CLUSTERS)
    lo, hi = cluster_bootstrap((y,), c, np.mean, np.random.default_rng(0))
    assert lo < y.mean() < hi
    flat = np.full(40, 0.5)
    out = cluster_bootstrap((flat,), np.arange(40), np.mean, np.random.default_rng(0))
    assert all(math.isnan(v) for v in out)
    # one class only: AUC undefined in the sample, no interval
    lab = np.ones(40, dtype=bool)
    scores = np.arange(40.0)
    out = cluster_bootstrap((scores, lab), np.arange(40), roc_auc, np.random.default_rng(0))
    assert all(math.isnan(v) for v in out)


def test_cluster_bootstrap_matches_normal_theory_for_many_clusters():
    # 400 clusters: the interval is close to mean +- 1.96 * (cluster-robust standard error)
    y, c = _clustered(400, seed=3)
    sums = np.bincount(c, weights=y)
    sizes = np.bincount(c)
    resid = sums - y.mean() * sizes  # cluster totals of residuals
    se = math.sqrt(np.sum(resid**2)) / y.size * math.sqrt(400 / 399)
    lo, hi = cluster_bootstrap((y,), c, np.mean, np.random.default_rng(0), n_boot=4000)
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.08)
    assert (lo + hi) / 2 == pytest.approx(y.mean(), abs=0.1 * se)


def test_cluster_bootstrap_is_not_fooled_by_repeated_cases():
    # copying every case of every cluster does not add information: the cluster interval is
    # unchanged, while a case bootstrap narrows by ~1/sqrt(2)
    y, c = _clustered(30, seed=4)
    y2, c2 = np.concatenate([y, y]), np.concatenate([c, c])
    a = cluster_bootstrap((y,), c, np.mean, np.random.default_rng(5))
    b = cluster_bootstrap((y2,), c2, np.mean, np.random.default_rng(5))
    assert a == pytest.approx(b, abs=1e-12)
    lo1, hi1 = bootstrap_ci(y, np.random.default_rng(5), n_boot=4000)
    lo2, hi2 = bootstrap_ci(y2, np.random.default_rng(5), n_boot=4000)
    assert (hi2 - lo2) / (hi1 - lo1) == pytest.approx(1 / math.sqrt(2), abs=0.08)


@pytest.mark.parametrize("statistic", [np.mean, np.median, roc_auc, point_biserial])
def test_cluster_bootstrap_fast_paths_equal_the_generic_path(statistic):
    rng = np.random.default_rng(6)
    y, c = _clustered(25, seed=7)
    labels = rng.random(y.size) < 0.5
    y = np.round(y + labels, 1)  # ties, for the AUC and the median
    arrays = (y,) if statistic in (np.mean, np.median) else (y, labels)
    if statistic is np.mean:
        generic = lambda x: x.mean(axis=-1)  # noqa: E731
    elif statistic is np.median:
        generic = lambda x: np.median(x, axis=-1)  # noqa: E731
    else:
        generic = lambda s, lab: statistic(s, lab)  # noqa: E731
    fast = cluster_bootstrap(arrays, c, statistic, np.random.default_rng(8))
    slow = cluster_bootstrap(arrays, c, generic, np.random.default_rng(8))
    assert fast == pytest.approx(slow, abs=1e-12)
    assert fast[0] < fast[1]


def test_cluster_bootstrap_bca_follows_skew_and_is_deterministic():
    rng = np.random.default_rng(9)
    g = 40
    y = rng.exponential(1.0, g) ** 2  # strongly right-skewed, one case per cluster
    c = np.arange(g)
    bca = cluster_bootstrap((y,), c, np.mean, np.random.default_rng(1), n_boot=4000)
    pct = cluster_bootstrap(
        (y,), c, np.mean, np.random.default_rng(1), n_boot=4000, method="percentile"
    )
    assert bca[1] - y.mean() > y.mean() - bca[0]  # longer upper arm
    assert bca[0] > pct[0] and bca[1] > pct[1]  # BCa shifts right of the percentile interval
    assert bca == cluster_bootstrap((y,), c, np.mean, np.random.default_rng(1), n_boot=4000)
    with pytest.raises(ValueError, match="method"):
        cluster_bootstrap((y,), c, np.mean, np.random.default_rng(1), method="t")


def test_cluster_bootstrap_generic_statistic_with_unequal_clusters():
    # a trimmed mean has no fast path: resamples of unequal length are evaluated per length
    y, c = _clustered(30, seed=10)

    def trimmed(x):
        k = x.shape[-1] // 10
        return np.sort(x, axis=-1)[..., k : x.shape[-1] - k].mean(axis=-1)

    lo, hi = cluster_bootstrap((y,), c, trimmed, np.random.default_rng(0))
    assert lo < float(trimmed(y[None, :])[0]) < hi
    with pytest.raises(ValueError, match="axis -1"):
        cluster_bootstrap((y,), c, lambda x: x.mean(), np.random.default_rng(0))
    with pytest.raises(ValueError, match="one label per case"):
        cluster_bootstrap((y,), c[:-1], np.mean, np.random.default_rng(0))


def test_cluster_bootstrap_is_fast_for_the_mean():
    import time

    y, c = _clustered(160, seed=11)  # ~400 cases
    rng = np.random.default_rng(0)
    cluster_bootstrap((y,), c, np.mean, rng)
    start = time.process_time()
    for _ in range(20):
        cluster_bootstrap((y,), c, np.mean, rng)
    per_call = (time.process_time() - start) / 20
    assert per_call < 0.025  # ~2 ms on an idle core; generous for a busy machine


# --------------------------------------------------------------------------- paired clusters


def test_paired_cluster_bootstrap_detects_a_difference():
    y, c = _clustered(30, seed=12)
    rng = np.random.default_rng(13)
    a = y + 0.5 + rng.normal(0, 0.3, y.size)
    res = paired_cluster_bootstrap(a, y, c, np.random.default_rng(0))
    assert res["diff"] == pytest.approx(float(np.mean(a - y)))
    assert 0 < res["ci_low"] < res["diff"] < res["ci_high"]
    assert res["p"] < 1e-6  # not floored at 1 / n_boot


def test_paired_cluster_bootstrap_null_and_edges():
    y, c = _clustered(30, seed=14)
    rng = np.random.default_rng(15)
    a, b = y + rng.normal(0, 1, y.size), y + rng.normal(0, 1, y.size)
    res = paired_cluster_bootstrap(a, b, c, np.random.default_rng(0))
    assert res["ci_low"] < 0 < res["ci_high"] and res["p"] > 0.05
    same = paired_cluster_bootstrap(y, y, c, np.random.default_rng(0))
    assert same["diff"] == 0.0 and same["p"] == 1.0 and math.isnan(same["ci_low"])
    g = np.unique(c).size
    shifted = paired_cluster_bootstrap(y + 1.0, y, c, np.random.default_rng(0))
    assert shifted["diff"] == pytest.approx(1.0) and shifted["p"] == pytest.approx(2.0 ** (1 - g))
    few, cf = _clustered(MIN_CLUSTERS - 1, seed=16)
    small = paired_cluster_bootstrap(few + 1, few, cf, np.random.default_rng(0))
    assert small["diff"] == pytest.approx(1.0)
    assert math.isnan(small["p"]) and math.isnan(small["ci_low"])
    with pytest.raises(ValueError):
        paired_cluster_bootstrap(y, y[:-1], c, np.random.default_rng(0))


# --------------------------------------------------------------------------- Holm


def test_holm_known_vector():
    # sorted 0.005, 0.01, 0.03, 0.04 with m = 4: 0.02, 0.03, 0.06, max(0.06, 0.04) = 0.06
    out = holm([0.01, 0.04, 0.03, 0.005])
    assert out == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    both = holm([0.01, np.nan, 0.04])  # NaN is not a test: m = 2
    assert both[0] == pytest.approx(0.02) and math.isnan(both[1]) and both[2] == pytest.approx(0.04)
    assert holm([]).shape == (0,)
    assert holm(np.array([[0.01, 0.02], [0.03, 0.04]])).shape == (2, 2)
    with pytest.raises(ValueError, match="p-values"):
        holm([0.1, 1.5])


# --------------------------------------------------------------------------- McNemar p and power


def test_mcnemar_pvalue_is_scipys_exact_test_below_25():
    for d in range(1, MCNEMAR_EXACT_BELOW):
        for b10 in range(d + 1):
            expected = sps.binomtest(b10, d, 0.5).pvalue
            assert mcnemar_pvalue(d - b10, b10) == pytest.approx(expected, rel=1e-9)
    grid = mcnemar_pvalue(np.array([0, 3, 10]), np.array([0, 9, 30]))
    assert grid[0] == 1.0 and grid[1] == pytest.approx(sps.binomtest(3, 12, 0.5).pvalue)
    assert grid[2] == pytest.approx(sps.chi2.sf(19**2 / 40, 1))


def test_mcnemar_power_equals_brute_force_enumeration():
    # every (b10, b01, concordant) outcome of n = 10 cases, through stats.mcnemar itself
    n, p10, p01 = 10, 0.35, 0.05
    total = 0.0
    for b10 in range(n + 1):
        for b01 in range(n - b10 + 1):
            prob = sps.multinomial.pmf([b10, b01, n - b10 - b01], n, [p10, p01, 1 - p10 - p01])
            a = np.array([True] * b10 + [False] * b01 + [True] * (n - b10 - b01))
            b = np.array([False] * b10 + [True] * b01 + [True] * (n - b10 - b01))
            total += prob * (mcnemar(a, b)["p"] <= 0.05)
    assert power.mcnemar_power(n, p10, p01) == pytest.approx(total, rel=1e-9)


def test_mcnemar_power_shape():
    assert power.mcnemar_power(0, 0.3, 0.1) == 0.0
    assert power.mcnemar_power(50, 0.0, 0.0) == 0.0
    assert power.mcnemar_power(64, 0.2, 0.2) <= 0.05  # size under the null
    ns = [16, 32, 64, 128, 320]
    by_n = [power.mcnemar_power(n, 0.3, 0.1) for n in ns]
    assert by_n == sorted(by_n) and by_n[-1] > 0.99
    deltas = (0.0, 0.1, 0.2, 0.3, 0.4)
    by_delta = [power.mcnemar_power(64, (0.4 + d) / 2, (0.4 - d) / 2) for d in deltas]
    assert by_delta == sorted(by_delta)
    # flip rates 0.6 vs 0.3 on 16 cases: 0.25 if independent given the case, 0.34 if nested
    assert power.mcnemar_power(16, 0.6 * 0.7, 0.3 * 0.4) == pytest.approx(0.251, abs=1e-3)
    assert power.mcnemar_power(16, 0.3, 0.0) == pytest.approx(0.340, abs=1e-3)
    with pytest.raises(ValueError):
        power.mcnemar_power(10, 0.7, 0.5)


def test_minimum_detectable_difference_values():
    mdd = {n: power.minimum_detectable_difference(n) for n in (16, 32, 64, 128, 320)}
    assert mdd[16] is None  # 16 cases, 40 % discordant: even a one-sided split is missed
    assert mdd[32] == pytest.approx(0.313, abs=1e-3)
    assert mdd[64] == pytest.approx(0.228, abs=1e-3)
    assert mdd[128] == pytest.approx(0.161, abs=1e-3)
    assert mdd[320] == pytest.approx(0.101, abs=1e-3)
    d = mdd[64]
    assert power.mcnemar_power(64, (0.4 + d) / 2, (0.4 - d) / 2) >= 0.8
    assert power.mcnemar_power(64, (0.4 + d - 2e-3) / 2, (0.4 - d + 2e-3) / 2) < 0.8
    assert power.minimum_detectable_difference(64, discordance=0.2) < 0.2
    assert power.minimum_detectable_difference(64, power=0.5) < d


def test_describe_states_the_mdd_per_generator():
    line = power.describe({"cw-waveform": 32, "cw-spectrogram": 32}, k=3)
    assert line == (
        "minimum detectable difference in FR(3), 80 % power, alpha 0.05, discordance 0.4: "
        "cw-spectrogram n = 32: 0.31; cw-waveform n = 32: 0.31"
    )
    assert power.describe({"cw-waveform": 16}, k=3).endswith("cw-waveform n = 16: not detectable")
    assert "FR(" in power.describe({"cw-waveform": 64})  # k from explbench.api.metric
