"""Every committed board (Markdown, CSVs and forest-plot PNGs) regenerates byte for byte from its
committed bundle, as on a fresh clone.

A bundle holds config, provenance, cases.json, records, metrics and timing, no cases or WAVs;
the cache is pointed at an empty folder so nothing else can be read.
"""

from pathlib import Path

import pytest

from explbench.cli import results as cli_results

REPO = Path(__file__).resolve().parents[1]
BOARDS = {  # bundle -> (task, stem of the board files)
    "svd-synth-default": ("svd-synth", "svd-synth"),
    "svd-synth-paper": ("svd-synth", "svd-synth-paper"),
    "vad-silero-default": ("vad-silero", "vad-silero"),
}


def _bundle(name: str) -> Path:
    folder = REPO / "leaderboards" / "runs" / name
    if not (folder / "metrics.csv").exists():
        pytest.skip(f"{folder} is not in this checkout")
    return folder


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_a_committed_board_regenerates_from_its_bundle(name, tmp_path, monkeypatch, capsys):
    task, stem = BOARDS[name]
    monkeypatch.setenv("EXPLBENCH_CACHE", str(tmp_path / "empty-cache"))
    assert cli_results.main(["leaderboard", "--task", task, "--runs", str(_bundle(name)),
                             "--out-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    for suffix in (".md", ".csv", "-pairs.csv"):
        committed = REPO / "leaderboards" / f"{stem}{suffix}"
        assert (tmp_path / f"{stem}{suffix}").read_bytes() == committed.read_bytes(), committed.name
    # the forest plots the board links, one per attack generator, byte for byte as well
    made = sorted(p.name for p in tmp_path.glob(f"{stem}-forest-*.png"))
    committed = sorted(p.name for p in (REPO / "leaderboards").glob(f"{stem}-forest-*.png"))
    assert made, f"no forest plot was written for {stem}"
    assert made == committed, f"forest plots written {made}, committed {committed}"
    for png in made:
        assert (tmp_path / png).read_bytes() == (REPO / "leaderboards" / png).read_bytes(), png


def test_the_paper_replication_regenerates_from_its_bundle(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EXPLBENCH_CACHE", str(tmp_path / "empty-cache"))
    out = tmp_path / "replication.md"
    assert cli_results.main(["replication", str(_bundle("svd-synth-paper")), "--out", str(out)]) == 0
    capsys.readouterr()
    assert out.read_bytes() == (REPO / "leaderboards" / "svd-synth-paper-replication.md").read_bytes()
