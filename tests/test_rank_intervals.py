"""Rank intervals: verdicts whose intervals are known by construction, input checks, agreement
with the board's ranks, and a simulation of their simultaneous coverage at the suites' sizes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from explbench.results import ranking
from explbench.results.rank_intervals import RankInterval, rank_intervals, rank_intervals_of


def _texts(intervals: dict[str, RankInterval]) -> dict[str, str]:
    return {e: r.text for e, r in intervals.items()}


# --------------------------------------------------------------------------- RankInterval


def test_text_single_rank_and_range_with_en_dash():
    assert RankInterval("a", 2, 2).text == "2"
    assert RankInterval("a", 1, 3).text == "1\u20133"


def test_contains():
    r = RankInterval("a", 2, 4)
    assert 2 in r and 4 in r and 3 in r
    assert 1 not in r and 5 not in r


@pytest.mark.parametrize("best, worst", [(0, 1), (3, 2)])
def test_invalid_interval_is_refused(best, worst):
    with pytest.raises(ValueError, match="best <= worst"):
        RankInterval("a", best, worst)


# --------------------------------------------------------------------------- from verdicts


def test_one_winner_and_a_tie():
    got = rank_intervals(["A", "B", "C"], {("A", "B"): True, ("A", "C"): True})
    assert _texts(got) == {"A": "1", "B": "2\u20133", "C": "2\u20133"}
    assert (got["B"].best, got["B"].worst) == (2, 3)


def test_full_chain():
    got = rank_intervals(["A", "B", "C"], {("A", "B"): True, ("B", "C"): True, ("A", "C"): True})
    assert _texts(got) == {"A": "1", "B": "2", "C": "3"}


def test_chain_with_only_neighbours_significant():
    # A > B and B > C are significant, A vs C is not: A is 1 or 2, B exactly 2, C 2 or 3
    got = rank_intervals(["A", "B", "C"], {("A", "B"): True, ("B", "C"): True})
    assert _texts(got) == {"A": "1\u20132", "B": "2", "C": "2\u20133"}


@pytest.mark.parametrize("m", [1, 2, 5, 8])
def test_all_ties_span_every_rank(m):
    names = [f"e{i}" for i in range(m)]
    got = rank_intervals(names, {})
    want = "1" if m == 1 else f"1\u2013{m}"
    assert all(r.text == want for r in got.values()), _texts(got)


def test_false_and_missing_pairs_are_not_significant():
    got = rank_intervals(["A", "B", "C"], {("A", "B"): False, ("B", "A"): False, ("C", "A"): True})
    assert _texts(got) == {"A": "2\u20133", "B": "1\u20133", "C": "1\u20132"}


def test_output_follows_input_order():
    names = ["zeta", "alpha", "mid"]
    assert list(rank_intervals(names, {("alpha", "zeta"): True})) == names


def test_empty():
    assert rank_intervals([], {}) == {}


@pytest.mark.parametrize("explainers, better, match", [
    (["A", "B"], {("A", "X"): True}, "unknown explainers"),
    (["A", "B"], {("A", "B"): True, ("B", "A"): True}, "both ways"),
    (["A", "B"], {("A", "A"): True}, "itself"),
    (["A", "A"], {}, "distinct"),
    (["A", ""], {}, "non-empty"),
    (["A", "B"], {("A", "B", "C"): True}, r"\(a, b\) pairs"),
])
def test_bad_inputs_are_refused(explainers, better, match):
    with pytest.raises(ValueError, match=match):
        rank_intervals(explainers, better)


def test_one_string_is_not_a_list_of_names():
    with pytest.raises(TypeError, match="not one string"):
        rank_intervals("AB", {})


def board_intervals(flips: dict, alpha: float = 0.05) -> dict:
    """The board's own rank intervals (``ranking.rank`` on these per-case flips, then
    :func:`rank_intervals_of`), every case its own cluster."""
    n = len(next(iter(flips.values()))) if flips else 0
    ids = np.array([f"g/{i:04d}" for i in range(n)])
    outs = {e: ranking.Outcomes(explainer=e, generator="g", run_id="run", case_ids=ids,
                                clusters=ids.copy(), flips=np.asarray(f, dtype=bool))
            for e, f in flips.items()}
    return rank_intervals_of(ranking.rank(outs, "g", alpha=alpha))


# --------------------------------------------------------------------------- from flips


def test_from_flips_winner_and_tie():
    n = 20  # 20 discordant cases A vs B and A vs C: exact p = 2 * 0.5**20
    flips = {"A": np.ones(n, bool), "B": np.zeros(n, bool), "C": np.zeros(n, bool)}
    assert _texts(board_intervals(flips)) == {"A": "1", "B": "2\u20133", "C": "2\u20133"}


def test_from_flips_direction_from_discordant_counts():
    n = 30
    flips = {"low": np.zeros(n, bool), "mid": np.arange(n) < 15, "high": np.ones(n, bool)}
    got = board_intervals(flips)
    assert _texts(got) == {"low": "3", "mid": "2", "high": "1"}


def test_from_flips_no_evidence_at_small_n():
    # 4 discordant cases give exact p = 0.125 at best: nothing is significant
    flips = {"A": np.array([1, 1, 1, 1, 0], bool), "B": np.zeros(5, bool), "C": np.zeros(5, bool)}
    assert all(r.text == "1\u20133" for r in board_intervals(flips).values())


def test_from_flips_alpha_matters():
    # 6 discordant cases all one way: exact p = 2 * 0.5**6 = 0.03125, one pair so no Holm penalty
    flips = {"A": np.r_[np.ones(6, bool), np.zeros(4, bool)], "B": np.zeros(10, bool)}
    assert _texts(board_intervals(flips, alpha=0.05)) == {"A": "1", "B": "2"}
    assert _texts(board_intervals(flips, alpha=0.01)) == {"A": "1\u20132", "B": "1\u20132"}


def test_from_flips_accepts_zero_one_integers_and_a_single_explainer():
    ints = {"A": np.ones(20, int), "B": np.zeros(20, int)}
    assert _texts(board_intervals(ints)) == {"A": "1", "B": "2"}
    assert _texts(board_intervals({"A": np.ones(3, bool)})) == {"A": "1"}


@pytest.mark.parametrize("seed", range(4))
def test_best_is_the_rank_the_board_shows(seed):
    """On singleton clusters the board's rank (McNemar, Holm over all pairs) equals ``best``."""
    rng = np.random.default_rng(seed)
    n, rates = 60, [0.8, 0.55, 0.5, 0.3, 0.1]
    flips = {f"e{i}": rng.random(n) < p for i, p in enumerate(rates)}
    ids = np.array([f"g/{i:04d}" for i in range(n)])
    outs = {e: ranking.Outcomes(explainer=e, generator="g", run_id="run", case_ids=ids,
                                clusters=ids.copy(), flips=f)
            for e, f in flips.items()}
    board = ranking.rank(outs, "g")
    got = board_intervals(flips)
    assert {e: board.rank(e) for e in flips} == {e: r.best for e, r in got.items()}
    for e in flips:  # worst: m - the number e beats on the board
        assert got[e].worst == len(flips) - len(board.better_than(e)), e


