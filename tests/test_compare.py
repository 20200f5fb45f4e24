"""Compare: paired tests on shared cases, 'no clear difference' for identical runs, unpaired fallback."""

from __future__ import annotations

import pytest

from explbench import cli_results
from explbench.compare import compare
from results_fixture import make_run

GOOD = {"lime": (4.0, False, True, 256), "random": (0.0, False, False, 0)}
BAD = {"lime": (0.0, False, True, 256), "random": (0.0, False, False, 0)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPLBENCH_CACHE", str(root / "cache"))
        yield {"good": make_run(root / "good", explainers=GOOD, run_id="good"),
               "bad": make_run(root / "bad", explainers=BAD, run_id="bad"),
               "seed1": make_run(root / "seed1", explainers=GOOD, seed=1, run_id="seed1")}


def test_significant_difference_when_one_is_clearly_better(runs):
    result = compare(runs["good"], runs["bad"])
    t = result.table
    row = t[(t["explainer"] == "lime") & (t["metric"] == "flip-rate") & (t["generator"] == "cw-spectrogram")].iloc[0]
    assert row["paired"] and row["test"] == "McNemar" and row["p"] < 0.05
    assert row["verdict"] == "A is better"
    assert "lime: FR(3) on cw-spectrogram is" in row["sentence"] and "A is better, p =" in row["sentence"]
    assert "McNemar, n = 15 paired cases" in row["sentence"]
    rec = t[(t["explainer"] == "lime") & (t["metric"] == "recovery") & (t["k"] == 3)].iloc[0]
    assert rec["test"] == "paired bootstrap" and rec["diff"] > 0
    assert any("paired on the shared cases" in n for n in result.notes)


def test_identical_runs_show_no_clear_difference(runs):
    table, sentences = compare(runs["good"], runs["good"])
    assert len(sentences) == len(table) > 0
    assert set(table["verdict"]) == {"no clear difference"}
    assert all("no clear difference (p = 1.00" in s for s in sentences)


def test_different_cases_fall_back_to_unpaired(runs):
    result = compare(runs["good"], runs["seed1"])
    assert not result.table["paired"].any()
    assert any("UNPAIRED" in n for n in result.notes)
    assert all("different cases in A and B" in s for s in result.sentences)


def test_cli_compare(runs, capsys):
    assert cli_results.main(["compare", str(runs["good"]), str(runs["bad"])]) == 0
    out = capsys.readouterr().out
    assert out.startswith("A = good") and "A is better" in out
