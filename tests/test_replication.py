"""The replication section: the paper's quantities from a run's records, with paired tests.

Runs come from :mod:`results_fixture`, whose records are made by construction: every case has
a hidden relevance per segment, norm ranks by it, ``oracle-norm``'s weights are that relevance
(so its choices are norm's), ``random`` has quality 0 and ``lime`` quality 3; a correct top-1
gets a fidelity score near 0.72, a wrong one near 0.66.
"""

import math

import numpy as np
import pytest
from results_fixture import make_run

from explbench import cli
from explbench.studies.replication import PAPER_FLIPS, parent_generator, render, replication
from explbench.store.runs import load_run

EXPLAINERS = {
    "lime": (3.0, False, True, 256),
    "random": (0.0, False, False, 0),
    "oracle-norm": (None, True, False, 0),
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("replication")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPLBENCH_CACHE", str(root / "cache"))
        folder = make_run(root / "run", explainers=EXPLAINERS, run_id="rep")
    return load_run(folder)


def _rows(run, explainer, generator, direction):
    r = run.records
    sel = (r["explainer"] == explainer) & (r["generator"] == generator)
    if direction != "all":
        sel &= r["direction"] == direction
    return r[sel]


def test_table_one_and_two_read_each_domain_and_direction_from_the_records(run):
    rep = replication(run, "lime", n_boot=200)
    assert {(g, d) for g, d in zip(rep.flips["generator"], rep.flips["direction"])} == {
        (g, d) for g in ("cw-spectrogram", "cw-waveform")
        for d in ("no-voice-to-voice", "voice-to-no-voice", "all")}
    m = run.metrics
    for row in rep.flips.to_dict("records"):
        rows = _rows(run, "lime", row["generator"], row["direction"])
        fr = np.mean([v[2] for v in rows["flip_at_k"]])
        norm = np.mean([v[2] for v in rows["flip_norm_at_k"]])
        assert row["fr3"].value == pytest.approx(fr) and row["fr3"].n == len(rows)
        assert row["fr3_norm"].value == pytest.approx(norm)
        assert row["fr3_diff"].value == pytest.approx(fr - norm)
        assert row["positive"].value == pytest.approx(rows["flip_positive"].mean())
        assert row["positive_norm"].value == pytest.approx(rows["flip_norm_positive"].mean())
        # the same number the board's metrics.csv holds for this cell
        board = m[(m["explainer"] == "lime") & (m["generator"] == row["generator"])
                  & (m["direction"] == row["direction"]) & (m["metric"] == "flip-rate") & (m["k"] == 3)]
        assert float(board["value"].iloc[0]) == pytest.approx(fr)
        assert row["fr3"].ci_low < fr < row["fr3"].ci_high or fr in (0.0, 1.0)
        paper = PAPER_FLIPS.get((row["generator"], row["direction"]))
        assert row["fr3_paper"] == paper["fr3"] if paper else math.isnan(row["fr3_paper"])


def test_an_explainer_that_chooses_as_norm_shows_no_difference_and_random_falls_below(run):
    same = replication(run, "oracle-norm", n_boot=200).flips
    assert (same["fr3_diff"].map(lambda e: e.value) == 0).all()
    assert (same["positive_diff"].map(lambda e: e.value) == 0).all()
    text = render(replication(run, "oracle-norm", n_boot=200))
    assert "yes: lower" not in text and "0.00 (every pair agrees)" in text
    rand = replication(run, "random", n_boot=200).flips
    pooled = rand[rand["direction"] == "all"]
    # quality 0 against the true ranking: on 15 excerpts per domain it flips far less at k = 3
    assert (pooled["fr3_diff"].map(lambda e: e.value) < -0.3).all()
    assert (pooled["fr3_p"] < 0.05).all()
    assert render(replication(run, "random", n_boot=200)).count("yes: lower") >= 2


def test_fidelity_rows_split_the_localised_cases_by_the_domain_they_were_cut_from(run):
    rep = replication(run, "lime", n_boot=200)
    r = run.records
    loc = r[(r["explainer"] == "lime") & (r["generator"] == "localized")]
    single = loc[[len(t) == 1 for t in loc["true_segments"]]]
    for row in rep.fidelity[rep.fidelity["direction"] == "all"].to_dict("records"):
        mine = single[[parent_generator(c, ["cw-spectrogram", "cw-waveform"]) == row["generator"]
                       for c in single["case_id"]]]
        correct = np.array([int(np.argmax(w)) == t[0] for w, t in zip(mine["weights"], mine["true_segments"])])
        assert row["n_correct"] + row["n_wrong"] == len(mine) > 0
        assert row["n_correct"] == correct.sum()
        if correct.any():
            assert row["median_correct"].value == pytest.approx(np.median(mine["score"][correct]))
        if (~correct).any():
            assert row["median_wrong"].value == pytest.approx(np.median(mine["score"][~correct]))
        # fewer than 5 of a class: no AUC rather than a number without an honest interval
        if min(row["n_correct"], row["n_wrong"]) < 5:
            assert math.isnan(row["auc"].value)


def test_parent_generator_reads_both_id_layouts():
    attacks = ["cw-spectrogram", "cw-waveform"]
    assert parent_generator("localized-k1/cw-spectrogram/0006", attacks) == "cw-spectrogram"
    assert parent_generator("localized/cw-waveform/0001/k3", attacks) == "cw-waveform"
    assert parent_generator("planted/0001", attacks) is None


def test_the_command_prints_and_writes_the_section(run, tmp_path, capsys):
    out = tmp_path / "rep.md"
    assert cli.main(["replication", str(run.folder), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.read_text() == printed
    assert "### Table 1" in printed and "### Table 2" in printed and "### Figure 4" in printed
    assert "| cw-waveform | voice-to-no-voice |" in printed and "| 0.21 |" in printed  # the paper's FR(3)
    assert cli.main(["replication", str(run.folder), "--explainer", "kernelshap"]) == 2
    assert "no successful records of 'kernelshap'" in capsys.readouterr().err
