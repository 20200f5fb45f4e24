import json
import subprocess
import sys


def cli(*args):
    return subprocess.run([sys.executable, "-m", "explbench.cli", *args], capture_output=True,
                          text=True, timeout=600)


def test_list_shows_every_kind_with_descriptions():
    res = cli("list")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "svd-synth" in out and "singing-voice" in out
    for name in ("lime", "kernelshap", "integrated-gradients", "occlusion", "random", "oracle-norm"):
        assert name in out
    assert "cw-spectrogram" in out and "localized" in out and "flip-rate" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert "model-agnostic" in lines["lime"] and "white-box" in lines["saliency"]
    assert "oracle" in lines["oracle-norm"]


def test_evaluate_json_is_one_object():
    res = cli("evaluate", "svd-synth", "--split", "test", "--n", "24", "--seed", "5", "--json")
    assert res.returncode == 0, res.stderr
    scores = json.loads(res.stdout)
    assert scores["n"] == 24 and 0.5 <= scores["accuracy"] <= 1.0
    assert set(scores) >= {"accuracy", "balanced_accuracy", "f1", "auroc", "model_hash"}


def test_unknown_names_fail_with_the_known_ones():
    res = cli("evaluate", "svd-synthetic")
    assert res.returncode == 2 and "Did you mean 'svd-synth'?" in res.stderr and "Known tasks: " in res.stderr
    res = cli("run", "--explainers", "lime,shapley-magic", "--out", "/nonexistent/x")
    assert res.returncode == 2 and "unknown explainer 'shapley-magic'" in res.stderr
    res = cli("run", "--suite", "smok")
    assert res.returncode == 2 and "presets: default, paper, smoke" in res.stderr


def test_version_and_list_with_a_plugin():
    from pathlib import Path

    import explbench
    from explbench.cli import common as cli_common

    plugin = Path(__file__).parent / "data" / "faults_plugin.py"
    res = cli("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"explbench {explbench.__version__}"
    res = cli("list", "explainers", "--plugin", str(plugin))
    assert res.returncode == 0, res.stderr
    assert "toy-hang" in res.stdout and "lime" in res.stdout
    assert cli_common.command_name()  # what to type next: explbench, or the venv's script


def test_task_param_values_read_as_toml_and_bad_ones_are_explained():
    import pytest

    from explbench.cli.common import _task_params

    assert _task_params(["song_duration=12.5", "weights=my.safetensors", "flag=true"]) == {
        "song_duration": 12.5, "weights": "my.safetensors", "flag": True}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        _task_params(["weights"])
