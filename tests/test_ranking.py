"""Ranks from paired tests: McNemar counts and p-values known by construction, Holm, oracles,
clusters, failures and unpaired comparisons."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from explbench.results import ranking
from explbench.store.runs import records_frame
from explbench.stats.intervals import wilson_interval

N = 16


def _records(flipping: dict[str, set[int]], n: int = N, *, clusters: list[str] | None = None,
             oracle: tuple[str, ...] = (), failed: dict[str, set[int]] | None = None,
             generator: str = "cw-spectrogram", content: str | None = "c") -> pd.DataFrame:
    """One record per (case, explainer); explainer e flips (at k = 3) exactly on cases flipping[e].

    Case i carries the content hash ``f"{content}{i}"`` (none when ``content`` is None)."""
    failed = failed or {}
    rows = []
    for e, flips in flipping.items():
        for i in range(n):
            bad = i in failed.get(e, set())
            rec = {"case_id": f"{generator}/{i:04d}", "generator": generator,
                   "direction": "a-to-b" if i % 2 else "b-to-a", "explainer": e,
                   "oracle": e in oracle, "status": "failed" if bad else "ok"}
            if content is not None:
                rec["case_hash"] = f"{content}{i}"
            if not bad:  # a flip at k = 3 and every larger k; never before
                rec["flip_at_k"] = [False, False] + [i in flips] * 18
            if clusters is not None:
                rec["cluster"] = clusters[i]
            rows.append(rec)
    return records_frame(rows)


def _ranking(records: pd.DataFrame, generator: str = "cw-spectrogram") -> ranking.Ranking:
    return ranking.rank(ranking.outcomes(records, generator, run_id="r"), generator)


# A flips on 12 of 16 cases, B on 4 (a subset of A's), random on 2; the oracle on all 16.
FLIPS = {"A": set(range(12)), "B": set(range(4)), "random": {0, 12},
         "oracle-norm": set(range(16))}


@pytest.fixture(scope="module")
def board():
    return _ranking(_records(FLIPS, oracle=("oracle-norm",)))


def test_mcnemar_and_holm_are_exact(board):
    ab, ar, br = board.test("A", "B"), board.test("A", "random"), board.test("B", "random")
    # A vs B: 8 discordant cases, all for A -> exact two-sided binomial p = 2 / 2^8
    assert (ab.rate_a, ab.rate_b, ab.diff) == (0.75, 0.25, 0.5)
    assert ab.test == "McNemar" and ab.paired and ab.n == 16 and ab.n_clusters == 16
    assert ab.p == pytest.approx(2 / 2**8, abs=1e-15)
    # A vs random: 11 for A, 1 for random -> 2 * (1 + 12) / 2^12
    assert ar.p == pytest.approx(26 / 4096, abs=1e-15)
    # B vs random: 3 for B, 1 for random -> 2 * (1 + 4) / 2^4
    assert br.p == pytest.approx(10 / 16, abs=1e-15)
    # Holm over the three pairs: 3 * 26/4096, then max(that, 2 * 2/256), then 0.625
    assert ar.p_holm == pytest.approx(3 * 26 / 4096, abs=1e-15)
    assert ab.p_holm == pytest.approx(3 * 26 / 4096, abs=1e-15)
    assert br.p_holm == pytest.approx(0.625, abs=1e-15)


def test_rank_is_one_plus_the_significantly_better(board):
    assert board.rank("A") == 1 and board.label("A") == "1"
    assert board.rank("B") == 2 and board.rank("random") == 2
    assert board.label("B") == "=2" and board.label("random") == "=2"
    assert board.better_than("A") == ["B", "random"]
    assert board.better_than("B") == [] and board.worse_than("B") == ["A"]
    assert board.beats_random("A") == "yes" and board.beats_random("B") == "no"
    assert board.beats_random("random") == "–"


def test_beats_random_is_its_own_holm_family():
    """C flips on 10 cases, random on 2 (one shared): 9 discordant for C, 1 for random, exact
    McNemar p = 2 * 11 / 2^10. In the family "each explainer against random" (A, B, C) Holm
    multiplies it by 2 (A's p = 26/4096 comes first): 0.043, significant. Over all six pairs it
    is multiplied by 4 (after A-random and A-B): 0.086, not significant."""
    flips = {"A": set(range(12)), "B": set(range(4)), "C": set(range(10)), "random": {0, 12}}
    res = _ranking(_records(flips))
    c = res.vs_random["C"]
    assert c.p == pytest.approx(22 / 1024, abs=1e-15)
    assert set(res.vs_random) == {"A", "B", "C"}
    assert c.p_holm == pytest.approx(2 * 22 / 1024, abs=1e-15)
    assert res.test("C", "random").p_holm == pytest.approx(4 * 22 / 1024, abs=1e-15)
    assert res.beats_random("C") == "yes" and "random" not in res.better_than("C")
    assert res.beats_random("A") == "yes" and res.beats_random("B") == "no"
    assert res.beats_random("random") == "–"


def test_oracle_is_shown_never_ranked_never_counted(board):
    assert board.label("oracle-norm") == "oracle" and board.rank("oracle-norm") is None
    assert "oracle-norm" not in board.ranked
    assert all("oracle-norm" not in (t.a, t.b) for t in board.tests)
    assert len(board.tests) == 3  # the Holm family holds the three real pairs only
    eff, p = board.matrix()
    assert list(eff.index) == ["A", "B", "random"]
    assert eff.loc["A", "B"] == 0.5 and eff.loc["B", "A"] == -0.5
    assert p.loc["A", "B"] == p.loc["B", "A"] == pytest.approx(3 * 26 / 4096)


def test_paired_test_separates_where_marginal_intervals_overlap():
    n = 40
    r = _records({"A": set(range(20)), "B": set(range(12))}, n=n)
    lo_a, hi_a = wilson_interval(20, n)
    lo_b, hi_b = wilson_interval(12, n)
    assert lo_a < hi_b  # the 95 % intervals overlap: the old rule gave both rank 1
    res = _ranking(r)
    t = res.test("A", "B")
    assert t.p == pytest.approx(2 / 2**8, abs=1e-15)  # 8 discordant, all for A
    assert res.rank("A") == 1 and res.rank("B") == 2


def test_failed_explanations_count_as_no_flip():
    r = _records({"A": set(range(12)), "B": set(range(12))}, failed={"B": set(range(6))})
    o = ranking.outcomes(r, "cw-spectrogram")
    assert o["B"].n == 16 and o["B"].flips.sum() == 6
    t = ranking.rank(o, "cw-spectrogram").test("A", "B")
    assert (t.rate_a, t.rate_b) == (0.75, 0.375)
    assert t.p == pytest.approx(2 / 2**6, abs=1e-15)  # six discordant, all for A


def test_cluster_falls_back_to_case_id_and_repeated_clusters_use_the_cluster_bootstrap():
    r = _records({"A": set(range(12)), "B": set(range(4))})
    assert list(r["cluster"][:2]) == ["cw-spectrogram/0000", "cw-spectrogram/0001"]
    songs = [f"song{i // 2}" for i in range(24)]  # 12 songs, two cases each
    rc = _records({"A": set(range(18)), "B": set(range(4))}, n=24, clusters=songs)
    t = _ranking(rc).test("A", "B")
    assert t.test == "paired cluster bootstrap" and t.n == 24 and t.n_clusters == 12
    assert t.diff == pytest.approx(14 / 24)
    assert 0 <= t.p < 0.05 and t.ci_low > 0


def test_unpaired_runs_use_fisher_and_are_flagged():
    a = ranking.outcomes(_records({"A": set(range(12))}, content="x"), "cw-spectrogram", run_id="r1")
    b = ranking.outcomes(_records({"B": set(range(4))}, content="y"), "cw-spectrogram", run_id="r2")
    res = ranking.rank({**a, **b}, "cw-spectrogram")
    t = res.test("A", "B")
    assert not t.paired and t.test == "unpaired, Fisher exact"
    assert t.p == pytest.approx(0.012113710780017297, rel=1e-12)  # [[12, 4], [4, 12]]
    assert res.unpaired_pairs() == [("A", "B")]
    # the same content means the same cases: paired although the runs differ
    c = ranking.outcomes(_records({"B": set(range(4))}, content="x"), "cw-spectrogram", run_id="r2")
    tc = ranking.rank({**a, **c}, "cw-spectrogram").test("A", "B")
    assert tc.paired and tc.n == 16 and tc.test == "McNemar"
    # records without content hashes (older runs) are never paired across runs
    d = ranking.outcomes(_records({"B": set(range(4))}, content=None), "cw-spectrogram", run_id="r3")
    assert not ranking.rank({**a, **d}, "cw-spectrogram").test("A", "B").paired


def test_pairing_follows_content_not_case_ids():
    """Run B holds A's cases under shuffled ids, and half of them with other content: the pairs
    are A's cases whose content B holds, whatever their ids."""
    import numpy as np

    ra = _records({"A": set(range(8))}, content="h")
    rb = _records({"B": set(range(8))}, content="h")
    perm = np.random.default_rng(0).permutation(N)
    rb["case_id"] = rb["case_id"].to_numpy()[perm]       # same content, other ids
    rb.loc[rb.index[8:], "case_hash"] = [f"other{i}" for i in range(N - 8)]  # 8 cases differ
    a = ranking.outcomes(ra, "cw-spectrogram", run_id="r1")
    b = ranking.outcomes(rb, "cw-spectrogram", run_id="r2")
    t = ranking.rank({**a, **b}, "cw-spectrogram").test("A", "B")
    assert t.paired and t.n == 8
    # the 8 shared cases are content h0..h7: A flips on all of them, and so does B
    assert t.rate_a == 1.0 and t.rate_b == 1.0 and t.diff == 0


def test_no_discordance_gives_no_difference():
    res = _ranking(_records({"A": set(range(8)), "B": set(range(8))}))
    t = res.test("A", "B")
    assert t.p == 1.0 and t.diff == 0 and res.rank("A") == res.rank("B") == 1
    assert res.label("A") == "=1"


def test_flips_at_reads_the_kth_entry_and_a_failure_flips_nothing():
    from explbench.metrics.veracity import flips_at

    rows = pd.DataFrame({"d": [3, 3, 3, 3], "status": ["ok", "ok", "ok", "failed"],
                         "flip_at_k": [[False, False, True], [True, True], None, [True, True, True]]})
    assert flips_at(rows, 3).tolist() == [True, False, False, False]
    assert flips_at(rows, 1).tolist() == [False, True, False, False]

def test_too_few_clusters_give_no_test_and_no_rank_difference():
    songs = [f"song{i // 4}" for i in range(N)]  # 4 songs of 4 excerpts: below MIN_CLUSTERS
    res = _ranking(_records({"A": set(range(16)), "B": set()}, clusters=songs))
    t = res.test("A", "B")
    assert t.test == "paired cluster bootstrap" and t.n_clusters == 4 and t.diff == 1.0
    assert math.isnan(t.p) and math.isnan(t.p_holm)
    assert res.rank("A") == res.rank("B") == 1  # not tested: no significant difference
