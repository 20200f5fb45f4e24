"""The HTML board opens in headless Chromium: no console error, no network request (the forest
plots are data URIs), every image decodes, and names a user chose cannot inject markup.

Skipped when /usr/bin/chromium is missing, unless ``EXPLBENCH_REQUIRE_BROWSER=1`` (CI), where a
missing browser is a failure.
"""

from __future__ import annotations

import io
import struct
from contextlib import redirect_stdout

import pytest
from results_fixture import make_run

from explbench.cli import results as cli_results

import browser
from browser import REQUIRE, chromium
from browser import browser_check as _browser_check
#: an explainer name that loads an image from the network, and runs script, if not escaped
EVIL = '<img src="http://example.invalid/x.png" onerror="console.error(\'injected\')">'


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """``explbench leaderboard --format html`` on a run with a hostile explainer name and run id."""
    root = tmp_path_factory.mktemp("board-browser")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPLBENCH_CACHE", str(root / "cache"))
        run = make_run(root / "run", run_id='run<b>"&', explainers={
            EVIL: (3.0, False, True, 256), "random": (0.0, False, False, 0),
            "oracle-norm": (None, True, False, 0)})
        out = root / "board"
        buf = io.StringIO()
        with redirect_stdout(buf):
            assert cli_results.main(["leaderboard", "--runs", str(run), "--out-dir", str(out),
                                     "--format", "html"]) == 0
        yield {"path": out / "svd-synth-fixture.html", "printed": buf.getvalue(), "root": root}


def test_html_format_prints_only_the_path(page):
    assert page["printed"] == f"{page['path']}\n"
    assert page["path"].stat().st_size > 20_000  # two forest plots embedded


def test_the_board_opens_in_headless_chromium(page, tmp_path):
    exe = chromium()
    shot = tmp_path / "board.png"
    result = _browser_check().check(page["path"], shot, exe, timeout=90)
    assert result["ok"], result["problems"]
    assert result["requests"] == [] and result["console_errors"] == []
    # the two forest plots (cw-spectrogram, cw-waveform), decoded, and no injected <img>
    assert len(result["images"]) == 2, result["images"]
    assert all(i["ok"] and i["src"].startswith("data:image/png") for i in result["images"])
    data = shot.read_bytes()
    width, height = struct.unpack(">II", data[16:24])
    assert width == 1280 and height > 1500, (width, height)


def test_a_missing_browser_skips_unless_required(monkeypatch, tmp_path):
    monkeypatch.setattr(browser, "CHROMIUM", str(tmp_path / "no-chromium"))
    monkeypatch.delenv(REQUIRE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        chromium()
    monkeypatch.setenv(REQUIRE, "1")
    with pytest.raises(pytest.fail.Exception, match="EXPLBENCH_REQUIRE_BROWSER=1 but there is no Chromium"):
        chromium()
