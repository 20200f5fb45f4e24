"""The HTML report: one self-contained file, escaped names, heat map, sanity table, figures and
audio built from the run folder alone; the figure fixes; browser check."""

from __future__ import annotations

import html
import os
import re
import shutil

import matplotlib.pyplot as plt
import numpy as np
import pytest

from explbench.cli import results as cli_results
from explbench.results.report import figures, write_report
from explbench.store.runs import load_run
from browser import browser_check, chromium
from results_fixture import make_run

EVIL = "<script>alert(1)</script>"
SANITY = ("explainer,layer,rho,ci_low,ci_high,n\n"
          f"\"{EVIL}\",none,1,,,8\n\"{EVIL}\",fc3,0.41,0.2,0.6,8\n"
          "random,none,1,,,8\nrandom,fc3,0.02,-0.2,0.25,8\n")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPLBENCH_CACHE", str(root / "cache"))
        run = make_run(root / "run", run_id="run<b>", explainers={
            EVIL: (3.0, False, True, 256), "random": (0.0, False, False, 0),
            "oracle-norm": (None, True, False, 0)})
        (run / "sanity.csv").write_text(SANITY)
        before = set(os.listdir(run))
        path = write_report(run)
        yield {"root": root, "run": run, "path": path, "new": set(os.listdir(run)) - before,
               "text": path.read_text(encoding="utf-8")}


def test_one_self_contained_file(report):
    assert report["path"] == report["run"] / "report.html"
    assert report["new"] == {"report.html"}
    text = report["text"]
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text.replace(html.escape(EVIL), "")
    assert report["path"].stat().st_size < 8e6


def test_names_are_escaped(report):
    text = report["text"]
    assert EVIL not in text
    assert html.escape(EVIL) in text
    assert "run&lt;b&gt;" in text and "run<b>" not in text


def test_heat_map_of_pairwise_tests(report):
    text = report["text"]
    maps = re.findall(r'<table class="heatmap" data-generator="([^"]+)">(.*?)</table>', text, re.S)
    assert [g for g, _ in maps] == ["cw-spectrogram", "cw-waveform"]
    body = maps[0][1]
    assert html.escape(EVIL) in body and "oracle-norm" not in body  # oracles are never compared
    cells = re.findall(r'<td style="background:#[0-9a-f]{6}[^"]*" title="([^"]*)">([^<]*)<br><small>([^<]*)</small>', body)
    assert len(cells) == 2  # two explainers: the pair, once each way
    effects = sorted(float(c[1]) for c in cells)
    assert effects[0] == -effects[1] and effects[1] > 0
    assert all(c[2].startswith("p") for c in cells)
    assert "Holm-adjusted" in text


def test_sanity_table_when_sanity_csv_exists(report):
    text = report["text"]
    assert "Model-randomisation sanity check" in text
    block = text.split("Model-randomisation sanity check", 1)[1].split("<h2>", 1)[0]
    assert "<th>fc3</th>" in block and "0.41 [0.20, 0.60]" in block and "1.00 (n too small)" in block
    assert html.escape(EVIL) in block


def test_reading_the_numbers(report):
    text = report["text"]
    for phrase in ("Reading the numbers", "Why the oracle can score below LIME", "n, n_clusters",
                   "<dt>–</dt>", "Attack statistics", "minimum detectable difference",
                   "label-flip rate FR(k) with the explainer"):
        assert phrase in text, phrase
    assert "15 cases, 15 clusters" in text


def test_figures_and_audio(report):
    text = report["text"]
    assert len(re.findall(r'<img src="data:image/png;base64,', text)) >= 3
    assert len(re.findall(r'<audio controls[^>]*src="data:audio/wav;base64,', text)) >= 3
    for section in ("Label-flip rate FR(k)", "Segment recovery", "Fidelity of correct and wrong",
                    "Per-case views"):
        assert section in text


def test_case_views_come_from_the_run_folder(report, tmp_path, monkeypatch):
    run = tmp_path / "sent"
    shutil.copytree(report["run"], run)
    (run / "cases").mkdir()
    for v in load_run(run).cases.values():
        shutil.copy(report["root"] / "cache" / "cases" / f"{v['cache_key']}.npz", run / "cases")
    monkeypatch.setenv("EXPLBENCH_CACHE", str(tmp_path / "colleague-cache"))  # empty
    text = write_report(run).read_text(encoding="utf-8")
    assert len(re.findall(r'<audio controls[^>]*src="data:audio/wav;base64,', text)) >= 3
    assert "neither in the run folder" not in text
    shutil.rmtree(run / "cases")
    text = write_report(run).read_text(encoding="utf-8")
    assert "neither in the run folder" in text and "<audio" not in text


def test_fr_legend_names_the_norm_reference_once(report):
    run = load_run(report["run"])
    fig = figures.fr_curves(run.metrics, ["cw-spectrogram"], run.oracles)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    plt.close(fig)
    # oracle-norm is the norm reference: one legend entry for both, not two
    assert sum("oracle-norm" in lab for lab in labels) == 1, labels
    assert sum("energy of δ" in lab for lab in labels) == 1, labels


def test_histogram_bars_are_centred_on_their_ticks(report):
    fig = figures.recovery_histograms(load_run(report["run"]).metrics, ["localized"])
    checked = 0
    for ax in fig.axes:
        centres = np.array([p.get_x() + p.get_width() / 2 for p in ax.patches])
        for j in np.unique(np.round(centres)):
            group = centres[np.round(centres) == j]
            assert group.size == 3  # one bar per explainer
            assert group.mean() == pytest.approx(j, abs=1e-9)
            checked += 1
    plt.close(fig)
    assert checked == (1 + 1) + (3 + 1) + (5 + 1)  # j = 0..k for k = 1, 3, 5


def test_report_loads_plugins(report, tmp_path, monkeypatch, capsys):
    sentinel = tmp_path / "loaded"
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text(f"from pathlib import Path\nPath({str(sentinel)!r}).write_text('yes')\n")
    out = tmp_path / "r.html"
    assert cli_results.main(["report", str(report["run"]), "--plugin", str(plugin),
                             "--out", str(out)]) == 0
    assert sentinel.read_text() == "yes" and out.exists()
    bad = tmp_path / "bad_plugin.py"
    bad.write_text("raise RuntimeError('nope')\n")
    assert cli_results.main(["report", str(report["run"]), "--plugin", str(bad)]) == 2
    assert "bad_plugin.py" in capsys.readouterr().err


def test_opens_in_headless_chromium(report, tmp_path):
    shot = tmp_path / "report.png"
    result = browser_check().check(report["path"], shot, chromium(), timeout=90)
    assert result["ok"], result["problems"]
    assert len(result["audio"]) >= 3 and all(a["duration"] > 1.0 for a in result["audio"])
    assert shot.stat().st_size > 10_000
