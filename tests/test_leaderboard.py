"""Leaderboard: ranks by paired tests, oracles, unpaired runs, refusal of other configurations,
the files each format writes, and regeneration from a bundle without cases or WAVs."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from results_fixture import make_run

from explbench.cli import results as cli_results
from explbench.results import board as lb
from explbench.results import render
from explbench.store.runs import collect, load_run

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
    printed = capsys.readouterr().out
    # the fixture's suite is called "fixture": its board must not overwrite the default suite's
    names = ["svd-synth-fixture.md", "svd-synth-fixture-forest-cw-spectrogram.png",
             "svd-synth-fixture-forest-cw-waveform.png", "svd-synth-fixture.csv",
             "svd-synth-fixture-pairs.csv"]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    # stdout: the headline table (terminal view), then the paths written, never the whole board
    board = lb.make_board([load_run(runs["a"])])
    assert printed == render.headline_md(board) + "\n" + "".join(f"{out / n}\n" for n in names)
    assert "# Leaderboard" not in printed and "## Details" not in printed
    assert "| 1 | 1 | lime | 0.87 [0.60, 0.98] | 0.73 [0.45, 0.92] |" in printed
    md = (out / "svd-synth-fixture.md").read_text()
    assert md.startswith("# Leaderboard: svd-synth") and "Rank by FR(3)" in md
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
    assert not any(n.endswith((".md", ".png")) for n in names)
    if fmt_name == "csv":
        assert names == ["svd-synth-fixture-pairs.csv", "svd-synth-fixture.csv"]
        assert printed == f"{out / 'svd-synth-fixture.csv'}\n{out / 'svd-synth-fixture-pairs.csv'}\n"
    else:
        assert names == ["svd-synth-fixture.html"]
        # the path, never the page
        assert printed == f"{out / 'svd-synth-fixture.html'}\n"
        page = (out / "svd-synth-fixture.html").read_text()
        assert '<table class="heatmap"' in page and page.startswith("<!DOCTYPE html>")


def test_cli_rejects_unknown_format(runs, tmp_path, capsys):
    assert cli_results.main(["leaderboard", "--runs", str(runs["a"]), "--out-dir", str(tmp_path),
                             "--format", "pdf"]) == 2
    assert "--format 'pdf'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_default_suite_writes_the_task_board(runs, tmp_path):
    run = load_run(runs["a"])
    run.suite["name"] = "default"
    written = render.write(lb.make_board([run]), tmp_path)
    assert [p.name for p in written] == ["svd-synth.md", "svd-synth-forest-cw-spectrogram.png",
                                         "svd-synth-forest-cw-waveform.png", "svd-synth.csv",
                                         "svd-synth-pairs.csv"]


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
    assert "| 1 | 1 | lime |" in capsys.readouterr().out
    assert (tmp_path / "leaderboards" / "svd-synth-fixture.md").exists()
    assert (tmp_path / "leaderboards" / "svd-synth-fixture-forest-cw-spectrogram.png").exists()


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


# --------------------------------------------------------------------------- the board at a glance

FOUR = {"lime": (3.0, False, True, 256), "kernelshap": (3.0, False, False, 256),
        "occlusion": (1.0, False, False, 20), "random": (0.0, False, False, 0),
        "oracle-norm": (None, True, False, 0)}
EVIL = '<img src="http://example.invalid/x.png" onerror="alert(1)">'
PNG = b"\x89PNG\r\n\x1a\n"


def _refinish(folder: Path, change) -> Path:
    """Replace a fixture run's records by ``change(records)`` and aggregate it again."""
    from explbench.run.runner import finish
    from explbench.run.suite import SuiteConfig
    from explbench.store.run_store import RunStore

    store = RunStore(folder)
    records = change(store.records())
    store.records_path.unlink()
    store.append_many(records)
    conf = store.config()
    finish(store, SuiteConfig.from_dict(conf["suite"]), conf["run_id"])
    return folder


def _fail_three(records: list[dict]) -> list[dict]:
    """Three of lime's cw-spectrogram explanations failed."""
    chosen = [i for i, r in enumerate(records)
              if r["explainer"] == "lime" and r["generator"] == "cw-spectrogram"][:3]
    return [{**r, "status": "failed", "error": "boom"} if i in chosen else r
            for i, r in enumerate(records)]


@pytest.fixture(scope="module")
def glance(tmp_path_factory):
    root = tmp_path_factory.mktemp("glance")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPLBENCH_CACHE", str(root / "cache"))
        # lime-copy: lime's records under another name (the same explanations)
        twins = _refinish(make_run(root / "twins", run_id="twins"), lambda recs: recs + [
            {**r, "explainer": "lime-copy"} for r in recs if r["explainer"] == "lime"])
        four = make_run(root / "four", run_id="four", explainers=FOUR)
        # three of lime's cw-spectrogram explanations fail
        failing = _refinish(make_run(root / "failing", run_id="failing"), _fail_three)
        evil = make_run(root / "evil", run_id='run<b>"&', explainers={
            EVIL: (3.0, False, True, 256), "random": (0.0, False, False, 0),
            "oracle-norm": (None, True, False, 0)})
        yield {"twins": twins, "four": four, "failing": failing, "evil": evil}


