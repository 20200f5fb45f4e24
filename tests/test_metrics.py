"""Tests of the metrics and the aggregator on hand-built protocol records."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from explbench.metrics import COLUMNS, MetricValue, aggregate, agnostic_fidelity, metric_info
from explbench.api.registry import metrics as registry

D = 20


def record(case_id: str, explainer: str = "lime", **kw) -> dict:
    """One protocol record with harmless defaults; keyword arguments override fields."""
    row = {
        "case_id": case_id,
        "generator": "cw-spectrogram",
        "direction": "no-voice-to-voice",
        "explainer": explainer,
        "oracle": False,
        "status": "ok",
        "error": None,
        "d": D,
        "true_segments": None,
        "weights": [0.0] * D,
        "score": None,
        "agnostic_score": None,
        "queries": 100,
        "seconds": 0.5,
        "flip_at_k": [False] * D,
        "flip_norm_at_k": [False] * D,
        "flip_absmean_at_k": [False] * D,
        "necessary_segments": None,
        "signed": True,
        "n_positive": 0,
        "flip_positive": False,
        "flip_norm_positive": False,
    }
    row.update(kw)
    return row


def weights_ranking(first: list[int], rng: np.random.Generator | None = None) -> list[float]:
    """Weights whose top-len(first) segments are exactly ``first`` (in that order)."""
    w = np.zeros(D) if rng is None else rng.uniform(-1, 0.5, D)
    for rank, seg in enumerate(first):
        w[seg] = 10.0 - rank
    return w.tolist()


def values(table: pd.DataFrame, metric: str, direction: str = "all", explainer: str = "lime"):
    sel = table[
        (table.metric == metric) & (table.direction == direction) & (table.explainer == explainer)
    ]
    return sel.set_index("k")


def localized_records(explainer: str, weights_for, n_per_k: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for k in (1, 3, 5):
        for i in range(n_per_k):
            truth = sorted(rng.choice(D, size=k, replace=False).tolist())
            rows.append(
                record(
                    f"loc-k{k}-{i:04d}",
                    explainer,
                    generator="localized",
                    true_segments=truth,
                    weights=weights_for(truth, rng),
                    agnostic_score=float(rng.uniform()),
                )
            )
    return rows


# --------------------------------------------------------------------------- registry


def test_all_metrics_registered_with_attributes():
    info = metric_info()
    assert list(info.columns) == ["name", "direction", "category", "description"]
    expected = {
        "flip-rate", "flip-rate-norm", "positive-flip-rate", "positive-flip-rate-norm",
        "positive-count", "recovery", "recovery-dist", "fidelity-auc", "fidelity-pointbiserial",
        "fidelity-median-correct", "fidelity-median-wrong", "correct-rate", "queries", "seconds",
        "failure-rate", "flip-rate-absmean", "recovery-necessary", "minimal-cause-rate",
        "agnostic-fidelity-auc", "agnostic-fidelity-pointbiserial",
        "agnostic-fidelity-median-correct", "agnostic-fidelity-median-wrong",
    }
    assert expected <= set(info.name)
    assert set(info.direction) <= {"higher", "lower", "none"}
    assert (info.description.str.len() > 0).all()
    for name in expected:
        cls = registry.get(name)
        assert cls.name == name and cls.category and cls.needs


def test_metric_value_is_frozen():
    mv = MetricValue("flip-rate", 3, 0.5, 0.4, 0.6, 10)
    with pytest.raises(AttributeError):
        mv.value = 1.0  # type: ignore[misc]


# --------------------------------------------------------------------------- veracity


def flip_records(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        flips = np.sort(rng.random(D))[::-1] < rng.random()  # monotone in k
        norm = np.ones(D, dtype=bool)
        n_pos = int(rng.integers(0, 6))
        rows.append(
            record(
                f"adv-{i:03d}",
                flip_at_k=flips.tolist(),
                flip_norm_at_k=norm.tolist(),
                n_positive=n_pos,
                flip_positive=bool(n_pos > 0 and rng.random() < 0.5),
                flip_norm_positive=bool(n_pos > 0),
            )
        )
    return pd.DataFrame(rows)


def test_flip_rate_equals_column_means():
    recs = flip_records(60, seed=0)
    table = aggregate(recs, seed=1, n_boot=200, metrics=["flip-rate", "flip-rate-norm"])
    fr = values(table, "flip-rate")
    mat = np.array(recs.flip_at_k.tolist())
    assert list(fr.index) == list(range(1, D + 1))
    assert fr.loc[D, "value"] == pytest.approx(mat[:, -1].mean())
    np.testing.assert_allclose(fr.value.to_numpy(float), mat.mean(axis=0))
    assert (fr.n == 60).all()
    assert (fr.ci_low <= fr.value).all() and (fr.value <= fr.ci_high).all()
    assert (values(table, "flip-rate-norm").value == 1.0).all()


def test_positive_metrics():
    recs = flip_records(50, seed=2)
    table = aggregate(
        recs, seed=1, n_boot=200,
        metrics=["positive-flip-rate", "positive-flip-rate-norm", "positive-count"],
    )
    for metric, col in [
        ("positive-flip-rate", "flip_positive"),
        ("positive-flip-rate-norm", "flip_norm_positive"),
        ("positive-count", "n_positive"),
    ]:
        row = values(table, metric)
        assert list(row.index) == [pd.NA] or row.index.isna().all()
        assert row.value.iloc[0] == pytest.approx(recs[col].astype(float).mean())
        assert row.n.iloc[0] == 50


def test_failed_explanations_count_as_no_flip_and_localized_rows_are_ignored():
    recs = flip_records(30, seed=3)
    failed = [
        record(f"bad-{i}", status="failed", error="boom", flip_at_k=[True] * D) for i in range(10)
    ]
    loc = [record("loc-0", true_segments=[2], flip_at_k=[True] * D)]
    both = pd.DataFrame([*recs.to_dict("records"), *failed, *loc])
    table = aggregate(both, seed=1, n_boot=100, metrics=["flip-rate", "failure-rate"])
    fr = values(table, "flip-rate")
    assert (fr.n == 40).all()  # 30 explained + 10 failed, which never flip
    flips = np.array(recs.flip_at_k.tolist())
    assert fr.loc[D, "value"] == pytest.approx(flips[:, -1].sum() / 40)
    np.testing.assert_allclose(fr.value.to_numpy(float), flips.sum(axis=0) / 40)
    fail = values(table, "failure-rate")
    assert fail.value.iloc[0] == pytest.approx(10 / 41)
    assert fail.n.iloc[0] == 41


def test_cost_metrics_use_successful_rows():
    rows = [record(f"c{i}", queries=100 * (i + 1), seconds=float(i)) for i in range(4)]
    rows.append(record("c-bad", status="failed", queries=10_000, seconds=99.0))
    table = aggregate(pd.DataFrame(rows), seed=0, n_boot=100, metrics=["queries", "seconds"])
    assert values(table, "queries").value.iloc[0] == pytest.approx(250.0)
    assert values(table, "seconds").value.iloc[0] == pytest.approx(1.5)
    assert values(table, "queries").n.iloc[0] == 4


# --------------------------------------------------------------------------- recovery


def test_perfect_explainer_recovers_everything():
    rows = localized_records("perfect", lambda t, rng: weights_ranking(t, rng), 20, seed=0)
    table = aggregate(
        pd.DataFrame(rows), seed=0, n_boot=100,
        metrics=["recovery", "recovery-dist", "correct-rate"],
    )
    rec = values(table, "recovery", explainer="perfect")
    assert list(rec.index) == [1, 3, 5]
    assert (rec.value == 1.0).all() and (rec.n == 20).all()
    for k in (1, 3, 5):
        dist = table[(table.direction == "all") & (table.k == k)
                     & table.metric.str.startswith("recovery-dist-")]
        assert sorted(dist.metric) == sorted(f"recovery-dist-{j}" for j in range(k + 1))
        assert dist.set_index("metric").loc[f"recovery-dist-{k}", "value"] == 1.0
        assert dist.value.sum() == pytest.approx(1.0)
    assert values(table, "correct-rate", explainer="perfect").value.iloc[0] == 1.0


def test_random_explainer_recovers_k_over_d():
    rows = localized_records("random", lambda t, rng: rng.normal(size=D).tolist(), 400, seed=1)
    table = aggregate(pd.DataFrame(rows), seed=0, n_boot=200, metrics=["recovery", "recovery-dist"])
    rec = values(table, "recovery", explainer="random")
    for k in (1, 3, 5):
        assert rec.loc[k, "value"] == pytest.approx(k / D, abs=0.04)
        assert rec.loc[k, "ci_low"] <= k / D <= rec.loc[k, "ci_high"] + 0.01
    # k = 1: the hypergeometric P(0 hits) = 1 - 1/d
    dist1 = table[(table.metric == "recovery-dist-0") & (table.k == 1) & (table.direction == "all")]
    assert dist1.value.iloc[0] == pytest.approx(1 - 1 / D, abs=0.03)


def test_recovery_scores_ties_by_their_expectation_not_by_index():
    rows = [
        record("t0", true_segments=[0, 1], weights=[0.0] * D),  # index order would give 2 hits
        record("t1", true_segments=[5, 6], weights=[0.0] * D),  # index order would give 0 hits
    ]
    table = aggregate(pd.DataFrame(rows), seed=0, n_boot=50,
                      metrics=["recovery", "recovery-dist", "correct-rate"])
    # a fully tied explainer is a random one: expected share k/d for each case
    assert values(table, "recovery").loc[2, "value"] == pytest.approx(2 / D)
    dist = table[(table.k == 2) & (table.direction == "all")].set_index("metric")["value"]
    assert dist["recovery-dist-2"] == pytest.approx(1 / 190)  # C(20, 2) equally likely pairs
    assert dist["recovery-dist-0"] == pytest.approx(153 / 190)  # C(18, 2) / C(20, 2)
    # partial tie: segment 3 is certain, one of 4 tied segments takes the second place
    w = [0.0] * D
    w[3] = 2.0
    for i in (7, 8, 9, 10):
        w[i] = 1.0
    table = aggregate(pd.DataFrame([record("t2", true_segments=[3, 8], weights=w)]), seed=0,
                      n_boot=50, metrics=["recovery"])
    assert values(table, "recovery").loc[2, "value"] == pytest.approx((1 + 1 / 4) / 2)


def test_records_read_back_from_files_give_the_same_table():
    """Parquet/JSON round-trips turn lists into arrays and None into NaN; metrics must not care."""
    rows = localized_records("lime", lambda t, rng: rng.normal(size=D).tolist(), 6, seed=4)
    rows += flip_records(6, seed=4).to_dict("records")
    recs = pd.DataFrame(rows)
    as_arrays = recs.copy()
    for col in ("weights", "flip_at_k", "flip_norm_at_k", "true_segments"):
        as_arrays[col] = [np.asarray(v) if v is not None else np.nan for v in recs[col]]
    a = aggregate(recs, seed=2, n_boot=50)
    b = aggregate(as_arrays, seed=2, n_boot=50)
    pd.testing.assert_frame_equal(a, b)
    assert {"flip-rate", "recovery"} <= set(a.metric)


# --------------------------------------------------------------------------- fidelity


def fidelity_rows(explainer: str, n: int, own_score: bool, separate: bool) -> list[dict]:
    rng = np.random.default_rng(5)
    rows = []
    for i in range(n):
        truth = int(rng.integers(D))
        correct = i % 3 != 0
        top = truth if correct else (truth + 1) % D
        fid = (0.8 if correct else 0.4) + 0.1 * rng.random() if separate else rng.random()
        rows.append(
            record(
                f"k1-{i:03d}",
                explainer,
                generator="localized",
                true_segments=[truth],
                weights=weights_ranking([top]),
                score=fid if own_score else None,
                agnostic_score=(fid if not own_score else -1.0),
            )
        )
    return rows


def test_fidelity_auc_is_one_when_correct_scores_are_higher():
    rows = fidelity_rows("lime", 60, own_score=True, separate=True)
    names = ["fidelity-auc", "fidelity-pointbiserial", "fidelity-median-correct",
             "fidelity-median-wrong", "correct-rate"]
    table = aggregate(pd.DataFrame(rows), seed=0, n_boot=200, metrics=names)
    t = table[table.direction == "all"].set_index("metric")
    assert (t.k == 1).all()
    assert t.loc["fidelity-auc", "value"] == 1.0
    # every resample gives AUC 1: no honest interval, so none (never a zero-width one)
    assert math.isnan(t.loc["fidelity-auc", "ci_low"])
    assert t.loc["correct-rate", "value"] == pytest.approx(40 / 60)
    assert t.loc["fidelity-pointbiserial", "value"] > 0.9
    assert 0.8 <= t.loc["fidelity-median-correct", "value"] <= 0.9
    assert 0.4 <= t.loc["fidelity-median-wrong", "value"] <= 0.5
    assert t.loc["fidelity-median-wrong", "n"] == 20


def test_own_and_agnostic_fidelity_never_mix():
    names = ["fidelity-auc", "agnostic-fidelity-auc"]
    # no own score: no own-fidelity rows at all; the agnostic column (separating) has its own
    rows = fidelity_rows("saliency", 30, own_score=False, separate=True)
    table = aggregate(pd.DataFrame(rows), seed=0, n_boot=100, metrics=names)
    assert values(table, "fidelity-auc", explainer="saliency").empty
    assert values(table, "agnostic-fidelity-auc", explainer="saliency").value.iloc[0] == 1.0
    # own score separates; the agnostic column (constant -1) says nothing, and stays separate
    rows = fidelity_rows("lime", 30, own_score=True, separate=True)
    table = aggregate(pd.DataFrame(rows), seed=0, n_boot=100, metrics=names)
    assert values(table, "fidelity-auc").value.iloc[0] == 1.0
    assert values(table, "agnostic-fidelity-auc").value.iloc[0] == 0.5
    # a group where only some rows have an own score reads only those rows
    mixed = fidelity_rows("lime", 30, own_score=True, separate=True)
    for r in mixed[:12]:
        r["score"] = None
    table = aggregate(pd.DataFrame(mixed), seed=0, n_boot=100, metrics=names)
    assert values(table, "fidelity-auc").n.iloc[0] == 18
    assert values(table, "agnostic-fidelity-auc").n.iloc[0] == 30


def test_association_needs_a_minimum_count_per_class():
    rows = localized_records("perfect", lambda t, rng: weights_ranking(t), 10, seed=0)
    table = aggregate(pd.DataFrame(rows), seed=0, n_boot=100,
                      metrics=["agnostic-fidelity-auc", "agnostic-fidelity-pointbiserial"])
    assert table[table.explainer == "perfect"].empty  # every explanation correct: one class
    # 4 wrong of 30: still below the minimum of 5 per class, so nothing is reported
    rows = fidelity_rows("lime", 12, own_score=True, separate=True)  # 8 correct, 4 wrong
    table = aggregate(pd.DataFrame(rows), seed=0, n_boot=100, metrics=["fidelity-auc"])
    assert table.empty
    rows = fidelity_rows("lime", 15, own_score=True, separate=True)  # 10 correct, 5 wrong
    table = aggregate(pd.DataFrame(rows), seed=0, n_boot=100, metrics=["fidelity-auc"])
    assert values(table, "fidelity-auc").n.iloc[0] == 15


def test_positive_flip_is_not_applicable_to_unsigned_explainers():
    recs = flip_records(20, seed=2)
    recs["flip_positive"] = True  # all-positive weights select every segment: trivially 1
    recs["signed"] = False
    table = aggregate(recs, seed=1, n_boot=50,
                      metrics=["positive-flip-rate", "positive-flip-rate-norm", "positive-count"])
    assert table.empty
    recs["signed"] = True
    table = aggregate(recs, seed=1, n_boot=50, metrics=["positive-flip-rate"])
    assert values(table, "positive-flip-rate").value.iloc[0] == 1.0


def test_recovery_against_the_necessary_set():
    """A model that needs only segment 4 of a claimed cause {4, 9, 15}: an explainer that ranks
    4 first and the rest anywhere is fully right about the necessary set."""
    rows = []
    for i in range(12):
        w = np.linspace(0, -1, D)
        w[4] = 5.0
        rows.append(record(f"loc-{i}", generator="localized", true_segments=[4, 9, 15],
                           necessary_segments=[4], weights=w.tolist()))
    rows.append(record("loc-full", generator="localized", true_segments=[1, 2, 3],
                       necessary_segments=[1, 2, 3], weights=weights_ranking([1, 2, 3])))
    rows.append(record("loc-none", generator="localized", true_segments=[5, 6, 7],
                       necessary_segments=[], weights=weights_ranking([5, 6, 7])))
    table = aggregate(pd.DataFrame(rows), seed=0, n_boot=50,
                      metrics=["recovery", "recovery-necessary", "minimal-cause-rate"])
    claimed = values(table, "recovery").loc[3]
    assert claimed.value == pytest.approx((12 * 1 / 3 + 2) / 14)  # top-3 is {4, 0, 1}: 1 of 3
    nec = values(table, "recovery-necessary").loc[3]
    assert nec.value == 1.0 and nec.n == 13  # the case with no single necessary segment is left out
    minimal = values(table, "minimal-cause-rate").loc[3]
    assert minimal.value == pytest.approx(1 / 14) and minimal.n == 14


def test_intervals_hold_their_level_and_are_never_zero_width():
    from explbench.stats.clusters import MIN_CLUSTERS

    recs = flip_records(16, seed=0)
    recs["flip_at_k"] = [[False] * D for _ in range(16)]  # FR(k) = 0/16 everywhere
    recs["cluster"] = [f"song-{i}" for i in range(16)]
    table = aggregate(recs, seed=0, n_boot=200, metrics=["flip-rate", "queries"])
    fr = values(table, "flip-rate").loc[3]
    assert fr.value == 0.0 and fr.ci_low == 0.0
    assert fr.ci_high == pytest.approx(1 - 0.025 ** (1 / 16), abs=1e-9)  # Clopper-Pearson 0/16: 0.206
    assert fr.n == 16 and fr.n_clusters == 16
    # constant queries: no honest bootstrap interval, so none rather than [v, v]
    q = values(table, "queries").iloc[0]
    assert q.value == 100 and math.isnan(q.ci_low) and math.isnan(q.ci_high)
    # a mean from fewer clusters than the bootstrap needs reports no interval
    few = flip_records(MIN_CLUSTERS - 1, seed=1)
    few["queries"] = np.arange(len(few)) * 10
    few["cluster"] = [f"s{i}" for i in range(len(few))]
    q = values(aggregate(few, seed=0, n_boot=200, metrics=["queries"]), "queries").iloc[0]
    assert np.isfinite(q.value) and math.isnan(q.ci_low)
    many = flip_records(40, seed=1)
    many["queries"] = np.arange(40) * 10
    many["cluster"] = [f"s{i}" for i in range(40)]
    q = values(aggregate(many, seed=0, n_boot=200, metrics=["queries"]), "queries").iloc[0]
    assert q.ci_low < q.value < q.ci_high


def test_clustered_cases_widen_the_interval_and_count_clusters():
    recs = flip_records(32, seed=5)
    flips = [[bool(i // 8 % 2)] * D for i in range(32)]  # whole songs flip or not
    recs["flip_at_k"] = flips
    recs["cluster"] = [f"song-{i // 8}" for i in range(32)]
    clustered = values(aggregate(recs, seed=0, n_boot=100, metrics=["flip-rate"]), "flip-rate").loc[3]
    recs["cluster"] = [f"song-{i}" for i in range(32)]
    independent = values(aggregate(recs, seed=0, n_boot=100, metrics=["flip-rate"]), "flip-rate").loc[3]
    assert clustered.n == independent.n == 32
    assert clustered.n_clusters == 4 and independent.n_clusters == 32
    assert clustered.value == independent.value == 0.5
    assert (clustered.ci_high - clustered.ci_low) > 1.5 * (independent.ci_high - independent.ci_low)


def test_more_than_two_classes_group_by_target():
    rows = []
    classes = ("a", "b", "c")
    for i in range(30):
        o, t = i % 3, (i + 1 + i // 3 % 2) % 3
        rows.append(record(f"c{i:02d}", direction=f"{classes[o]}-to-{classes[t]}",
                           flip_at_k=[True] * D))
    table = aggregate(pd.DataFrame(rows), seed=0, n_boot=20, metrics=["flip-rate"])
    assert set(table.direction) == {"to-a", "to-b", "to-c", "all"}
    fr = table[(table.metric == "flip-rate") & (table.k == 1)].set_index("direction")
    assert fr.loc["all", "n"] == 30 and fr.drop(index="all").n.sum() == 30


# --------------------------------------------------------------------------- aggregate


def mixed_records() -> pd.DataFrame:
    rows = flip_records(24, seed=7).to_dict("records")
    for i, r in enumerate(rows):
        r["direction"] = "voice-to-no-voice" if i % 2 else "no-voice-to-voice"
    rows += localized_records("lime", lambda t, rng: rng.normal(size=D).tolist(), 8, seed=3)
    rows += fidelity_rows("lime", 12, own_score=True, separate=False)
    rows.append(record("adv-fail", status="failed", error="boom"))
    return pd.DataFrame(rows)


def test_aggregate_schema_and_pooled_rows():
    recs = mixed_records()
    table = aggregate(recs, seed=3, n_boot=100)
    assert list(table.columns) == COLUMNS
    assert str(table.k.dtype) == "Int64"
    assert table.n.dtype == np.int64
    assert set(table.direction) == {"no-voice-to-voice", "voice-to-no-voice", "all"}
    assert not table.duplicated(["generator", "direction", "explainer", "metric", "k"]).any()
    fr3 = table[(table.metric == "flip-rate") & (table.k == 3)].set_index("direction")
    assert fr3.loc["all", "n"] == fr3.loc["no-voice-to-voice", "n"] + fr3.loc[
        "voice-to-no-voice", "n"]
    assert fr3.loc["all", "n"] == 25  # 24 explained + 1 failed (counts as no flip)
    assert table.n_clusters.dtype == np.int64 and (table.n_clusters <= table.n).all()
    assert table.k[table.metric == "queries"].isna().all()
    keys = table[["generator", "direction", "explainer", "metric"]].astype(str)
    assert keys.apply(tuple, axis=1).is_monotonic_increasing


def test_aggregate_is_deterministic_and_order_independent():
    recs = mixed_records()
    a = aggregate(recs, seed=3, n_boot=100)
    b = aggregate(recs, seed=3, n_boot=100)
    pd.testing.assert_frame_equal(a, b)
    shuffled = recs.sample(frac=1.0, random_state=11).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, aggregate(shuffled, seed=3, n_boot=100))
    c = aggregate(recs, seed=4, n_boot=100)
    assert not np.allclose(a.ci_low.fillna(0), c.ci_low.fillna(0))


def test_aggregate_unchanged_by_another_explainer():
    recs = mixed_records()
    other = recs.copy()
    other["explainer"] = "random"
    other["case_id"] = other["case_id"] + "-r"  # also interleaves in case_id order
    a = aggregate(recs, seed=3, n_boot=100)
    both = aggregate(pd.concat([other, recs], ignore_index=True), seed=3, n_boot=100)
    only_lime = both[both.explainer == "lime"].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, only_lime)


def test_aggregate_errors():
    recs = mixed_records()
    with pytest.raises(KeyError, match="unknown metric"):
        aggregate(recs, seed=0, metrics=["flip-rat"])
    with pytest.warns(UserWarning, match="agnostic_score"):
        skipped = aggregate(recs.drop(columns="agnostic_score"), seed=0, n_boot=10,
                            metrics=["agnostic-fidelity-auc", "correct-rate"])
    assert set(skipped.metric) == {"correct-rate"}
    with pytest.raises(ValueError, match="case_id"):
        aggregate(recs.drop(columns="case_id"), seed=0)
    empty = aggregate(recs.iloc[:0], seed=0, n_boot=10)
    assert list(empty.columns) == COLUMNS and empty.empty


def test_run_where_every_explanation_failed_still_reports_failure_rate():
    # failed records carry only the keys known before explaining (as the protocol writes them)
    keep = ["case_id", "generator", "direction", "explainer", "oracle", "d", "true_segments",
            "flip_norm_at_k", "status", "error"]
    rows = [{k: v for k, v in record(f"f{i}", status="failed", error="boom").items() if k in keep}
            for i in range(5)]
    with pytest.warns(UserWarning):
        table = aggregate(pd.DataFrame(rows), seed=0, n_boot=10)
    assert set(table.metric) == {"failure-rate", "flip-rate", "flip-rate-norm", "positive-flip-rate"}
    assert (table[table.metric == "failure-rate"].value == 1.0).all()
    assert (table[table.metric == "flip-rate"].value == 0.0).all()  # failures never flip
    assert (table[table.metric == "flip-rate"].n == 5).all()


# --------------------------------------------------------------------------- agnostic fidelity


def neighbourhood(n: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    Z = (rng.random((n, D)) < 0.5).astype(float)
    Z[0] = 1.0
    v = np.sqrt(np.exp(-rng.random(n) ** 2 / 0.25**2))
    return rng, Z, v


def test_agnostic_fidelity_exactly_linear_is_one():
    rng, Z, v = neighbourhood()
    w = rng.normal(size=D)
    y = 0.3 * (Z @ w) + 0.2
    assert agnostic_fidelity(Z, y, v, w) == pytest.approx(1.0)
    assert agnostic_fidelity(Z, y, None, w) == pytest.approx(1.0)


def test_agnostic_fidelity_noise_is_near_zero():
    rng, Z, v = neighbourhood(n=4000)
    w = rng.normal(size=D)
    y = rng.normal(size=Z.shape[0])
    r2 = agnostic_fidelity(Z, y, v, w)
    assert 0.0 <= r2 < 0.01


def test_agnostic_fidelity_invariant_to_scaling_and_weighted():
    rng, Z, v = neighbourhood()
    w = rng.normal(size=D)
    y = Z @ w + rng.normal(0, 2.0, Z.shape[0])
    r2 = agnostic_fidelity(Z, y, v, w)
    assert 0.0 < r2 < 1.0
    assert agnostic_fidelity(Z, y, v, 7.5 * w) == pytest.approx(r2)
    assert agnostic_fidelity(Z, y, v, 1e-3 * w) == pytest.approx(r2)
    # against a weighted least-squares fit computed independently
    X = np.column_stack([Z @ w, np.ones(len(y))])
    sw = np.sqrt(v)
    coef, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
    ybar = np.average(y, weights=v)
    expected = 1 - np.sum(v * (y - X @ coef) ** 2) / np.sum(v * (y - ybar) ** 2)
    assert r2 == pytest.approx(expected)


def test_agnostic_fidelity_gives_nothing_to_a_reversed_explanation():
    rng, Z, v = neighbourhood()
    w = rng.normal(size=D)
    y = Z @ w + rng.normal(0, 0.5, Z.shape[0])
    assert agnostic_fidelity(Z, y, v, w) > 0.5
    assert agnostic_fidelity(Z, y, v, -w) == 0.0


def test_agnostic_fidelity_degenerate_cases():
    rng, Z, v = neighbourhood()
    y = rng.normal(size=Z.shape[0])
    assert agnostic_fidelity(Z, y, v, np.zeros(D)) == 0.0  # constant prediction
    assert math.isnan(agnostic_fidelity(Z, np.ones(Z.shape[0]), v, rng.normal(size=D)))
    with pytest.raises(ValueError):
        agnostic_fidelity(Z, y[:-1], v, np.ones(D))
