"""Tests of the metrics and the aggregator on hand-built protocol records."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from explbench.metrics import COLUMNS, MetricValue, aggregate, agnostic_fidelity, metric_info
from explbench.registry import metrics as registry

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
        "failure-rate",
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


def test_flip_rate_ignores_failed_and_localized_rows_but_failure_rate_counts_them():
    recs = flip_records(30, seed=3)
    failed = [
        record(f"bad-{i}", status="failed", error="boom", flip_at_k=[True] * D) for i in range(10)
    ]
    loc = [record("loc-0", true_segments=[2], flip_at_k=[True] * D)]
    both = pd.DataFrame([*recs.to_dict("records"), *failed, *loc])
    table = aggregate(both, seed=1, n_boot=100, metrics=["flip-rate", "failure-rate"])
    fr = values(table, "flip-rate")
    assert (fr.n == 30).all()
    assert fr.loc[D, "value"] == pytest.approx(np.array(recs.flip_at_k.tolist())[:, -1].mean())
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


def test_recovery_ties_go_to_lower_index():
    rows = [
        record("t0", true_segments=[0, 1], weights=[0.0] * D),  # all tied → picks 0, 1
        record("t1", true_segments=[5, 6], weights=[0.0] * D),  # picks 0, 1 → 0 hits
    ]
    table = aggregate(pd.DataFrame(rows), seed=0, n_boot=50, metrics=["recovery"])
    assert values(table, "recovery").loc[2, "value"] == pytest.approx(0.5)


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
    assert t.loc["fidelity-auc", "ci_low"] == 1.0
    assert t.loc["correct-rate", "value"] == pytest.approx(40 / 60)
    assert t.loc["fidelity-pointbiserial", "value"] > 0.9
    assert 0.8 <= t.loc["fidelity-median-correct", "value"] <= 0.9
    assert 0.4 <= t.loc["fidelity-median-wrong", "value"] <= 0.5
    assert t.loc["fidelity-median-wrong", "n"] == 20


def test_fidelity_falls_back_to_agnostic_score():
    # no own score: the agnostic column (separating) is used
    rows = fidelity_rows("saliency", 30, own_score=False, separate=True)
    table = aggregate(pd.DataFrame(rows), seed=0, n_boot=100, metrics=["fidelity-auc"])
    assert values(table, "fidelity-auc", explainer="saliency").value.iloc[0] == 1.0
    # own score on every row wins over the (constant, useless) agnostic column
    rows = fidelity_rows("lime", 30, own_score=True, separate=True)
    table = aggregate(pd.DataFrame(rows), seed=0, n_boot=100, metrics=["fidelity-auc"])
    assert values(table, "fidelity-auc").value.iloc[0] == 1.0


def test_fidelity_auc_nan_with_one_class():
    rows = localized_records("perfect", lambda t, rng: weights_ranking(t), 10, seed=0)
    table = aggregate(pd.DataFrame(rows), seed=0, n_boot=100, metrics=["fidelity-auc"])
    row = values(table, "fidelity-auc", explainer="perfect")
    assert math.isnan(row.value.iloc[0]) and math.isnan(row.ci_low.iloc[0])
    assert row.n.iloc[0] == 10


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
    assert fr3.loc["all", "n"] == 24
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
                            metrics=["fidelity-auc", "correct-rate"])
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
    assert set(table.metric) == {"failure-rate"}
    assert (table.value == 1.0).all()


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
