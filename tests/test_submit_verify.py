"""``explbench submit`` and ``explbench verify`` on a real tiny run (DESIGN §11).

One run (svd-synth, seed 0, a plug-in explainer and random on 6 spectrogram attacks) is made
once, from an empty case cache (rendered songs are shared with the other tests); the same
folder without the plug-in's records is "the board". An honest submission verifies and its re-run agrees; a tampered record, a changed
plug-in, another case set and a file that is no submission are each refused, by name.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from explbench.cli import main

#: a whole run or more: `pytest -m 'not slow'` leaves it out of a quick loop; `make test` runs it
pytestmark = pytest.mark.slow

PLUGIN = '''
import numpy as np
import torch

from explbench import Explainer, Explanation, register_explainer


SCALE = 1.0


@register_explainer("energy-probe")
class EnergyProbe(Explainer):
    """Weight = drop of the target probability when one segment is set to the mean, plus a
    little seeded noise (so the re-run also checks that the seed is reproduced)."""

    def explain(self, model, x, target, *, segments, budget, rng, context):
        baseline = torch.full_like(x, float(x.mean()))
        all_but_one = 1.0 - np.eye(segments.d, dtype=np.float32)
        p = model.predict(torch.cat([x[None], segments.compose(x, all_but_one, baseline)]))[:, target]
        noise = 1e-3 * rng.standard_normal(segments.d)
        return Explanation(weights=SCALE * (p[0] - p[1:]).double().numpy() + noise)
'''

SUITE = '''
name = "tiny-submit"
task = "svd-synth"
seed = {seed}
budget = 64
n_boot = 200
agnostic_samples = 0
segmentation = "grid:5x4"
explainers = {explainers}

[generator.cw-spectrogram]
n = {n}
'''


def _suite(root: Path, name: str, seed: int, explainers: list[str], n: int) -> Path:
    path = root / f"{name}.toml"
    path.write_text(SUITE.format(seed=seed, explainers=json.dumps(explainers), n=n))
    return path


def _run(suite: Path, out: Path, *plugin: str) -> None:
    from explbench.api import registry

    args = ["run", "--suite", str(suite), "--out", str(out), "--quiet", "--batch-size", "16"]
    try:
        assert main(args + [a for p in plugin for a in ("--plugin", p)]) == 0
    finally:
        registry.explainers.unregister("energy-probe")  # verify loads the archive's copy


def _as_bundle(run: Path, out: Path, drop: str) -> Path:
    """A committed-bundle-like copy of ``run`` without the explainer ``drop``."""
    out.mkdir()
    for name in ("provenance.json", "cases.json", "manifest.json"):
        shutil.copy(run / name, out / name)
    config = json.loads((run / "config.json").read_text())
    config["plugins"] = []
    config["suite"]["explainers"] = [e for e in config["suite"]["explainers"] if e != drop]
    (out / "config.json").write_text(json.dumps(config, indent=2))
    lines = (run / "records.jsonl").read_text().splitlines(keepends=True)
    (out / "records.jsonl").write_text("".join(x for x in lines if json.loads(x)["explainer"] != drop))
    rows = (run / "metrics.csv").read_text().splitlines(keepends=True)
    (out / "metrics.csv").write_text("".join(rows[:1] + [r for r in rows[1:] if r.split(",")[4] != drop]))
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("submit")
    (root / "cache").mkdir()
    if os.environ.get("EXPLBENCH_CACHE"):  # rendered songs are no cases: share them (conftest's
        shared_songs = Path(os.environ["EXPLBENCH_CACHE"]) / "songs"  # cache), make the cases here
        shared_songs.mkdir(parents=True, exist_ok=True)
        (root / "cache" / "songs").symlink_to(shared_songs)
    before = os.environ.get("EXPLBENCH_CACHE")
    os.environ["EXPLBENCH_CACHE"] = str(root / "cache")
    try:
        (root / "my_probe.py").write_text(PLUGIN)
        run = root / "runs" / "mine"
        _run(_suite(root, "mine", 0, ["energy-probe", "random"], 6), run, str(root / "my_probe.py"))
        board = _as_bundle(run, root / "board", drop="energy-probe")
        sub = root / "mine.zip"
        assert main(["submit", str(run), "--out", str(sub), "--against", str(board)]) == 0
        yield {"root": root, "run": run, "board": board, "sub": sub}
    finally:
        if before is None:
            os.environ.pop("EXPLBENCH_CACHE", None)
        else:
            os.environ["EXPLBENCH_CACHE"] = before


def _verify(capsys, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["verify", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def _rewrite(src: Path, dst: Path, edit, rehash: bool = False) -> Path:
    """A copy of a submission with ``edit(files)`` applied to its members (bytes by name);
    with ``rehash``, submission.json is made consistent with the edit, as a cheater would."""
    with zipfile.ZipFile(src) as z:
        files = {n: z.read(n) for n in z.namelist()}
    edit(files)
    if rehash:
        from explbench.results.submission import record_line, record_name, sha256_hex, submission_digest
        from explbench.results.verify import recompute_metrics

        meta = json.loads(files.pop("submission.json"))
        records = [json.loads(x) for x in files["records.jsonl"].splitlines()]
        files["metrics.csv"] = recompute_metrics(records, json.loads(files["config.json"])).encode()
        meta["files"] = {n: sha256_hex(b) for n, b in sorted(files.items())}
        meta["records"] = {record_name(r): sha256_hex(record_line(r)) for r in records}
        meta["digest"] = submission_digest(meta["files"], meta["records"])
        files["submission.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(dst, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return dst


def _edit_record(case_id: str, change):
    def edit(files):
        out = []
        for line in files["records.jsonl"].decode().splitlines():
            rec = json.loads(line)
            if rec["case_id"] == case_id and rec["explainer"] == "energy-probe":
                change(rec)
            out.append(json.dumps(rec, sort_keys=True) + "\n")
        files["records.jsonl"] = "".join(out).encode()
    return edit


def test_the_submission_holds_the_new_explainer_only(world):
    with zipfile.ZipFile(world["sub"]) as z:
        names = set(z.namelist())
        meta = json.loads(z.read("submission.json"))
        records = [json.loads(x) for x in z.read("records.jsonl").splitlines()]
        metrics = z.read("metrics.csv").decode().splitlines()
    assert {"submission.json", "config.json", "provenance.json", "cases.json", "manifest.json",
            "records.jsonl", "metrics.csv"} <= names
    assert meta["explainers"] == ["energy-probe"] and len(records) == 6
    assert {r["explainer"] for r in records} == {"energy-probe"}
    assert all(row.split(",")[4] == "energy-probe" for row in metrics[1:])
    (plugin,) = meta["plugins"]
    assert plugin["file"] in names and plugin["file"].endswith("-my_probe.py")
    assert set(meta["files"]) == names - {"submission.json"}
    again = world["root"] / "again.zip"  # the same run gives the same bytes
    assert main(["submit", str(world["run"]), "--out", str(again), "--against", str(world["board"])]) == 0
    assert again.read_bytes() == world["sub"].read_bytes()


def test_an_honest_submission_verifies_and_its_rerun_agrees(world, capsys):
    code, out = _verify(capsys, str(world["sub"]), "--against", str(world["board"]))
    assert code == 0, out
    for check in ("archive", "records", "metrics", "cases", "identity", "plug-ins", "rescore", "rerun"):
        assert f"ok      {check}:" in out, (check, out)
    # 10 % of 6 units is less than 5: 5 are drawn, on cases regenerated from the cache
    assert "re-ran 5 of 6 explanations: 5 agree on top-3, 5 within" in out, out


def test_a_tampered_record_is_named(world, capsys):
    def flip(rec):
        rec["flip_at_k"][2] = not rec["flip_at_k"][2]

    bad = _rewrite(world["sub"], world["root"] / "flip.zip", _edit_record("cw-spectrogram/0001", flip))
    code, out = _verify(capsys, str(bad), "--against", str(world["board"]), "--rerun", "0")
    assert code == 1, out
    assert "FAILED  records" in out and "record (cw-spectrogram/0001 | energy-probe)" in out, out
    assert "FAILED  metrics" in out and "flip-rate k=3" in out, out


def test_a_consistently_rehashed_record_edit_is_caught_by_rescoring(world, capsys):
    def nudge(rec):  # its flips, with the hashes and metrics made to match
        rec["flip_at_k"] = [True] * len(rec["flip_at_k"])

    bad = _rewrite(world["sub"], world["root"] / "cheat.zip",
                   _edit_record("cw-spectrogram/0002", nudge), rehash=True)
    code, out = _verify(capsys, str(bad), "--against", str(world["board"]))
    assert code == 1, out
    assert "ok      archive" in out and "ok      metrics" in out, out
    assert "FAILED  rescore" in out, out
    assert "record (cw-spectrogram/0002 | energy-probe): flip_at_k" in out, out


def test_a_changed_plugin_is_named(world, capsys):
    with zipfile.ZipFile(world["sub"]) as z:
        plugin = json.loads(z.read("submission.json"))["plugins"][0]["file"]

    def edit(files):
        files[plugin] = files[plugin].replace(b"SCALE = 1.0", b"SCALE = -1.0")

    bad = _rewrite(world["sub"], world["root"] / "plugin.zip", edit)
    # every unit, on the cases the run folder keeps
    code, out = _verify(capsys, str(bad), "--against", str(world["board"]), "--rerun", "1",
                        "--cases", str(world["run"]))
    assert code == 1, out
    assert "FAILED  plug-ins" in out and f"plug-in {plugin}: SHA-256" in out, out
    assert "FAILED  rerun" in out and f"energy-probe (plug-in {plugin}): top-3" in out, out
    assert "re-ran 6 of 6 explanations: 0 agree on top-3, 0 within" in out, out
    assert "ok      rescore" in out, out  # the records themselves are what the run wrote


def test_another_case_set_is_named(world, capsys):
    other = world["root"] / "runs" / "seed1"
    _run(_suite(world["root"], "seed1", 1, ["random"], 2), other)
    code, out = _verify(capsys, str(world["sub"]), "--against", str(other), "--rerun", "0")
    assert code == 1, out
    assert "FAILED  cases" in out and "generator cw-spectrogram:" in out, out


def test_what_is_no_submission_is_unusable_input(world, capsys):
    text = world["root"] / "notes.zip"
    text.write_text("not a zip")
    code, out = _verify(capsys, str(text), "--against", str(world["board"]))
    assert code == 2 and "explbench: error:" in out and "not an explbench submission" in out, out
    other = world["root"] / "other.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("readme.txt", "hello")
    code, out = _verify(capsys, str(other), "--against", str(world["board"]))
    assert code == 2 and "holds no submission.json" in out, out
    code, out = _verify(capsys, str(world["sub"]), "--against", str(world["root"] / "nowhere"))
    assert code == 2 and "explbench: error:" in out and "no such bundle" in out, out
