"""Compare: paired tests on shared cases (McNemar, paired cluster bootstrap), failures as no
flip, 'no clear difference' for identical runs, and the unpaired fallback."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from explbench.cli import results as cli_results
from explbench.results.compare import compare
from results_fixture import make_run

GOOD = {"lime": (4.0, False, True, 256), "random": (0.0, False, False, 0)}
BAD = {"lime": (0.0, False, True, 256), "random": (0.0, False, False, 0)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPLBENCH_CACHE", str(root / "cache"))
        yield {"root": root,
               "good": make_run(root / "good", explainers=GOOD, run_id="good"),
               "bad": make_run(root / "bad", explainers=BAD, run_id="bad"),
               "seed1": make_run(root / "seed1", explainers=GOOD, seed=1, run_id="seed1")}


def _edited(src, dst, edit):
    """A copy of a run folder whose records pass through ``edit(record) -> record``."""
    shutil.copytree(src, dst)
    lines = (dst / "records.jsonl").read_text().splitlines()
    recs = [edit(json.loads(line)) for line in lines]
    (dst / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    cfg = json.loads((dst / "config.json").read_text())
    cfg["run_id"] = dst.name
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


def _row(table, explainer, metric, generator="cw-spectrogram", k=None):
    sel = table[(table["explainer"] == explainer) & (table["metric"] == metric)
                & (table["generator"] == generator)]
    if k is not None:
        sel = sel[sel["k"] == k]
    return sel.iloc[0]


def test_significant_difference_when_one_is_clearly_better(runs):
    result = compare(runs["good"], runs["bad"])
    t = result.table
    row = _row(t, "lime", "flip-rate")
    assert row["paired"] and row["test"] == "McNemar" and row["p"] < 0.05
    assert row["verdict"] == "A is better"
    assert "lime: FR(3) on cw-spectrogram is" in row["sentence"] and "A is better, p =" in row["sentence"]
    assert "McNemar, n = 15 paired cases" in row["sentence"]
    rec = _row(t, "lime", "recovery", "localized", k=3)
    assert rec["test"] == "paired cluster bootstrap" and rec["diff"] > 0 and rec["n"] == 4
    # 4 cases are too few clusters for a bootstrap: no interval and no p, said in words
    assert np.isnan(rec["p"]) and "95 % CI not available" in rec["sentence"]
    assert "p not available" in rec["sentence"]
    assert any("paired on the cases with the same content" in n for n in result.notes)
    own = _row(t, "lime", "fidelity", "localized", k=1)
    agn = _row(t, "lime", "agnostic-fidelity", "localized", k=1)
    assert own["value_a"] != agn["value_a"]  # the two fidelity sources are never mixed


def test_failed_explanations_count_as_no_flip(runs, tmp_path):
    failed_cases = []

    def fail(rec):
        if rec["explainer"] == "lime" and rec["generator"] == "cw-spectrogram" and rec["flip_at_k"][2]:
            failed_cases.append(rec["case_id"])
            return {k: v for k, v in rec.items() if k not in ("weights", "flip_at_k")} | \
                {"status": "failed", "error": "boom"}
        return rec

    edited = _edited(runs["good"], tmp_path / "failed", fail)
    row = _row(compare(runs["good"], edited).table, "lime", "flip-rate")
    m = len(failed_cases)
    assert m >= 5 and row["value_b"] == 0.0 and row["value_a"] == pytest.approx(m / 15)
    assert row["test"] == "McNemar"
    assert row["p"] == pytest.approx(2 * 0.5**m, abs=1e-15)  # m discordant cases, all for A


def test_shared_clusters_use_the_paired_cluster_bootstrap(runs, tmp_path):
    def song(rec):  # three attacked excerpts per song
        g, _, i = rec["case_id"].partition("/")
        return rec | {"cluster": f"song-{int(i) // 3}"} if g.startswith("cw-") else rec

    a = _edited(runs["good"], tmp_path / "a", song)
    b = _edited(runs["bad"], tmp_path / "b", song)
    row = _row(compare(a, b).table, "lime", "flip-rate")
    assert row["test"] == "paired cluster bootstrap" and row["n"] == 15 and row["n_clusters"] == 5
    assert "in 5 clusters" in row["sentence"]
    assert np.isnan(row["p"])  # five songs are too few for an honest bootstrap


def test_identical_runs_show_no_clear_difference(runs):
    table, sentences = compare(runs["good"], runs["good"])
    assert len(sentences) == len(table) > 0
    assert set(table["verdict"]) == {"no clear difference"}
    flips = table[table["metric"] == "flip-rate"]
    assert all("no clear difference (p = 1.00" in s for s in flips["sentence"])


def test_different_cases_fall_back_to_unpaired(runs):
    result = compare(runs["good"], runs["seed1"])
    assert not result.table["paired"].any()
    assert any("UNPAIRED" in n for n in result.notes)
    assert all("different cases in A and B" in s for s in result.sentences)
    assert "unpaired, Fisher exact" in set(result.table["test"])


def test_cli_compare(runs, capsys):
    assert cli_results.main(["compare", str(runs["good"]), str(runs["bad"])]) == 0
    out = capsys.readouterr().out
    assert out.startswith("A = good") and "A is better" in out
