"""docs/adding-an-explainer.md, run as a new user would: its code in a file, its commands."""

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "adding-an-explainer.md"


def explbench(*args, cwd):
    return subprocess.run([sys.executable, "-m", "explbench.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    code = re.search(r"Save this as `my_explainer.py`:\n\n```python\n(.*?)```", DOC.read_text(), re.S)
    assert code, "the tutorial lost its code block"
    folder = tmp_path_factory.mktemp("user")
    (folder / "my_explainer.py").write_text(code.group(1))
    return folder


def test_tutorial_explainer_passes_the_conformance_check(plugin):
    res = explbench("check-explainer", "leave-one-out", "--plugin", "my_explainer.py", cwd=plugin)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "✓" in res.stdout and "✗" not in res.stdout


def test_broken_plugin_fails_the_check_in_plain_words(plugin):
    src = (plugin / "my_explainer.py").read_text()
    broken = src.replace('"leave-one-out"', '"leave-one-out-broken"').replace(
        "weights = (p[0] - p[1:]).double().numpy()", "weights = (p[0] - p[1:]).double().numpy()[:5]")
    (plugin / "broken.py").write_text(broken)
    res = explbench("check-explainer", "leave-one-out-broken", "--plugin", "broken.py", cwd=plugin)
    assert res.returncode == 1
    assert "✗" in res.stdout and "shape" in res.stdout


def test_tutorial_explainer_appears_in_a_run(plugin):
    out = plugin / "run"
    res = explbench("run", "--suite", str(ROOT / "tests" / "data" / "tiny.toml"), "--plugin",
                    "my_explainer.py", "--explainers", "random,leave-one-out", "--out", str(out),
                    "--quiet", cwd=plugin)
    assert res.returncode == 0, res.stdout + res.stderr
    m = pd.read_csv(out / "metrics.csv")
    rows = m[(m.explainer == "leave-one-out") & (m.metric == "flip-rate")]
    assert len(rows) > 0 and rows["value"].between(0, 1).all()
    assert "leave-one-out" in res.stdout


def test_readme_example_passes_the_conformance_check(tmp_path):
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"## Registering an explainer\n\n```python\n(.*?)```", readme, re.S)
    assert code, "the README lost its registration example"
    (tmp_path / "my_explainer.py").write_text(code.group(1))
    res = explbench("check-explainer", "my-occlusion", "--plugin", "my_explainer.py", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
