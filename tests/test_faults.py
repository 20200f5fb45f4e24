"""Fault injection: each way a run could be lost, hang or be silently wrong, provoked.

Runs use a toy task, generator and explainers (``tests/data/faults_plugin.py``: a 16 x 20
domain, six cases, seconds per run), mostly in this process through ``explbench.cli.main``;
real second processes are used where the fault needs one (two writers, a fresh resume, a full
or read-only disk inside a private mount namespace).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from explbench import cli
from explbench.cli import common as cli_common
from explbench.store.run_store import RunStore

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "tests" / "data" / "faults_plugin.py"
PY = sys.executable


def suite(tmp_path: Path, explainers=("toy-exact", "random"), top: str = "", tables: str = "",
          generator: str = "n = 6", name: str = "faults") -> str:
    """A toy suite file; ``top`` sets (or replaces) top-level settings, ``tables`` adds tables."""
    settings = {"name": f'"{name}"', "task": '"toy-one-segment"', "seed": "0",
                "segmentation": '"grid:5x4"', "budget": "64", "n_boot": "200",
                "agnostic_samples": "16", "explainers": json.dumps(list(explainers))}
    for line in filter(None, top.splitlines()):
        key, _, value = line.partition("=")
        settings[key.strip()] = value.strip()
    text = "".join(f"{k} = {v}\n" for k, v in settings.items())
    text += f"\n[generator.toy-lift]\n{generator}\n{tables}\n"
    path = tmp_path / f"{name}-{abs(hash(text)) % 10**8}.toml"
    path.write_text(text)
    return str(path)


def run(capsys, *args: str) -> tuple[int, str, str]:
    """``explbench ARGS`` in this process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    rc = cli.main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def run_toy(capsys, suite_path: str, out: Path, *extra: str) -> tuple[int, str, str]:
    return run(capsys, "run", "--suite", suite_path, "--plugin", str(PLUGIN), "--out", str(out),
               "--quiet", *extra)


def records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("EXPLBENCH_CACHE", str(cache))
    return cache


# -- 1. two writers ------------------------------------------------------------------------------


