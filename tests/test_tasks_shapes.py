"""docs/adding-a-task.md, section 6: a 3-class, a time-major and a waveform task, each built
from the page's code and run through the smoke suite as a new user would."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from docs_walkthrough import block, explbench

#: a whole run or more: `pytest -m 'not slow'` leaves it out of a quick loop; `make test` runs it
pytestmark = pytest.mark.slow

FILES = ("my_task.py", "three_tones.py", "time_major.py", "waveform.py")


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shapes")
    for name in FILES:
        (folder / name).write_text(block(name))
    return folder


def smoke(user, task: str, plugin: str) -> Path:
    out = user / f"run-{task}"
    res = explbench("run", "--suite", "smoke", "--task", task, "--plugin", "my_task.py",
                    "--plugin", plugin, "--out", str(out), cwd=user)
    assert res.returncode == 0, res.stdout + res.stderr
    return out


@pytest.mark.parametrize("task, plugin", [("three-tones", "three_tones.py"),
                                          ("two-tones-time-major", "time_major.py"),
                                          ("two-tones-waveform", "waveform.py")])
def test_each_shape_passes_check_task(user, task, plugin):
    res = explbench("check-task", task, "--plugin", "my_task.py", "--plugin", plugin, "--n", "12", cwd=user)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "✗" not in res.stdout


def test_three_classes_group_by_the_class_aimed_at(user):
    m = pd.read_csv(smoke(user, "three-tones", "three_tones.py") / "metrics.csv")
    fr = m[(m.metric == "flip-rate") & (m.generator.str.startswith("cw-"))]
    assert len(fr) > 0
    directions = set(fr["direction"])
    assert directions <= {"all", "to-low", "to-middle", "to-high"}, directions
    assert {"to-low", "to-middle", "to-high"} & directions  # groups by target class exist
    per_class = fr[fr.direction != "all"]
    assert (per_class["n"] >= 2).all(), per_class[["direction", "n"]]  # never one group per pair, n = 1
    assert m["n_clusters"].notna().all()


def test_time_major_gives_the_numbers_of_the_band_major_task(user):
    """The same model on transposed input: every case and every explanation is the transpose
    of the band-major one, so the metrics agree. A harness that took the first axis for
    frequency would cut other segments and disagree."""
    band = pd.read_csv(smoke(user, "two-tones", "my_task.py") / "metrics.csv")
    time = pd.read_csv(smoke(user, "two-tones-time-major", "time_major.py") / "metrics.csv")
    keys = ["generator", "direction", "explainer", "metric", "k"]
    both = band.merge(time, on=keys, suffixes=("_band", "_time"))
    assert len(both) == len(band) == len(time) and len(both) > 20
    np.testing.assert_array_equal(both["n_band"], both["n_time"])
    np.testing.assert_allclose(both["value_band"], both["value_time"], atol=0.02, equal_nan=True)
    lime = both[(both.explainer == "lime") & (both.metric == "flip-rate") & (both.k == 3)]
    assert len(lime) > 0


def test_a_waveform_task_runs_on_time_segments_without_the_spectrogram_attack(user):
    out = smoke(user, "two-tones-waveform", "waveform.py")
    config = json.loads((out / "config.json").read_text())["suite"]
    assert config["segmentation"] == "time:20"
    assert "cw-spectrogram" not in config["generators"]
    assert config["generators"]["localized"]["from"] == ["cw-waveform"]
    prov = json.loads((out / "provenance.json").read_text())
    assert "waveform" in prov["left_out"]["cw-spectrogram"]
    m = pd.read_csv(out / "metrics.csv")
    assert set(m["generator"]) == {"cw-waveform"}  # (this model averages over the whole second,
    # so no time-restricted part of an attack flips it: localized runs and finds no case)
    assert json.loads((out / "cases.json").read_text())["localized"]["n_cases"] == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert records and all(r["d"] == 20 and len(r["weights"]) == 20 for r in records if r["status"] == "ok")
    lime = m[(m.explainer == "lime") & (m.metric == "flip-rate") & (m.k == 3) & (m.direction == "all")]
    assert len(lime) == 1 and 0 <= lime["value"].iloc[0] <= 1
