"""Provenance of a run: package versions, machine, git revision, task identity; and where caches live."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path


PACKAGES = ("explbench", "torch", "numpy", "scipy", "pandas", "scikit-learn", "librosa", "captum",
            "shap", "lime", "music21", "espeakng-loader", "tinysoundfont")


def cache_dir() -> Path:
    """Root of explbench's caches: ``$EXPLBENCH_CACHE`` or ``~/.cache/explbench``."""
    return Path(os.environ.get("EXPLBENCH_CACHE", Path.home() / ".cache" / "explbench"))


def git_revision() -> str | None:
    """The explbench checkout's git revision (with ``-dirty`` when modified), if it is one."""
    here = Path(__file__).resolve().parents[2]
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
                 "model_hash": task.model_hash(), "data_version": task.data_version(),
                 "domain_shape": [int(n) for n in getattr(task, "domain_shape", ()) or ()],
                 "domain_axes": [str(a) for a in getattr(task, "domain_axes", ()) or ()]},
        "seed": config.get("seed"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
    }