def _metric(run, e, g, metric, k):
    m = run.metrics
    sel = m[(m["explainer"] == e) & (m["generator"] == g) & (m["metric"] == metric)
            & (m["direction"] == "all") & (m["k"] == k)]
    assert len(sel) == 1
    r = sel.iloc[0]
    return f"{r['value']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"


def test_headline_columns_and_numbers_come_from_metrics_csv(runs):
    run = load_run(runs["a"])
    board = lb.make_board([run])
    h = board.headline_table
    assert list(h.columns) == [
        "rank cw-spectrogram", "rank cw-waveform", "explainer", "FR(3) cw-spectrogram ↑",
        "FR(3) cw-waveform ↑", "rec@3 localized ↑", "beats random cw-spectrogram",
        "beats random cw-waveform", "failed ↓", "queries ↓", "s/expl ↓"]
    assert list(h["explainer"]) == ["lime", "random", "oracle-norm"]
    lime = h.set_index("explainer").loc["lime"]
    assert lime["FR(3) cw-spectrogram ↑"] == "0.87 [0.60, 0.98]" \
        == _metric(run, "lime", "cw-spectrogram", "flip-rate", 3)
    assert lime["FR(3) cw-waveform ↑"] == "0.73 [0.45, 0.92]" \
        == _metric(run, "lime", "cw-waveform", "flip-rate", 3)
    assert lime["rec@3 localized ↑"] == _metric(run, "lime", "localized", "recovery", 3)
    assert (lime["beats random cw-spectrogram"], lime["beats random cw-waveform"]) == ("yes", "yes")
    assert lime["failed ↓"] == "0.00 (0/44)"  # 15 + 15 + 14 localised cases
    assert lime["queries ↓"] == "256"
    ok = run.records[(run.records["explainer"] == "lime") & (run.records["status"] == "ok")]
    assert lime["s/expl ↓"] == f"{ok['seconds'].mean():.3f}"  # timing.csv, n-weighted
    row = h.set_index("explainer").loc["oracle-norm"]
    assert (row["rank cw-spectrogram"], row["rank cw-waveform"]) == ("oracle", "oracle")
    assert row["queries ↓"] == "0" and row["beats random cw-spectrogram"] == "–"
    # every other column is in the details, and the details keep today's columns
    assert "FR(3) cw-spectrogram [no-voice-to-voice] ↑" in board.table.columns
    assert "FR(3) cw-spectrogram [no-voice-to-voice] ↑" not in h.columns
    assert len(board.table.columns) == 24


def test_failures_are_read_from_the_failure_rate_metric(glance):
    board = lb.make_board([load_run(glance["failing"])])
    lime = board.headline_table.set_index("explainer").loc["lime"]
    assert lime["failed ↓"] == "0.07 (3/44)"
    assert board.table.set_index("explainer").loc["lime", "failed ↓"] == "0.07 (3/44)"
    assert lime["queries ↓"] == "256"  # the mean over the 41 successful explanations


def test_the_headline_is_the_first_table_of_the_board(runs):
    board = lb.make_board([load_run(runs["a"])])
    md = render.to_md(board)
    first = next(line for line in md.splitlines() if line.startswith("|"))
    assert first == render.to_markdown(board.headline_table).splitlines()[0]
    assert md.index("## Headline") < md.index("## FR(3) per attack generator") < md.index("## Details")
    page = render.to_html(board)
    assert page.index('<table class="leaderboard headline">') < page.index('<table class="leaderboard">') \
        < page.index('<table class="heatmap"')


def test_rank_intervals_replace_shared_ranks(glance):
    board = lb.make_board([load_run(glance["four"])])
    h = board.headline_table.set_index("explainer")
    # cw-spectrogram: only lime > random is significant -> lime 1..(4-1), random (1+1)..4
    assert dict(h["rank cw-spectrogram"]) == {"lime": "1–3", "kernelshap": "1–4", "occlusion": "1–4",
                                              "random": "2–4", "oracle-norm": "oracle"}
    # cw-waveform: lime > random and kernelshap > random
    assert dict(h["rank cw-waveform"]) == {"lime": "1–3", "kernelshap": "1–3", "occlusion": "1–4",
                                           "random": "3–4", "oracle-norm": "oracle"}
    assert list(h.index) == ["lime", "kernelshap", "occlusion", "random", "oracle-norm"]
    # the same numbers from the pairs table: best = 1 + #better, worst = m - #worse
    pairs = board.pairs()
    for g in ("cw-spectrogram", "cw-waveform"):
        p = pairs[pairs["generator"] == g]
        names = sorted(set(p["a"]) | set(p["b"]))
        for e in names:
            mine = p[(p["a"] == e) | (p["b"] == e)]
            wins = int((mine["better"] == e).sum())
            losses = int(((mine["better"] != e) & (mine["better"] != "")).sum())
            want = (1 + losses, len(names) - wins)
            text = h.loc[e, f"rank {g}"]
            assert text == (str(want[0]) if want[0] == want[1] else f"{want[0]}–{want[1]}"), (g, e)
    assert not any(str(r).startswith("=") for r in board.table["rank"])
    assert dict(zip(board.numeric["explainer"], board.numeric["rank"]))["random"] == "2–4"
    assert "rank interval runs from 1 + the number of explainers significantly better" in lb.rule_text(board)


