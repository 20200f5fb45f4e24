"""Leaderboard: ranks with intervals, ties, oracles, refusal of other configurations, output."""

from __future__ import annotations

import json

import os
import time

import pandas as pd
import pytest

from explbench import cli_results
from explbench import leaderboard as lb
from results_fixture import make_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lb")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPLBENCH_CACHE", str(root / "cache"))
        a = make_run(root / "runs" / "a", run_id="a")
        b = make_run(root / "runs" / "b", run_id="b",
                     explainers={"lime": (0.0, False, True, 256), "occlusion": (2.0, False, False, 20)})
        other = make_run(root / "other" / "grid44", run_id="grid44", segmentation="grid:4x4")
        # b is the newer run
        old = time.time() - 100
        os.utime(a / "metrics.csv", (old, old))
        yield {"root": root, "a": a, "b": b, "other": other}


def _values(rows):
    return pd.DataFrame(rows, columns=["explainer", "oracle", "value", "ci_low", "ci_high"])


def test_ranks_only_when_intervals_separate():
    v = _values([("best", False, 0.9, 0.85, 0.95), ("close", False, 0.8, 0.7, 0.86),
                 ("low", False, 0.3, 0.2, 0.4), ("oracle-norm", True, 0.99, 0.98, 1.0),
                 ("none", False, float("nan"), float("nan"), float("nan"))])
    r = lb.ranks(v)
    assert r["best"] == "=1" and r["close"] == "=1"  # overlapping intervals share the rank
    assert r["low"] == "3"  # two explainers lie entirely above it
    assert r["oracle-norm"] == "oracle"
    assert r["none"] == "–"


def test_separated_intervals_get_distinct_ranks():
    v = _values([("a", False, 0.9, 0.85, 0.95), ("b", False, 0.6, 0.5, 0.7), ("c", False, 0.2, 0.1, 0.3)])
    assert lb.ranks(v) == {"a": "1", "b": "2", "c": "3"}


def test_build_from_a_run(runs):
    run = lb.load_run(runs["a"])
    table = lb.build([run])
    rank = dict(zip(table["explainer"], table["rank"]))
    assert rank == {"lime": "1", "random": "2", "oracle-norm": "oracle"}
    assert list(table["explainer"])[-1] == "oracle-norm"
    cols = " ".join(table.columns)
    assert "FR(3) cw-spectrogram ↑" in table.columns and "queries ↓" in table.columns
    assert "FR(3) cw-spectrogram [no-voice-to-voice] ↑" in table.columns
    assert "rec@3 localized ↑" in cols and "fid-AUC localized ↑" in cols and "s/expl ↓" in cols
    assert "[" in table.loc[0, "FR(3) cw-spectrogram ↑"]  # every value carries its interval


def test_newest_run_supplies_an_explainer(runs):
    both = lb.collect(runs["root"] / "runs")
    table = lb.build(both)
    src = dict(zip(table["explainer"], table["run"]))
    assert src["lime"] == "b"  # in both runs: the newer one wins
    assert src["random"] == "a" and src["occlusion"] == "b"


def test_refuses_other_segmentation(runs):
    a, other = lb.load_run(runs["a"]), lb.load_run(runs["other"])
    with pytest.raises(lb.IncompatibleRuns) as err:
        lb.build([a, other])
    assert "segmentation: grid:5x4 vs grid:4x4" in str(err.value)
    assert "grid44" in str(err.value)


def test_cli_writes_md_and_csv(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EXPLBENCH_CACHE", str(runs["root"] / "cache"))
    out = tmp_path / "boards"
    assert cli_results.main(["leaderboard", "--runs", str(runs["a"]), "--out-dir", str(out)]) == 0
    md = capsys.readouterr().out
    assert md.startswith("# Leaderboard: svd-synth") and "Rank by FR(3)" in md
    assert "| 1 | lime |" in md and "| oracle | oracle-norm |" in md
    # the fixture's suite is called "fixture": its board must not overwrite the default suite's
    assert (out / "svd-synth-fixture.md").read_text().strip() == md.strip()
    assert not (out / "svd-synth.md").exists()
    csv = pd.read_csv(out / "svd-synth-fixture.csv")
    assert {"rank", "explainer", "metric", "value", "ci_low", "ci_high", "n"} <= set(csv.columns)
    assert cli_results.main(["leaderboard", "--runs", str(runs["a"]), "--out-dir", str(out),
                             "--format", "html"]) == 0
    assert "<table" in capsys.readouterr().out


def test_default_suite_writes_the_task_board(runs, tmp_path):
    run = lb.load_run(runs["a"])
    run.suite["name"] = "default"
    md, csv = lb.write([run], tmp_path)
    assert (md.name, csv.name) == ("svd-synth.md", "svd-synth.csv")


def test_cli_refuses_named_run_of_other_configuration(runs, tmp_path, capsys):
    rc = cli_results.main(["leaderboard", "--runs", str(runs["a"]), str(runs["other"]),
                           "--out-dir", str(tmp_path)])
    assert rc == 2
    assert "segmentation: grid:5x4 vs grid:4x4" in capsys.readouterr().err


def test_cli_errors(runs, tmp_path, capsys):
    assert cli_results.main(["leaderboard", "--runs", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text((runs["a"] / "config.json").read_text())
    assert cli_results.main(["report", str(unfinished)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert cli_results.main(["leaderboard", "--runs", str(runs["a"]), "--task", "nope"]) == 2
    assert "no finished runs of task 'nope'" in capsys.readouterr().err


def test_newest_run_is_told_by_recorded_finish_time_not_file_dates(runs, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(runs["a"], folder)
    prov = json.loads((folder / "provenance.json").read_text())
    prov["finished_at"] = "2020-01-02T03:04:05+00:00"
    (folder / "provenance.json").write_text(json.dumps(prov))
    os.utime(folder / "metrics.csv", (2e9, 2e9))  # a checkout gives files arbitrary dates
    assert lb.load_run(folder).finished == pytest.approx(1577934245.0)
