"""docs/adding-a-generator.md and docs/adding-a-metric.md, run as a new user would."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from docs_walkthrough import ROOT, block, explbench

#: a whole run or more: `pytest -m 'not slow'` leaves it out of a quick loop; `make test` runs it
pytestmark = pytest.mark.slow

GEN_DOC = ROOT / "docs" / "adding-a-generator.md"
METRIC_DOC = ROOT / "docs" / "adding-a-metric.md"


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user")
    (folder / "my_generator.py").write_text(block("my_generator.py", doc=GEN_DOC))
    (folder / "brighten.toml").write_text(block("brighten.toml", "toml", doc=GEN_DOC))
    (folder / "my_metric.py").write_text(block("my_metric.py", doc=METRIC_DOC))
    return folder


def test_the_generator_page_runs_and_its_cause_is_recovered(user):
    res = explbench("list", "generators", "--plugin", "my_generator.py", cwd=user)
    assert res.returncode == 0 and "brighten" in res.stdout, res.stderr
    res = explbench("run", "--suite", "brighten.toml", "--plugin", "my_generator.py", "--out",
                    "runs/brighten", "--quiet", cwd=user)
    assert res.returncode == 0, res.stderr
    m = pd.read_csv(user / "runs" / "brighten" / "metrics.csv")
    rec = m[(m.metric == "recovery") & (m.k == 1) & (m.direction == "all")].set_index("explainer")["value"]
    assert rec["oracle-norm"] == 1.0  # it sees the perturbation: one segment, found every time
    assert rec["occlusion"] > rec["random"] + 0.3, rec
    manifest = json.loads((user / "runs" / "brighten" / "manifest.json").read_text())
    assert manifest["generators"]["brighten"]["version"] == "1"
    assert manifest["generators"]["brighten"]["n_cases"] == 8


def test_the_metric_page_adds_a_column_with_the_value_it_defines(user):
    res = explbench("list", "metrics", "--plugin", "my_metric.py", cwd=user)
    assert res.returncode == 0 and "top3-share" in res.stdout, res.stderr
    out = user / "runs" / "metric"
    res = explbench("run", "--suite", str(ROOT / "tests" / "data" / "tiny.toml"), "--plugin",
                    "my_metric.py", "--explainers", "random,occlusion", "--out", str(out),
                    "--quiet", cwd=user)
    assert res.returncode == 0, res.stderr
    m = pd.read_csv(out / "metrics.csv")
    rows = m[(m.metric == "top3-share") & (m.direction == "all")]
    assert set(rows.explainer) == {"random", "occlusion"}
    # the same share, computed here from the records
    recs = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    for (e, g), row in rows.set_index(["explainer", "generator"]).iterrows():
        ws = [np.abs(r["weights"]) for r in recs if r["explainer"] == e and r["generator"] == g
              and r["status"] == "ok"]
        want = np.mean([np.sort(w)[::-1][:3].sum() / w.sum() for w in ws])
        assert row["value"] == pytest.approx(want, abs=5e-7), (e, g)  # metrics.csv: 6 digits
        assert 3 / 20 <= row["value"] <= 1.0