def test_identical_explainers_are_shown_once_with_both_names(glance, tmp_path):
    board = lb.make_board([load_run(glance["twins"])])
    assert board.groups == [["lime", "lime-copy"], ["random"], ["oracle-norm"]]
    h = board.headline_table
    assert list(h["explainer"]) == ["lime = lime-copy", "random", "oracle-norm"]
    row = h.set_index("explainer").loc["lime = lime-copy"]
    # two tied explainers above random: ranks 1-2 on cw-spectrogram, random 3
    assert (row["rank cw-spectrogram"], row["FR(3) cw-spectrogram ↑"]) == ("1–2", "0.87 [0.60, 0.98]")
    assert h.set_index("explainer").loc["random", "rank cw-spectrogram"] == "3"
    assert list(board.table["explainer"]) == ["lime = lime-copy", "random", "oracle-norm"]
    assert "identical" in lb.rule_text(board) and "the CSV keeps every row" in lb.rule_text(board)
    # the CSV keeps both, value for value
    num = board.numeric
    a = num[num["explainer"] == "lime"].drop(columns=["explainer"]).reset_index(drop=True)
    b = num[num["explainer"] == "lime-copy"].drop(columns=["explainer"]).reset_index(drop=True)
    assert len(a) == len(b) == 18
    pd.testing.assert_series_equal(a["value"], b["value"])
    # the forest plot has one row for the pair
    from explbench.results.headline import forest_rows

    rows = forest_rows(board.metrics(), board.groups, "cw-spectrogram", board.oracles())
    assert [(r.label, r.kind, round(r.value, 4)) for r in rows] == [
        ("lime = lime-copy", "explainer", 0.8667), ("random", "floor", 0.0667),
        ("oracle-norm", "ceiling", 0.9333)]
    md = render.to_md(board)
    assert "| lime = lime-copy |" in md and "| lime |" not in md


def test_explainers_with_equal_settings_but_other_explanations_are_not_merged(glance):
    board = lb.make_board([load_run(glance["four"])])  # lime and kernelshap: the same quality
    assert all(len(g) == 1 for g in board.groups) and board.merged == []
    assert "identical" not in lb.rule_text(board)


def test_a_forest_plot_per_attack_generator_is_written_and_linked(runs, tmp_path):
    board = lb.make_board([load_run(runs["a"])])
    written = render.write(board, tmp_path / "one", ("md", "html"))
    render.write(lb.make_board([load_run(runs["a"])]), tmp_path / "two", ("md",))  # a fresh board
    pngs = [p for p in written if p.suffix == ".png"]
    assert [p.name for p in pngs] == ["svd-synth-fixture-forest-cw-spectrogram.png",
                                      "svd-synth-fixture-forest-cw-waveform.png"]
    for p in pngs:
        data = p.read_bytes()
        assert data[:8] == PNG and len(data) > 5000
        assert data == (tmp_path / "two" / p.name).read_bytes()  # byte-stable
    md = (tmp_path / "one" / "svd-synth-fixture.md").read_text()
    assert "![svd-synth: FR(3) on cw-spectrogram, 95 % intervals](svd-synth-fixture-forest-cw-spectrogram.png)" in md
    page = (tmp_path / "one" / "svd-synth-fixture.html").read_text()
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    import base64

    assert [base64.b64decode(u) for u in uris] == [p.read_bytes() for p in pngs]
    assert "forest" not in "".join(p.name for p in render.write(board, tmp_path / "csv", ("csv",)))


def test_user_names_are_escaped_in_html_and_markdown(glance):
    board = lb.make_board([load_run(glance["evil"])])
    page = render.to_html(board)
    assert EVIL not in page and "<b>" not in page.replace("<b>Configuration:</b>", "") \
        .replace("<p><b>", "").replace("</b></p>", "")
    assert html.escape(EVIL) in page and "run&lt;b&gt;&quot;&amp;" in page
    md = render.to_md(board)
    assert EVIL not in md and html.escape(EVIL, quote=False) in md
    assert "`run<b>\"&`" in md  # a code span shows it as text
