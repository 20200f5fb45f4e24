"""docs/adding-a-task.md, run as a new user would: its code in a file, its commands."""

import re
import time

import pandas as pd
import pytest

from docs_walkthrough import TASK_DOC as DOC, block, explbench


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user")
    (folder / "my_task.py").write_text(block("my_task.py", "python"))
    (folder / "my_suite.toml").write_text(block("my_suite.toml", "toml"))
    return folder


def test_the_tutorial_task_passes_check_task(user):
    t0 = time.perf_counter()
    res = explbench("check-task", "two-tones", "--plugin", "my_task.py", cwd=user)
    seconds = time.perf_counter() - t0
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("✓") == 11 and "✗" not in res.stdout
    assert "all checks passed" in res.stdout
    print(f"check-task two-tones: {seconds:.1f} s")


def test_every_command_of_the_page_names_a_real_subcommand():
    for line in re.findall(r"^explbench (\S+)", DOC.read_text(), re.M):
        assert line in {"check-task", "run", "evaluate"}, line


@pytest.mark.parametrize("mistake, replace, check, words", [
    ("an unknown axis name", ('domain_axes = ("mel band", "frame")', 'domain_axes = ("mel band", "time step")'),
     "axis order", "unknown axis name 'time step'"),
    ("axes declared in the wrong order", ('domain_axes = ("mel band", "frame")', 'domain_axes = ("frame", "mel band")'),
     "hooks", "one frequency per frequency row (97,)"),
    ("logits instead of probabilities", ("return torch.stack([1 - p, p], dim=1)", "return torch.stack([-p, p], dim=1)"),
     "probabilities", "Softmax"),
    ("labels swapped", ("label=clip % 2", "label=1 - clip % 2"), "accuracy", "output order"),
])
def test_typical_mistakes_fail_check_task_in_plain_words(user, mistake, replace, check, words):
    src = (user / "my_task.py").read_text()
    assert replace[0] in src, f"the tutorial changed; update the '{mistake}' case"
    name = re.sub(r"\W+", "_", mistake)
    broken = src.replace(replace[0], replace[1]).replace('"two-tones"', f'"two-tones-{name}"')
    (user / f"{name}.py").write_text(broken)
    res = explbench("check-task", f"two-tones-{name}", "--plugin", f"{name}.py", "--n", "8", cwd=user)
    assert res.returncode == 1, res.stdout + res.stderr
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith(f"✗ {check}:"))
    assert words in line, line


def test_the_tutorial_suite_runs_on_the_tutorial_task(user):
    out = user / "my-run"
    res = explbench("run", "--suite", "my_suite.toml", "--plugin", "my_task.py", "--out", str(out),
                    "--quiet", cwd=user)
    assert res.returncode == 0, res.stdout + res.stderr
    m = pd.read_csv(out / "metrics.csv")
    assert set(m["task"]) == {"two-tones"}
    rows = m[(m.explainer == "lime") & (m.metric == "flip-rate")]
    assert len(rows) > 0 and rows["value"].between(0, 1).all()