def test_second_writer_is_refused_stale_lock_taken_over_and_metrics_match(tmp_path, capsys):
    gate = tmp_path / "gate"
    s = suite(tmp_path, ("toy-slow", "random"), tables=f'[explainer.toy-slow]\ngate = "{gate}"\n')
    rc, _, err = run_toy(capsys, s, tmp_path / "uninterrupted")  # gate absent: runs through
    assert rc == 0, err
    gate.touch()
    out = tmp_path / "X"
    first = subprocess.Popen([PY, "-m", "explbench.cli", "run", "--suite", s, "--plugin", str(PLUGIN),
                              "--out", str(out), "--quiet"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not (out / "cases.json").exists():
            assert first.poll() is None, first.stderr.read()
            time.sleep(0.1)
        time.sleep(0.5)  # the first writer now waits inside its first explanation
        assert first.poll() is None
        rc, _, err = run(capsys, "run", "--resume", str(out), "--quiet")
        assert rc == 2 and "being written by another explbench run" in err, err
        assert f"PID {first.pid}" in err and "Traceback" not in err
        rc, _, err = run_toy(capsys, s, out)  # a new run into the same folder: refused too
        assert rc == 2 and f"PID {first.pid}" in err, err
        os.kill(first.pid, signal.SIGKILL)  # the writer dies holding the lock
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        if first.stderr:
            first.stderr.close()
    assert json.loads((out / "run.lock").read_text())["pid"] == first.pid  # left behind
    gate.unlink()
    rc, _, err = run(capsys, "run", "--resume", str(out), "--quiet")
    assert rc == 0, err
    assert f"taking over the lock of {out} left by PID {first.pid}" in err
    assert not (out / "run.lock").exists()
    assert (out / "metrics.csv").read_bytes() == (tmp_path / "uninterrupted" / "metrics.csv").read_bytes()
    assert len(records(out)) == len(records(tmp_path / "uninterrupted"))


def test_duplicate_records_are_counted_once(tmp_path, capsys):
    s = suite(tmp_path)
    rc, _, err = run_toy(capsys, s, tmp_path / "A")
    assert rc == 0, err
    a = tmp_path / "A"
    clean = (a / "metrics.csv").read_bytes()
    lines = (a / "records.jsonl").read_text().splitlines()
    with open(a / "records.jsonl", "a") as fh:  # what a second writer used to append
        fh.write("\n".join(lines) + "\n")
    store = RunStore(a)
    with pytest.warns(UserWarning, match="counted once"):
        assert len(store.records()) == len(lines)
    from explbench.run.runner import finish
    from explbench.run.suite import SuiteConfig

    config = SuiteConfig.from_dict(store.config()["suite"])
    finish(store, config, store.config()["run_id"], log=lambda s: None)
    assert (a / "metrics.csv").read_bytes() == clean
    m = pd.read_csv(a / "metrics.csv")
    assert (m[m.direction == "all"].n <= 6).all()


def test_corrupt_middle_line_is_reported_and_later_records_kept(tmp_path, capsys):
    s = suite(tmp_path)
    rc, _, err = run_toy(capsys, s, tmp_path / "A")
    assert rc == 0, err
    a = tmp_path / "A"
    clean = (a / "metrics.csv").read_bytes()
    lines = (a / "records.jsonl").read_text().splitlines()
    damaged = lines[:3] + ['{"case_id": "toy-lift/00'] + lines[4:]  # line 4 torn in place
    (a / "records.jsonl").write_text("\n".join(damaged) + "\n")
    read = RunStore(a).read_records()
    assert read.corrupt_lines == [4] and len(read.records) == len(lines) - 1
    (a / "metrics.csv").unlink()
    rc, _, err = run(capsys, "run", "--resume", str(a), "--quiet")
    assert rc == 0, err
    assert "line(s) 4 were not valid records" in err and "1 units to go" in err
    assert (a / "records.corrupt.jsonl").read_text() == '{"case_id": "toy-lift/00\n'
    assert (a / "metrics.csv").read_bytes() == clean


# -- 2. what a plug-in returns -------------------------------------------------------------------


def test_nan_and_numpy_outputs_are_stored_and_objects_fail_only_their_unit(tmp_path, capsys):
    s = suite(tmp_path, ("toy-nan", "toy-object", "toy-exact"))
    rc, out, err = run_toy(capsys, s, tmp_path / "A")
    assert rc == 0, err
    recs = records(tmp_path / "A")
    nan = [r for r in recs if r["explainer"] == "toy-nan"]
    assert len(nan) == 6 and all(r["status"] == "ok" for r in nan)
    r = nan[0]
    assert r["intercept"] is None and r["score"] is None
    assert r["extra"] == {"nan": None, "inf": None, "arr": [0, 1, 2], "scalar": 1.5,
                          "nested": {"a": [0.5, None]}}
    obj = [r for r in recs if r["explainer"] == "toy-object"]
    assert len(obj) == 6 and all(r["status"] == "failed" for r in obj)
    assert "extra['model'] is a builtins.object" in obj[0]["error"]
    assert all(r["status"] == "ok" for r in recs if r["explainer"] == "toy-exact")
    assert "6 explanations failed" in out
    rc, _, err = run(capsys, "run", "--resume", str(tmp_path / "A"), "--quiet")  # no crash loop
    assert rc == 0 and "0 units to go" in err, err


def test_jsonable_converts_numpy_and_names_what_it_refuses():
    import torch

    from explbench.core.jsonsafe import NotStorable, jsonable

    got = jsonable({"a": np.float64("nan"), "b": np.int64(3), "c": torch.tensor([1.0, float("inf")]),
                    1: (np.bool_(True),)})
    assert got == {"a": None, "b": 3, "c": [1.0, None], "1": [True]}
    with pytest.raises(NotStorable, match=r"extra\['f'\] is a builtins.function"):
        jsonable({"f": lambda: 0}, "extra")


# -- 3. a hanging explainer ----------------------------------------------------------------------


def test_hanging_explainer_times_out_and_retry_failed_runs_it_again(tmp_path, capsys):
    s = suite(tmp_path, ("toy-hang", "toy-exact"), top="timeout = 1")
    out = tmp_path / "A"
    res = subprocess.run([PY, "-m", "explbench.cli", "run", "--suite", s, "--plugin", str(PLUGIN),
                          "--out", str(out), "--quiet"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    recs = records(out)
    hang = [r for r in recs if r["explainer"] == "toy-hang"]
    timed_out = [r for r in hang if r["status"] == "failed"]
    assert timed_out and all(r["error"].startswith("Timeout:") and "1 s" in r["error"] for r in timed_out)
    assert len(timed_out) < len(hang)  # it answers on the other cases
    assert all(r["status"] == "ok" for r in recs if r["explainer"] == "toy-exact")
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["timeout"] == 1.0
    rc, _, err = run(capsys, "run", "--resume", str(out), "--quiet")
    assert rc == 0 and "0 units to go" in err, err  # failed units are not retried unasked
    t0 = time.perf_counter()
    rc, _, err = run(capsys, "run", "--resume", str(out), "--quiet", "--retry-failed", "--timeout", "0.5")
    assert rc == 0 and f"{len(timed_out)} units to go" in err, err
    assert time.perf_counter() - t0 < 60
    assert len(records(out)) == len(recs) + len(timed_out)  # appended, never rewritten
    again = RunStore(out).records()
    assert len(again) == len(recs)  # one record per unit: the retried one replaces the old
    assert all("0.5 s" in r["error"] for r in again if r["explainer"] == "toy-hang" and r["status"] == "failed")


def test_time_limit_interrupts_python_and_is_not_caught_by_except_exception():
    from explbench.protocol.unit import UnitTimeout, default_timeout, time_limit

    t0 = time.perf_counter()
    with pytest.raises(UnitTimeout, match="0.2 s"):
        with time_limit(0.2):
            try:
                while True:
                    pass
            except Exception:  # an explainer's own handler must not swallow it
                pytest.fail("caught by except Exception")
    assert time.perf_counter() - t0 < 5
    with time_limit(0):  # no limit
        time.sleep(0.01)
    assert default_timeout(256) == pytest.approx(145.6) and default_timeout(None) == 1800


# -- 4. a stale model ----------------------------------------------------------------------------


def test_changed_model_without_model_hash_makes_new_cases(tmp_path, capsys, fresh_cache):
    weights = tmp_path / "model.json"
    weights.write_text(json.dumps({"segment": 5}))
    s = suite(tmp_path, tables=f'[task-params]\nweights = "{weights}"\n')
    rc, _, err = run_toy(capsys, s, tmp_path / "A")
    assert rc == 0 and "toy-lift: 6 cases generated" in err, err
    rc, _, err = run_toy(capsys, s, tmp_path / "B")
    assert rc == 0 and "from the cache" in err, err  # same model: the cache serves
    weights.write_text(json.dumps({"segment": 9}))  # the user retrains in place
    rc, _, err = run_toy(capsys, s, tmp_path / "C")
    assert rc == 0 and "toy-lift: 6 cases generated" in err, err
    from explbench.core.cases import load_cases

    (case_file,) = (tmp_path / "C" / "cases").glob("*.npz")
    cases, _ = load_cases(case_file)
    assert {c.info["segment"] for c in cases} == {9}
    rc, _, err = run(capsys, "run", "--resume", str(tmp_path / "A"), "--quiet")
    assert rc == 2 and "task 'toy-one-segment' changed since" in err and "model '" in err, err


def test_model_that_cannot_be_hashed_is_not_cached(tmp_path, capsys, fresh_cache):
    weights = tmp_path / "model.json"
    weights.write_text(json.dumps({"segment": 5, "opaque": True}))
    s = suite(tmp_path, tables=f'[task-params]\nweights = "{weights}"\n')
    rc, _, err = run_toy(capsys, s, tmp_path / "A")
    assert rc == 0, err
    assert "no state_dict to hash" in err and "generated for this run only" in err
    assert not (fresh_cache / "cases").exists() or not list((fresh_cache / "cases").glob("*.npz"))
    assert len(list((tmp_path / "A" / "cases").glob("*.npz"))) == 1
    rc, _, err = run_toy(capsys, s, tmp_path / "B")
    assert rc == 0 and "6 cases generated" in err, err


# -- 5. bad suite values -------------------------------------------------------------------------


@pytest.mark.parametrize("top,generator,key", [
    ('split = "tset"', "n = 6", "split"),
    ("", 'n = 6\nlift = "big"', "lift"),
    ("", "n = 6\nlift = -1.0", "lift"),
    ('budget = "lots"', "n = 6", "budget"),
    ("budget = -10", "n = 6", "budget"),
    ("", "n = -5", "n"),
    ("n_boot = -1", "n = 6", "n_boot"),
    ("agnostic_samples = -1", "n = 6", "agnostic_samples"),
    ("timeout = -1", "n = 6", "timeout"),
    ('aggregation = "median"', "n = 6", "aggregation"),
    ('extra_aggregations = ["mean"]', "n = 6", "extra_aggregations"),
    ("power_discordance = 2", "n = 6", "power_discordance"),
    ("", "n = 6\nper_cluster = 0", "per_cluster"),
    ('segmentation = "grid:30x4"', "n = 6", "segmentation"),
])
def test_bad_suite_values_name_the_key_and_write_nothing(tmp_path, capsys, top, generator, key):
    s = suite(tmp_path, top=top, generator=generator)
    out = tmp_path / "A"
    rc, _, err = run_toy(capsys, s, out)
    assert rc == 2, err
    assert f"key '{key}'" in err and "Traceback" not in err, err
    assert not out.exists()


def test_grid_is_checked_against_the_real_domain():
    from explbench.run import suite_files as suites

    c = suites.load("smoke")
    c.segmentation = "grid:10x4"  # 80 x 115: valid, though not on an 8 x 8 domain
    suites.validate(c)
    c.segmentation = "grid:200x4"
    with pytest.raises(suites.SuiteError, match=r"key 'segmentation'.*\(80, 115\)"):
        suites.validate(c)


def test_zero_cases_exit_non_zero_with_the_reason(tmp_path, capsys):
    s = suite(tmp_path, generator="n = 4\nlift = 0.0001")  # too small to flip anything
    rc, _, err = run_toy(capsys, s, tmp_path / "A")
    assert rc == 2 and "no generator produced a case" in err, err
    assert "delete" in err and (tmp_path / "A" / "cases.json").exists()


def test_invalid_or_damaged_stored_config_says_how_to_start_over(tmp_path, capsys):
    s = suite(tmp_path)
    rc, _, err = run_toy(capsys, s, tmp_path / "A")
    assert rc == 0, err
    config = tmp_path / "A" / "config.json"
    stored = json.loads(config.read_text())
    stored["suite"]["split"] = "tset"
    config.write_text(json.dumps(stored))
    rc, _, err = run(capsys, "run", "--resume", str(tmp_path / "A"))
    assert rc == 2 and "key 'split'" in err and "start over with a new --out" in err, err
    config.write_text("{not json")
    rc, _, err = run(capsys, "run", "--resume", str(tmp_path / "A"))
    assert rc == 2 and f"{config} is not valid JSON" in err and "Traceback" not in err, err


# -- 6. errors a user meets ----------------------------------------------------------------------


def test_devices_the_machine_lacks_are_one_line_errors(capsys):
    rc, _, err = run(capsys, "run", "--device", "gpu")
    assert rc == 2 and "unknown device 'gpu'" in err and "--device cpu" in err
    import torch

    if not torch.cuda.is_available():
        rc, _, err = run(capsys, "run", "--device", "cuda")
        assert rc == 2 and "no CUDA GPU" in err and "--device cpu" in err


def test_weights_folder_from_train_is_accepted_and_a_bad_one_fails_before_work(tmp_path, capsys):
    from explbench.tasks.svd.task import DEFAULT_WEIGHTS

    trained = tmp_path / "my-model"
    trained.mkdir()
    shutil.copy(DEFAULT_WEIGHTS, trained / "model.safetensors")
    assert cli_common.resolve_weights(str(trained)) == str(trained / "model.safetensors")
    assert cli_common._task_params([f"weights={trained}", "song_duration=10"]) == {
        "weights": str(trained / "model.safetensors"), "song_duration": 10}
    empty = tmp_path / "empty"
    empty.mkdir()
    t0 = time.perf_counter()
    rc, _, err = run(capsys, "evaluate", "svd-synth", "--weights", str(empty), "--n", "400")
    assert rc == 2 and "holds no weights file" in err and "Traceback" not in err, err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    rc, _, err = run(capsys, "evaluate", "svd-synth", "--weights", str(tmp_path / "junk.pt"), "--n", "400")
    assert rc == 2 and "cannot load the weights" in err and "Traceback" not in err, err
    rc, _, err = run(capsys, "evaluate", "svd-synth", "--task-param", f"weights={empty}", "--n", "400")
    assert rc == 2 and "holds no weights file" in err, err  # --task-param reaches evaluate too
    rc, _, err = run(capsys, "evaluate", "svd-synth", "--task-param", "no-equals-sign")
    assert rc == 2 and "write KEY=VALUE" in err, err
    assert time.perf_counter() - t0 < 120  # refused before any excerpt is rendered


# -- 7. resume without surprises -----------------------------------------------------------------


def test_resume_refuses_flags_it_would_ignore_and_keeps_finished_at(tmp_path, capsys):
    s = suite(tmp_path)
    rc, _, err = run_toy(capsys, s, tmp_path / "A")
    assert rc == 0, err
    a = tmp_path / "A"
    for flags in (["--explainers", "random"], ["--seed", "3"], ["--suite", "smoke"],
                  ["--task-param", "weights=x"]):
        rc, _, err = run(capsys, "run", "--resume", str(a), *flags)
        assert rc == 2 and f"{flags[0]} would be ignored" in err, (flags, err)
    finished = json.loads((a / "provenance.json").read_text())["finished_at"]
    assert len(finished.split(".")[-1]) >= 6  # sub-second precision (microseconds)
    metrics = (a / "metrics.csv").read_bytes()
    rc, _, err = run(capsys, "run", "--resume", str(a), "--quiet")
    assert rc == 0 and "0 units to go" in err, err
    assert json.loads((a / "provenance.json").read_text())["finished_at"] == finished
    assert (a / "metrics.csv").read_bytes() == metrics


def test_resume_in_a_fresh_process_remembers_the_plugin_and_names_a_missing_one(tmp_path, capsys):
    moved = tmp_path / "my_plugin.py"
    shutil.copy(PLUGIN, moved)
    s = suite(tmp_path)
    out = tmp_path / "A"
    res = subprocess.run([PY, "-m", "explbench.cli", "run", "--suite", s, "--plugin", str(moved),
                          "--out", str(out), "--quiet"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    (out / "metrics.csv").unlink()
    moved.unlink()  # the user's file is gone; the run keeps a copy
    res = subprocess.run([PY, "-m", "explbench.cli", "run", "--resume", str(out), "--quiet"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert f"the plug-in {moved} is gone; loading the copy kept in the run" in res.stderr
    for copy in (out / "plugins").glob("*.py"):
        copy.unlink()
    res = subprocess.run([PY, "-m", "explbench.cli", "run", "--resume", str(out), "--quiet"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 2
    assert f"started with the plug-in {moved}, which no longer exists" in res.stderr
    assert "--plugin" in res.stderr and "Traceback" not in res.stderr


# -- 8. read-only and full disks -----------------------------------------------------------------


def _namespace_ok() -> bool:
    if not shutil.which("unshare") or sys.platform != "linux":
        return False
    probe = subprocess.run(["unshare", "-Urm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt || "
                            "mount -t tmpfs -o size=64k tmpfs /tmp"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _namespace_ok(), reason="needs unshare and tmpfs mounts in a user namespace")
def test_read_only_and_full_disk_are_one_line_errors_and_a_full_disk_resumes(tmp_path, capsys):
    gate = tmp_path / "gate"
    s = suite(tmp_path, ("toy-slow", "random"), tables=f'[explainer.toy-slow]\ngate = "{gate}"\n')
    rc, _, err = run_toy(capsys, s, tmp_path / "uninterrupted")
    assert rc == 0, err
    ro, full = tmp_path / "ro", tmp_path / "full"
    ro.mkdir()
    full.mkdir()
    run_cmd = f'"{PY}" -m explbench.cli run --suite "{s}" --plugin "{PLUGIN}" --quiet'
    script = f"""
set -u
mount -t tmpfs -o size=1m tmpfs "{ro}" && mount -o remount,ro "{ro}" || exit 90
{run_cmd} --out "{ro}/run" 2> "{tmp_path}/ro.err"; echo $? > "{tmp_path}/ro.rc"
mount -t tmpfs -o size=2m tmpfs "{full}" || exit 91
touch "{gate}"
{run_cmd} --out "{full}/run" 2> "{tmp_path}/full.err" &
pid=$!
for i in $(seq 600); do [ -e "{full}/run/cases.json" ] && break; sleep 0.2; done
sleep 0.5
dd if=/dev/zero of="{full}/filler" bs=4k 2>/dev/null
rm "{gate}"
wait $pid; echo $? > "{tmp_path}/full.rc"
rm "{full}/filler"
"{PY}" -m explbench.cli run --resume "{full}/run" --quiet 2> "{tmp_path}/resume.err"
echo $? > "{tmp_path}/resume.rc"
cp "{full}/run/metrics.csv" "{tmp_path}/resumed.csv" 2>/dev/null
exit 0
"""
    res = subprocess.run(["unshare", "-Urm", "sh", "-c", script], capture_output=True, text=True,
                         timeout=1200, env={**os.environ})
    assert res.returncode == 0, res.stdout + res.stderr
    ro_err = (tmp_path / "ro.err").read_text()
    assert (tmp_path / "ro.rc").read_text().strip() == "2", ro_err
    assert "explbench: error: " in ro_err and "Read-only file system" in ro_err
    assert "choose a writable place with --out" in ro_err and "Traceback" not in ro_err
    full_err = (tmp_path / "full.err").read_text()
    assert (tmp_path / "full.rc").read_text().strip() == "2", full_err
    assert "No space left on device" in full_err and "the disk is full" in full_err
    assert f"run --resume {full}/run" in full_err and "Traceback" not in full_err
    resume_err = (tmp_path / "resume.err").read_text()
    assert (tmp_path / "resume.rc").read_text().strip() == "0", resume_err
    assert (tmp_path / "resumed.csv").read_bytes() == (tmp_path / "uninterrupted" / "metrics.csv").read_bytes()


def test_a_suite_name_never_becomes_a_path(tmp_path, capsys, fresh_cache, monkeypatch):
    """A suite named "../../escaped" run without --out stays in ./runs/ (it climbed two levels)."""
    text = Path(suite(tmp_path)).read_text().replace('name = "faults"', 'name = "../../escaped"')
    s = tmp_path / "escaping.toml"
    s.write_text(text)
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    rc, _, err = run(capsys, "run", "--suite", str(s), "--plugin", str(PLUGIN), "--quiet")
    assert rc == 0, err
    made = [p for p in (work / "runs").iterdir()]
    assert len(made) == 1 and made[0].name.startswith("___.._escaped-")
    assert not any(p.name.startswith("escaped") for p in tmp_path.rglob("*") if p.is_dir())


def test_the_identity_sees_code_edits_but_not_comments(tmp_path):
    """A changed to_domain gives another run identity (and new cases); a comment changes neither
    the identity nor any case's content."""
    import subprocess
    import sys

    src = PLUGIN.read_text()
    original = tmp_path / "plugin.py"
    original.write_text(src)
    s = suite(tmp_path)
    env = {**os.environ, "EXPLBENCH_CACHE": str(tmp_path / "cache")}

    def go(plugin: Path, out: str) -> tuple[str, dict]:
        res = subprocess.run([sys.executable, "-m", "explbench.cli", "run", "--suite", s, "--plugin",
                              str(plugin), "--out", str(tmp_path / out), "--quiet"], env=env,
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        return res.stderr, json.loads((tmp_path / out / "provenance.json").read_text())["identity"]

    err, first = go(original, "A")
    assert "toy-lift: 6 cases generated" in err
    commented = tmp_path / "commented" / "plugin.py"
    commented.parent.mkdir()
    commented.write_text(src.replace("    def to_domain(self, audio: torch.Tensor) -> torch.Tensor:\n",
                                     "    def to_domain(self, audio: torch.Tensor) -> torch.Tensor:\n"
                                     "        # the domain is the waveform, folded\n"))
    err, again = go(commented, "B")
    # the file also holds the generator, whose source keys the cache: made again, same content
    same = lambda a, b: {k: v for k, v in a.items() if k != "batch_size"} == \
        {k: v for k, v in b.items() if k != "batch_size"}  # noqa: E731 - measured per run
    assert same(again, first)
    hashes = lambda out: json.loads((tmp_path / out / "manifest.json").read_text())["generators"]  # noqa: E731
    assert hashes("B") == hashes("A")
    edited = tmp_path / "edited" / "plugin.py"
    edited.parent.mkdir()
    old = "        return audio.reshape(audio.shape[0], *SHAPE)\n"
    assert old in src
    edited.write_text(src.replace(old, "        return -audio.reshape(audio.shape[0], *SHAPE)\n"))
    err, changed = go(edited, "C")
    assert "toy-lift: 6 cases generated" in err, err
    assert changed["model_code"] != first["model_code"] and changed["model"] == first["model"]
