"""Run folders: resolved config, provenance, append-only records, metric tables.

Layout of a run folder::

    config.json        the resolved suite (what ran)
    provenance.json    versions, git revision, model hash, data version, seeds, machine
    cases.json         per generator: cache key, case count and generation statistics
    records.jsonl      one JSON object per (case, explainer), appended as each finishes
    metrics.csv        tidy table: run_id, task, generator, direction, explainer, metric, k, value, ci_low, ci_high, n
    timing.csv         wall-clock seconds per explanation (kept apart: they differ between runs)

Nothing is pickled; a run killed at any point keeps every record written before.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd

METRIC_COLUMNS = ["run_id", "task", "generator", "direction", "explainer", "metric", "k",
                  "value", "ci_low", "ci_high", "n"]
PACKAGES = ("explbench", "torch", "numpy", "scipy", "pandas", "scikit-learn", "librosa", "captum",
            "shap", "lime", "music21", "espeakng-loader", "tinysoundfont")


def cache_dir() -> Path:
    """Root of explbench's caches: ``$EXPLBENCH_CACHE`` or ``~/.cache/explbench``."""
    return Path(os.environ.get("EXPLBENCH_CACHE", Path.home() / ".cache" / "explbench"))


def git_revision() -> str | None:
    """The explbench checkout's git revision (with ``-dirty`` when modified), if it is one."""
    here = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (rev + ("-dirty" if dirty else "")) if rev else None


def provenance(task: object, config: dict) -> dict:
    """What produced a run: versions, revision, model, data, seeds, machine."""
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    import torch

    return {
        "packages": versions,
        "python": platform.python_version(),
        "git_revision": git_revision(),
        "task": {"name": getattr(task, "name", None), "version": getattr(task, "version", None),
                 "model_hash": task.model_hash(), "data_version": task.data_version()},
        "seed": config.get("seed"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
    }


class RunStore:
    """One run folder.

    Parameters
    ----------
    folder : Path
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @property
    def records_path(self) -> Path:
        return self.folder / "records.jsonl"

    def exists(self) -> bool:
        return (self.folder / "config.json").exists()

    def create(self, config: dict, prov: dict) -> None:
        """Start a new run; refuses a folder that already holds one (use resume)."""
        if self.exists():
            raise FileExistsError(
                f"{self.folder} already holds a run; continue it with --resume {self.folder} or "
                f"choose another --out")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.write_json("config.json", config)
        self.write_json("provenance.json", prov)

    def write_json(self, name: str, obj: object) -> None:
        """Write a JSON file atomically."""
        tmp = self.folder / f".{name}.tmp"
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
        os.replace(tmp, self.folder / name)

    def read_json(self, name: str) -> dict:
        return json.loads((self.folder / name).read_text())

    def config(self) -> dict:
        if not self.exists():
            raise FileNotFoundError(f"{self.folder} is not a run folder (no config.json)")
        return self.read_json("config.json")

    # -- records ---------------------------------------------------------------------------------

    def records(self) -> list[dict]:
        """Every complete record; a torn last line (from a kill mid-write) is dropped."""
        if not self.records_path.exists():
            return []
        out = []
        with open(self.records_path, "rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    break
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    break
        return out

    def repair(self) -> None:
        """Cut a torn last line so that appending continues on a clean line boundary."""
        p = self.records_path
        if not p.exists():
            return
        data = p.read_bytes()
        good = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                json.loads(line)
            except json.JSONDecodeError:
                break
            good += len(line)
        if good != len(data):
            with open(p, "r+b") as fh:
                fh.truncate(good)

    def done(self) -> set[tuple[str, str]]:
        return {(r["case_id"], r["explainer"]) for r in self.records()}

    def append(self, record: dict) -> None:
        """Append one record as a single write, flushed to disk."""
        line = (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode()
        fd = os.open(self.records_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def write_wav(self, case_id: str, explainer: str, audio, sample_rate: int) -> str:
        """Write a listenable explanation as 16-bit WAV; returns its path relative to the run."""
        import soundfile as sf

        safe = lambda s: "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in s)  # noqa: E731
        rel = Path("explanations") / safe(case_id) / f"{safe(explainer)}.wav"
        path = self.folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.wav")
        sf.write(tmp, audio, sample_rate, subtype="PCM_16")
        os.replace(tmp, path)
        return str(rel)

    # -- tables ----------------------------------------------------------------------------------

    def write_csv(self, name: str, df: pd.DataFrame) -> Path:
        """Write a table with a fixed float format so equal numbers give equal bytes."""
        path = self.folder / name
        tmp = self.folder / f".{name}.tmp"
        df.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
        os.replace(tmp, path)
        return path

    def metrics(self) -> pd.DataFrame:
        path = self.folder / "metrics.csv"
        if not path.exists():
            raise FileNotFoundError(f"{self.folder} has no metrics.csv; the run has not finished "
                                    f"(continue it with --resume {self.folder})")
        return pd.read_csv(path, dtype={"k": "Int64"})
