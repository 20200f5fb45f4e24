"""Leaderboard: ranks by paired tests, oracles, unpaired runs, refusal of other configurations,
the files each format writes, and regeneration from a bundle without cases or WAVs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from explbench.cli import results as cli_results
from explbench.results import board as lb
from explbench.results import render
from explbench.store.runs import collect, load_run
from results_fixture import make_run

REPO = Path(__file__).resolve().parent.parent
ZERO_WIDTH = re.compile(r"\[(-?\d+\.\d+), \1\]")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lb")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPLBENCH_CACHE", str(root / "cache"))
        a = make_run(root / "runs" / "a", run_id="a")
        b = make_run(root / "runs" / "b", run_id="b",
                     explainers={"lime": (0.0, False, True, 256), "occlusion": (2.0, False, False, 20)})
        other = make_run(root / "other" / "grid44", run_id="grid44", segmentation="grid:4x4")
        seed1 = make_run(root / "seeds" / "s1", run_id="s1", seed=1,
                         explainers={"occlusion": (2.0, False, False, 20)})
        # b is the newer run
        old = time.time() - 100
        os.utime(a / "metrics.csv", (old, old))
        yield {"root": root, "a": a, "b": b, "other": other, "seed1": seed1}


def test_board_of_one_run_ranks_by_paired_tests(runs):
    board = lb.make_board([load_run(runs["a"])])
    t = board.table
    rank = dict(zip(t["explainer"], t["rank"]))
    assert rank == {"lime": "1", "random": "2", "oracle-norm": "oracle"}
    assert list(t["explainer"]) == ["lime", "random", "oracle-norm"]
    row = t.set_index("explainer").loc["lime"]
    assert row["better than"] == "random" and row["beats random"] == "yes"
    assert t.set_index("explainer").loc["random", "better than"] == "none"
    assert "FR(3) cw-spectrogram ↑" in t.columns and "queries ↓" in t.columns
    assert "FR(3) cw-spectrogram [no-voice-to-voice] ↑" in t.columns
    for col in ("rec@3 localized ↑", "fid-AUC localized ↑", "agn-fid-AUC localized ↑", "failed ↓",
                "s/expl ↓", "n", "n_clusters", "rank cw-waveform"):
        assert col in t.columns
    assert row["failed ↓"] == "0.00 (0/44)"
    assert row["n"] == "15" and row["n_clusters"] == "15"
    assert "[" in row["FR(3) cw-spectrogram ↑"]  # every value carries its interval
    # the fixture's lime flips where random does not: McNemar on the 15 shared cases
    test = board.rankings["cw-spectrogram"].test("lime", "random")
    assert test.test == "McNemar" and test.paired and test.n == 15 and test.p_holm < 0.05


def test_no_zero_width_interval_is_printed(runs):
    board = lb.make_board(collect(runs["root"] / "runs"))
    text = render.to_md(board)
    assert not ZERO_WIDTH.search(text), ZERO_WIDTH.search(text).group(0)
    assert "queries" in text and "| 256 |" in text  # a constant cost is shown bare


def test_fmt_never_prints_zero_width():
    assert lb.fmt(0.0, 0.0, 0.19) == "0.00 [0.00, 0.19]"
    assert lb.fmt(0.5, float("nan"), float("nan")) == "0.50 (n too small)"
    assert lb.fmt(1.0, 1.0, 1.0) == "1.00 (no interval)"
    assert lb.fmt(float("nan")) == "–"


def test_newest_run_supplies_an_explainer(runs):
    table = lb.build(collect(runs["root"] / "runs"))
    src = dict(zip(table["explainer"], table["run"]))
    assert src["lime"] == "b"  # in both runs: the newer one wins
    assert src["random"] == "a" and src["occlusion"] == "b"


def test_same_cases_from_two_runs_are_paired(runs):
    board = lb.make_board(collect(runs["root"] / "runs"))  # a and b share the seed: same case keys
    assert all(t.paired for t in board.rankings["cw-spectrogram"].tests)
    assert lb.unpaired_text(board) is None


def test_runs_with_different_cases_are_compared_unpaired_and_flagged(runs):
    board = lb.make_board([load_run(runs["a"]), load_run(runs["seed1"])])
    h = board.rankings["cw-spectrogram"]
    t = h.test("occlusion", "random")
    assert not t.paired and t.test == "unpaired, Fisher exact"
    assert h.test("lime", "random").paired  # both from run a
    md = render.to_md(board)
    assert "Compared UNPAIRED" in md and "occlusion vs random" in md
    assert "(unpaired)" in " ".join(board.table["better than"])


def test_header_states_power_and_cluster_counts(runs):
    md = render.to_md(lb.make_board([load_run(runs["a"])]))
    assert "minimum detectable difference" in md
    assert "cw-spectrogram: n = 15, n_clusters = 15" in md
    assert "paired tests" in md and "Holm" in md
    assert "CI lies entirely above" not in md  # the marginal-interval rule is gone


def test_refuses_other_segmentation(runs):
    a, other = load_run(runs["a"]), load_run(runs["other"])
    with pytest.raises(lb.IncompatibleRuns) as err:
        lb.build([a, other])
    assert "segmentation: grid:5x4 vs grid:4x4" in str(err.value)
    assert "grid44" in str(err.value)


def test_cli_default_writes_the_board_files(runs, tmp_path, capsys):
    out = tmp_path / "boards"
    assert cli_results.main(["leaderboard", "--runs", str(runs["a"]), "--out-dir", str(out)]) == 0
    md = capsys.readouterr().out
    assert md.startswith("# Leaderboard: svd-synth") and "Rank by FR(3)" in md
    assert "| 1 | lime | random | yes |" in md and "| oracle | oracle-norm |" in md
    # the fixture's suite is called "fixture": its board must not overwrite the default suite's
    assert sorted(p.name for p in out.iterdir()) == ["svd-synth-fixture-pairs.csv",
                                                      "svd-synth-fixture.csv", "svd-synth-fixture.md"]
    assert (out / "svd-synth-fixture.md").read_text().strip() == md.strip()
    csv = pd.read_csv(out / "svd-synth-fixture.csv")
    assert list(csv.columns) == ["rank", "explainer", "oracle", "run_id", "generator", "direction",
                                 "metric", "k", "value", "ci_low", "ci_high", "n", "n_clusters"]
    pairs = pd.read_csv(out / "svd-synth-fixture-pairs.csv")
    assert {"a", "b", "diff", "p", "p_holm", "test", "better"} <= set(pairs.columns)
    assert set(pairs["generator"]) == {"cw-spectrogram", "cw-waveform"}


@pytest.mark.parametrize("fmt_name", ["csv", "html"])
def test_cli_format_writes_only_what_was_asked(runs, tmp_path, capsys, monkeypatch, fmt_name):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out = tmp_path / "boards"
    assert cli_results.main(["leaderboard", "--runs", str(runs["a"]), "--out-dir", str(out),
                             "--format", fmt_name]) == 0
    printed = capsys.readouterr().out
    assert list(cwd.iterdir()) == []  # nothing in the current directory
    names = sorted(p.name for p in out.iterdir())
    assert not any(n.endswith(".md") for n in names)
    if fmt_name == "csv":
        assert names == ["svd-synth-fixture-pairs.csv", "svd-synth-fixture.csv"]
        assert printed.startswith("rank,explainer,oracle")
    else:
        assert names == ["svd-synth-fixture.html"]
        assert '<table class="heatmap"' in printed and "<table" in printed


def test_cli_rejects_unknown_format(runs, tmp_path, capsys):
    assert cli_results.main(["leaderboard", "--runs", str(runs["a"]), "--out-dir", str(tmp_path),
                             "--format", "pdf"]) == 2
    assert "--format 'pdf'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_default_suite_writes_the_task_board(runs, tmp_path):
    run = load_run(runs["a"])
    run.suite["name"] = "default"
    written = render.write(lb.make_board([run]), tmp_path)
    assert [p.name for p in written] == ["svd-synth.md", "svd-synth.csv", "svd-synth-pairs.csv"]


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
    folder = tmp_path / "copy"
    shutil.copytree(runs["a"], folder)
    prov = json.loads((folder / "provenance.json").read_text())
    prov["finished_at"] = "2020-01-02T03:04:05+00:00"
    (folder / "provenance.json").write_text(json.dumps(prov))
    os.utime(folder / "metrics.csv", (2e9, 2e9))  # a checkout gives files arbitrary dates
    assert load_run(folder).finished == pytest.approx(1577934245.0)


def test_regenerates_from_a_bundle_without_cases_or_wavs(runs, tmp_path, capsys, monkeypatch):
    """What a fresh clone holds: config, provenance, cases.json, records, metrics, timing."""
    bundle = tmp_path / "leaderboards" / "runs" / "svd-synth-default"
    bundle.mkdir(parents=True)
    for name in ("config.json", "provenance.json", "cases.json", "records.jsonl", "metrics.csv",
                 "timing.csv"):
        shutil.copy(runs["a"] / name, bundle / name)
    monkeypatch.setenv("EXPLBENCH_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.chdir(tmp_path)
    assert cli_results.main(["leaderboard", "--task", "svd-synth", "--runs",
                             "leaderboards/runs/svd-synth-default"]) == 0
    assert "| 1 | lime |" in capsys.readouterr().out
    assert (tmp_path / "leaderboards" / "svd-synth-fixture.md").exists()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_gitignore_keeps_the_committed_bundle():
    def ignored(path: str) -> bool:
        r = subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=REPO)
        return r.returncode == 0

    assert ignored("runs/smoke-1/config.json")
    for name in ("config.json", "provenance.json", "cases.json", "records.jsonl", "records.jsonl.gz",
                 "metrics.csv", "timing.csv"):
        assert not ignored(f"leaderboards/runs/svd-synth-default/{name}"), name
    assert ignored("leaderboards/runs/svd-synth-default/explanations/c/lime.wav")
    assert ignored("leaderboards/runs/svd-synth-default/cases/0123abcd.npz")