# --------------------------------------------------------------------------- coverage simulation

#: true per-case flip probabilities, with ties
RATES = {5: (0.70, 0.50, 0.50, 0.30, 0.10),
         8: (0.80, 0.60, 0.60, 0.60, 0.40, 0.30, 0.30, 0.10)}
#: cases per attack generator in the smoke, default and paper suites
SIZES = (16, 64, 320)
#: share of a case's latent that all explainers have in common (correlation of the latents)
SHARED = 0.5
REPLICATES = 400
#: the paper size costs most per replicate (the board's full pairwise ranking of 320 cases)
REPLICATES_AT = {320: 120}
LEVEL = 0.95
#: chance that a correct method fails the coverage check anyway (one-sided binomial slack)
FALSE_ALARM = 0.001


def _draw(rng: np.random.Generator, rates: tuple[float, ...], n: int) -> np.ndarray:
    """(n, m) bool flips with exact marginal rates, positively correlated within a case.

    Explainer j flips on case i when ``sqrt(SHARED) * z_i + sqrt(1 - SHARED) * e_ij`` falls below
    the ``rates[j]`` quantile of the standard normal: ``z_i`` (how easy case i is) is shared by
    every explainer, ``e_ij`` is its own.
    """
    threshold = sps.norm.ppf(rates)
    shared = rng.standard_normal((n, 1))
    own = rng.standard_normal((n, len(rates)))
    return np.sqrt(SHARED) * shared + np.sqrt(1.0 - SHARED) * own < threshold


def _true_ranges(rates: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per explainer: 1 + #strictly better true rates, m - #strictly worse true rates."""
    r = np.asarray(rates)
    best = 1 + (r[None, :] > r[:, None]).sum(axis=1)
    worst = r.size - (r[None, :] < r[:, None]).sum(axis=1)
    return best, worst


def test_simulated_flips_are_positively_correlated_with_the_true_rates():
    rng = np.random.default_rng(7)
    x = _draw(rng, RATES[5], 20_000)
    np.testing.assert_allclose(x.mean(axis=0), RATES[5], atol=0.015)
    corr = np.corrcoef(x.T)[np.triu_indices(5, 1)]
    assert corr.min() > 0.1, f"paired flips should be positively correlated, got {corr.round(2)}"


@pytest.mark.parametrize("m", sorted(RATES))
@pytest.mark.parametrize("n", SIZES)
def test_rank_intervals_cover_the_true_ranks(m, n):
    rates = RATES[m]
    reps = REPLICATES_AT.get(n, REPLICATES)
    names = [f"e{j}" for j in range(m)]
    true_best, true_worst = _true_ranges(rates)
    rng = np.random.default_rng([20240611, m, n])
    covered, width, misses = 0, 0.0, []
    for rep in range(reps):
        x = _draw(rng, rates, n)
        got = board_intervals({e: x[:, j] for j, e in enumerate(names)})
        best = np.array([got[e].best for e in names])
        worst = np.array([got[e].worst for e in names])
        ok = bool(np.all(best <= true_best) and np.all(worst >= true_worst))
        covered += ok
        width += float(np.mean(worst - best))
        if not ok and len(misses) < 3:
            misses.append((rep, [got[e].text for e in names]))
    need = int(sps.binom.ppf(FALSE_ALARM, reps, LEVEL))
    assert covered >= need, (
        f"m={m}, n={n}: the rank intervals held the true ranges of all explainers at once in "
        f"{covered}/{reps} replicates, need >= {need} ({LEVEL:.0%} less binomial slack at "
        f"{FALSE_ALARM}); true ranges {list(zip(true_best.tolist(), true_worst.tolist()))}, "
        f"first misses {misses}")
    if n == max(SIZES):  # the intervals also narrow: near the true widths at the paper's size
        true_width = float(np.mean(true_worst - true_best))
        mean_width = width / reps
        assert mean_width <= true_width + 0.5, (
            f"m={m}, n={n}: mean interval width {mean_width:.2f}, true ranges have {true_width:.2f}")
