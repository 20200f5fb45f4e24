"""A stranger joins a committed board: a new explainer run on the published suite is ranked
PAIRED against the published explainers, and a case pack carries the same cases elsewhere.

This is the user's workflow of the README, at smoke size: the smoke suite's cw-spectrogram
cases (16, made here as on a fresh clone, or taken from the tests' cache) against the committed
``leaderboards/runs/svd-synth-smoke`` bundle.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

#: a whole run or more: `pytest -m 'not slow'` leaves it out of a quick loop; `make test` runs it
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
BUNDLE = REPO / "leaderboards" / "runs" / "svd-synth-smoke"

PLUGIN = '''
import numpy as np
import torch

from explbench import Explainer, Explanation, register_explainer



@register_explainer("leave-one-out")
class LeaveOneOut(Explainer):
    """Removes one segment at a time; weight = drop of the target probability."""

    def explain(self, model, x, target, *, segments, budget, rng, context):
        baseline = torch.full_like(x, float(x.mean()))
        all_but_one = 1.0 - np.eye(segments.d, dtype=np.float32)
        p = model.predict(torch.cat([x[None], segments.compose(x, all_but_one, baseline)]))[:, target]
        return Explanation(weights=(p[0] - p[1:]).double().numpy())
'''


def explbench(*args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "explbench.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def mine(tmp_path_factory):
    """``explbench run --suite smoke --explainers leave-one-out,random --plugin ...`` on the
    smoke suite's spectrogram attacks (cases from the tests' shared cache when an earlier test
    run made them: they are matched by content, so where they came from does not matter)."""
    root = tmp_path_factory.mktemp("join")
    env = dict(os.environ)
    (root / "my_explainer.py").write_text(PLUGIN)
    res = explbench("run", "--suite", "smoke", "--generators", "cw-spectrogram",
                    "--explainers", "leave-one-out,random", "--plugin", "my_explainer.py",
                    "--out", "runs/mine", "--quiet", cwd=root, env=env)
    assert res.returncode == 0, res.stderr
    return {"root": root, "env": env, "run": root / "runs" / "mine"}


def test_a_new_explainer_is_ranked_paired_on_the_committed_board(mine):
    root, env = mine["root"], mine["env"]
    res = explbench("leaderboard", "--task", "svd-synth", "--runs", str(BUNDLE), "runs/mine",
                    "--out-dir", "board", cwd=root, env=env)
    assert res.returncode == 0, res.stderr
    pairs = pd.read_csv(root / "board" / "svd-synth-smoke-pairs.csv")
    spec = pairs[pairs["generator"] == "cw-spectrogram"]
    new = spec[(spec["a"] == "leave-one-out") | (spec["b"] == "leave-one-out")]
    assert set(new["a"]) | set(new["b"]) == {"leave-one-out", "lime", "random"}
    assert new["paired"].all() and (new["n"] == 16).all(), new
    board = (root / "board" / "svd-synth-smoke.md").read_text()
    assert "UNPAIRED" not in board


def test_compare_pairs_the_same_cases(mine):
    res = explbench("compare", str(BUNDLE), "runs/mine", cwd=mine["root"], env=mine["env"])
    assert res.returncode == 0, res.stderr
    assert "paired on the cases with the same content in: cw-spectrogram" in res.stdout
    assert "UNPAIRED" not in res.stdout
    # random draws its weights from the case's seed: on the same cases it flips the same way
    from explbench.results.compare import compare

    table = compare(BUNDLE, mine["run"]).table
    row = table[(table["explainer"] == "random") & (table["metric"] == "flip-rate")].iloc[0]
    assert row["paired"] and row["n"] == 16 and row["diff"] == 0 and row["value_a"] == row["value_b"]


def test_the_regenerated_cases_are_the_published_ones(mine):
    manifest = json.loads((mine["run"] / "manifest.json").read_text())
    published = json.loads((BUNDLE / "manifest.json").read_text())
    assert manifest["generators"]["cw-spectrogram"]["cases"] == \
        published["generators"]["cw-spectrogram"]["cases"]


def test_a_pack_carries_the_cases_to_another_executor(mine, tmp_path):
    root, env = mine["root"], mine["env"]
    pack = tmp_path / "cases.npz"
    res = explbench("cases", "export", "runs/mine", "--out", str(pack), cwd=root, env=env)
    assert res.returncode == 0 and "16 cases of cw-spectrogram" in res.stdout, res.stderr
    env2 = env  # the pack's cases take precedence over anything cached
    res = explbench("run", "--suite", "smoke", "--generators", "cw-spectrogram", "--explainers",
                    "random", "--cases", str(pack), "--executor", "processes", "--workers", "2",
                    "--out", str(tmp_path / "from-pack"), "--quiet", cwd=root, env=env2)
    assert res.returncode == 0, res.stderr
    assert "cw-spectrogram: 16 cases from the pack" in res.stderr
    ours = pd.read_csv(mine["run"] / "metrics.csv")
    theirs = pd.read_csv(tmp_path / "from-pack" / "metrics.csv")
    cols = ["generator", "direction", "explainer", "metric", "k", "value", "ci_low", "ci_high", "n"]
    sel = lambda m: m[m["explainer"] == "random"][cols].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(sel(ours), sel(theirs))


def test_a_tampered_pack_is_refused(mine, tmp_path):
    import numpy as np

    root, env = mine["root"], mine["env"]
    pack = tmp_path / "cases.npz"
    assert explbench("cases", "export", "runs/mine", "--out", str(pack), cwd=root, env=env).returncode == 0
    with np.load(pack) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["0/x_mod"] = arrays["0/x_mod"] + np.float32(0.01)  # one case nudged
    np.savez_compressed(pack, **arrays)
    res = explbench("run", "--suite", "smoke", "--generators", "cw-spectrogram", "--explainers",
                    "random", "--cases", str(pack), "--out", str(tmp_path / "x"), "--quiet",
                    cwd=root, env=env)
    assert res.returncode == 2
    assert "do not match the manifest" in res.stderr and "cw-spectrogram" in res.stderr
