"""A whole run of a tiny suite on svd-synth with the committed model: determinism, resume,
reference selectors, failing plug-ins."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "tests" / "data" / "tiny.toml")


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "explbench.cli", "run", "--suite", TINY, "--quiet", *args],
                          capture_output=True, text=True, timeout=1800, cwd=cwd)


@pytest.fixture(scope="module")
def run_a(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "A"
    res = run("--out", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    return out


def test_run_folder_holds_config_provenance_records_and_tidy_metrics(run_a):
    for name in ("config.json", "provenance.json", "cases.json", "records.jsonl", "metrics.csv", "timing.csv"):
        assert (run_a / name).exists(), name
    prov = json.loads((run_a / "provenance.json").read_text())
    assert prov["task"]["model_hash"] and prov["packages"]["torch"] and prov["seed"] == 0
    from explbench.store.run_store import METRIC_COLUMNS

    m = pd.read_csv(run_a / "metrics.csv")
    assert list(m.columns) == METRIC_COLUMNS and METRIC_COLUMNS[:3] == ["run_id", "task", "generator"]
    assert prov["batch_size_source"] == "measured" and prov["batch_size"] >= 1
    choice = prov["batch_choice"]  # how the measurement went, and the rates behind it
    assert choice["batch_size"] == prov["batch_size"] and choice["how"] in ("measured", "cached", "remeasured")
    assert set(prov["explainers"]) == {"lime", "random", "oracle-norm"}
    assert prov["explainers"]["lime"]["n_samples"] == 64  # resolved parameters, defaults included
    assert prov["explainers"]["lime"]["content"] == "mean"
    info = json.loads((run_a / "cases.json").read_text())
    for gen, entry in info.items():  # the cases travel with the run folder
        assert (run_a / entry["file"]).is_file(), gen
    for expl in ("lime", "random", "oracle-norm"):
        got = set(m[m.explainer == expl].metric)
        assert {"flip-rate", "recovery", "failure-rate", "queries"} <= got, (expl, got)
        # positive-weight flip is "not applicable" for unsigned weights (oracle-norm's energies)
        assert ("positive-flip-rate" in got) == (expl != "oracle-norm"), (expl, got)
    ok = m.dropna(subset=["ci_low"])
    assert (ok.ci_low <= ok.value + 1e-9).all() and (ok.value <= ok.ci_high + 1e-9).all()


def test_oracle_flips_every_case_with_the_whole_delta_and_beats_random(run_a):
    m = pd.read_csv(run_a / "metrics.csv")
    fr = m[(m.metric == "flip-rate") & (m.direction == "all") & (m.generator == "cw-spectrogram")]
    d = int(fr.k.max())
    oracle = fr[fr.explainer == "oracle-norm"].set_index("k").value
    random = fr[fr.explainer == "random"].set_index("k").value
    assert oracle[d] == 1.0
    assert oracle.sum() > random.sum()  # area under the FR(k) curve


def test_same_seed_gives_byte_identical_metrics(run_a, tmp_path):
    res = run("--out", str(tmp_path / "B"))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "B" / "metrics.csv").read_bytes() == (run_a / "metrics.csv").read_bytes()


def test_killed_run_resumes_to_the_same_metrics(run_a, tmp_path):
    out = tmp_path / "C"
    proc = subprocess.Popen([sys.executable, "-m", "explbench.cli", "run", "--suite", TINY, "--quiet",
                             "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = out / "records.jsonl"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if records.exists() and records.read_text().count("\n") >= 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "metrics.csv").exists()
    kept = records.read_text().count("\n")
    res = subprocess.run([sys.executable, "-m", "explbench.cli", "run", "--resume", str(out), "--quiet"],
                         capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stderr
    assert (out / "metrics.csv").read_bytes() == (run_a / "metrics.csv").read_bytes()
    assert records.read_text().count("\n") == len((run_a / "records.jsonl").read_text().splitlines())
    assert kept >= 4


def test_failing_explainer_is_recorded_and_the_run_goes_on(tmp_path):
    (tmp_path / "bad.py").write_text(
        "import numpy as np\n"
        "from explbench import Explainer, Explanation, register_explainer\n"
        "@register_explainer('sometimes-nan')\n"
        "class SometimesNaN(Explainer):\n"
        "    def explain(self, model, x, target, *, segments, budget, rng, context):\n"
        "        if rng.random() < 0.5:\n"
        "            raise RuntimeError('boom')\n"
        "        return Explanation(weights=np.full(segments.d, np.nan))\n")
    res = run("--out", str(tmp_path / "D"), "--plugin", str(tmp_path / "bad.py"),
              "--explainers", "random,sometimes-nan")
    assert res.returncode == 0, res.stderr
    recs = [json.loads(line) for line in (tmp_path / "D" / "records.jsonl").read_text().splitlines()]
    bad = [r for r in recs if r["explainer"] == "sometimes-nan"]
    assert bad and all(r["status"] == "failed" for r in bad)
    errors = {r["error"].split(":")[0] for r in bad}
    assert errors <= {"RuntimeError", "ExplainerFailure"} and len(errors) == 2
    assert all(r["status"] == "ok" for r in recs if r["explainer"] == "random")
    m = pd.read_csv(tmp_path / "D" / "metrics.csv")
    fail = m[(m.explainer == "sometimes-nan") & (m.metric == "failure-rate") & (m.direction == "all")]
    assert (fail.value == 1.0).all()
    assert "failed" in res.stdout


def test_case_cache_key_follows_generator_defaults():
    from explbench.api import registry
    from explbench.run.case_cache import generator_identity

    task = registry.tasks.get("svd-synth")()
    cw = registry.generators.get("cw-spectrogram")
    assert generator_identity(cw(), task) != generator_identity(cw(confidence=0.5), task)
    assert generator_identity(cw(), task)["resolved"]["confidence"] == 0.9
    planted = registry.generators.get("planted")
    assert generator_identity(planted(), task) != generator_identity(planted(max_amplitude=8.0), task)


def test_explainer_defaults_stand_unless_the_suite_sets_them():
    from explbench.run import suite_files as suite
    from explbench.run.prepare import make_explainer

    config = suite.load("default")
    assert config.content == "mean"
    assert make_explainer(config, "gradient-shap").content == "noise"  # its own default
    config.explainer_params["gradient-shap"] = {"content": "zero"}
    assert make_explainer(config, "gradient-shap").content == "zero"


def test_batch_size_pin_and_per_cluster_reach_the_run(tmp_path):
    from explbench.run import suite_files as suite
    from explbench.run.loop import choose_batch_size
    from explbench.run.prepare import prepare

    config = suite.load(TINY)
    prep = prepare(config)
    assert choose_batch_size(prep, 3) == (3, "pinned")
    with pytest.raises(ValueError, match="at least 1"):
        choose_batch_size(prep, 0)
    from explbench.run.suite_files import generator_kwargs

    config.generators["cw-spectrogram"]["per_cluster"] = 2
    assert generator_kwargs(config, "cw-spectrogram")["per_cluster"] == 2


def test_power_is_stated_before_explaining_and_kept_in_provenance(tmp_path, capsys):
    from explbench import cli

    suite = tmp_path / "s.toml"
    suite.write_text('name = "power"\ntask = "toy-one-segment"\nsegmentation = "grid:5x4"\n'
                     'budget = 64\nn_boot = 200\nagnostic_samples = 0\nexplainers = ["toy-exact"]\n'
                     'power_discordance = 0.5\n[generator.toy-lift]\nn = 6\nclaim = false\n')
    out = tmp_path / "A"
    capsys.readouterr()
    assert cli.main(["run", "--suite", str(suite), "--plugin", str(ROOT / "tests" / "data" / "faults_plugin.py"),
                     "--out", str(out), "--batch-size", "8", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "minimum detectable difference in FR(3)" in err and "discordance 0.5" in err
    assert "toy-lift n = 6" in err
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["power"]["n_by_generator"] == {"toy-lift": 6} and prov["power"]["discordance"] == 0.5
    assert prov["power"]["statement"] in err


def test_a_packed_unfinished_run_resumes_to_the_same_metrics(run_a, tmp_path):
    """A bundle's records.jsonl.gz (`explbench pack`) is read as it is and unpacked by a resume."""
    out = tmp_path / "P"
    shutil.copytree(run_a, out)
    lines = (out / "records.jsonl").read_text().splitlines(keepends=True)
    (out / "records.jsonl").write_text("".join(lines[:-3]))  # three units still to run
    (out / "metrics.csv").unlink()
    res = subprocess.run([sys.executable, "-m", "explbench.cli", "pack", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert (out / "records.jsonl.gz").exists() and not (out / "records.jsonl").exists()
    res = subprocess.run([sys.executable, "-m", "explbench.cli", "run", "--resume", str(out), "--quiet"],
                         capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stderr
    assert not (out / "records.jsonl.gz").exists()
    assert (out / "metrics.csv").read_bytes() == (run_a / "metrics.csv").read_bytes()
    assert len((out / "records.jsonl").read_text().splitlines()) == len(lines)


def test_a_run_records_one_identity_and_a_resume_keeps_its_batch_size(run_a):
    prov = json.loads((run_a / "provenance.json").read_text())
    ident = prov["identity"]
    assert ident["task"] == "svd-synth" and ident["model_source"] == "state_dict"
    assert len(ident["model"]) == 16 and ident["model_declared"] == prov["task"]["model_hash"]
    assert ident["data"].startswith(prov["task"]["data_version"] + "+excerpts-")
    assert ident["sample_rate"] == 22050 and ident["domain_shape"] == [80, 115]
    assert ident["batch_size"] == prov["batch_size"] and prov["headline_k"] == 3
    manifest = json.loads((run_a / "manifest.json").read_text())
    recs = [json.loads(line) for line in (run_a / "records.jsonl").read_text().splitlines()]
    by_id = {c: h for g in manifest["generators"].values() for c, h in g["cases"].items()}
    assert recs and all(r["case_hash"] == by_id[r["case_id"]] for r in recs)
    other = 3 if ident["batch_size"] != 3 else 5
    resume = [sys.executable, "-m", "explbench.cli", "run", "--resume", str(run_a), "--quiet"]
    res = subprocess.run(resume + ["--batch-size", str(other)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 2 and f"started with batch size {ident['batch_size']}" in res.stderr
    res = subprocess.run(resume, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert json.loads((run_a / "provenance.json").read_text())["identity"] == ident
