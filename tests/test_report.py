"""The HTML report: one self-contained file, escaped names, figures and audio; browser check."""

from __future__ import annotations

import html
import importlib.util
import os
import re
from pathlib import Path

import pytest

from explbench.report import write_report
from results_fixture import make_run

EVIL = "<script>alert(1)</script>"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPLBENCH_CACHE", str(root / "cache"))
        run = make_run(root / "run", run_id="run<b>", explainers={
            EVIL: (3.0, False, True, 256), "random": (0.0, False, False, 0),
            "oracle-norm": (None, True, False, 0)})
        before = set(os.listdir(run))
        path = write_report(run)
        yield {"run": run, "path": path, "new": set(os.listdir(run)) - before,
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


def test_figures_and_audio(report):
    text = report["text"]
    assert len(re.findall(r'<img src="data:image/png;base64,', text)) >= 3
    assert len(re.findall(r'<audio controls[^>]*src="data:audio/wav;base64,', text)) >= 3
    for section in ("Label-flip rate FR(k)", "Segment recovery", "Fidelity of correct and wrong",
                    "Per-case views"):
        assert section in text


def _browser_check():
    path = Path(__file__).resolve().parent.parent / "scripts" / "browser_check.py"
    spec = importlib.util.spec_from_file_location("browser_check", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(not os.path.exists(CHROMIUM),
                    reason="headless check needs Chromium at /usr/bin/chromium (apt-get install chromium)")
def test_opens_in_headless_chromium(report, tmp_path):
    shot = tmp_path / "report.png"
    result = _browser_check().check(report["path"], shot, CHROMIUM, timeout=90)
    assert result["ok"], result["problems"]
    assert len(result["audio"]) >= 3 and all(a["duration"] > 1.0 for a in result["audio"])
    assert shot.stat().st_size > 10_000
