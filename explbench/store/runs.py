"""Loading finished run folders: one place that the leaderboard, ``compare`` and ``report`` use.

A run folder (written by ``explbench run``) holds ``config.json`` (the resolved suite),
``provenance.json``, ``cases.json`` (per generator its case-cache key, case count and attack
statistics), ``records.jsonl`` (one protocol record per (case, explainer)), ``metrics.csv`` and
``timing.csv``; it may hold ``cases/<key>.npz`` (the cases themselves), ``sanity.csv`` and
``explanations/`` (WAV files). :func:`load_run` reads the tables and records once;
:func:`collect` finds runs under folders; :func:`newest_sources` says which run supplies each
explainer when several hold it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from explbench.store.run_store import RunStore

#: generator label of values pooled over every case of a run (costs)
ALL = "all"


class NotARun(FileNotFoundError):
    """A folder that is not a (finished) run folder."""


@dataclass
class Run:
    """A finished run folder, loaded.

    Attributes
    ----------
    folder : Path
    run_id : str
    suite : dict
        The resolved suite (``config.json["suite"]``).
    provenance : dict
    cases : dict
        ``cases.json``: per generator its ``cache_key``, ``n_cases`` and ``stats``.
    metrics : DataFrame
        metrics.csv (tidy: generator, direction, explainer, metric, k, value, ci_low, ci_high,
        n and, from runs that have it, n_clusters).
    timing : DataFrame
        timing.csv (may be empty).
    records : DataFrame
        records.jsonl, one row per (case, explainer) (the last record wins for a duplicate),
        with a ``cluster`` column (the record's own, else its ``case_id``) and a boolean
        ``oracle`` column.
    finished : float
        When the run finished, UNIX seconds (what "newest" means).
    """

    folder: Path
    run_id: str
    suite: dict
    provenance: dict
    cases: dict
    metrics: pd.DataFrame
    timing: pd.DataFrame
    records: pd.DataFrame
    finished: float
    oracles: set[str] = field(default_factory=set)

    @property
    def task(self) -> str:
        return str(self.suite.get("task"))

    @property
    def seed(self) -> int:
        return int(self.suite.get("seed", 0) or 0)

    @property
    def explainers(self) -> list[str]:
        return sorted(self.metrics["explainer"].dropna().astype(str).unique())

    def costs(self, explainer: str, what: str) -> np.ndarray:
        """``seconds`` or ``queries`` of the explainer's successful explanations, shape (n,)."""
        r = self.records
        if r.empty or what not in r.columns:
            return np.zeros(0)
        sel = r[(r["explainer"] == explainer) & (r["status"] == "ok")][what]
        return pd.to_numeric(sel, errors="coerce").dropna().to_numpy(dtype=float)


def _finished_at(provenance: dict, folder: Path) -> float:
    """``provenance["finished_at"]`` in UNIX seconds when recorded, else the modification time of
    metrics.csv (meaningless for runs copied or checked out by git)."""
    stamp = provenance.get("finished_at")
    if stamp:
        try:
            return datetime.fromisoformat(str(stamp)).timestamp()
        except ValueError:
            pass
    return (folder / "metrics.csv").stat().st_mtime


def records_frame(records: list[dict]) -> pd.DataFrame:
    """Protocol records as a DataFrame with the columns every reader relies on.

    Parameters
    ----------
    records : list of dict
        As read from records.jsonl.

    Returns
    -------
    DataFrame
        One row per (case_id, explainer), the last record winning; ``cluster`` filled with the
        case id where a record has none (records written before clusters existed); ``oracle``
        boolean; ``status`` filled with ``"ok"`` where missing.
    """
    df = pd.DataFrame(records)
    if df.empty:
        return pd.DataFrame(columns=["case_id", "generator", "direction", "explainer", "status",
                                     "cluster", "oracle"])
    for col in ("case_id", "explainer", "generator"):
        if col not in df.columns:
            raise ValueError(f"records.jsonl lacks the field {col!r}; the run was not written by "
                             f"'explbench run'")
    df["case_id"] = df["case_id"].astype(str)
    df["explainer"] = df["explainer"].astype(str)
    df = df.drop_duplicates(["case_id", "explainer"], keep="last").reset_index(drop=True)
    if "cluster" not in df.columns:
        df["cluster"] = df["case_id"]
    else:
        missing = df["cluster"].isna()
        df["cluster"] = df["cluster"].astype(object).where(~missing, df["case_id"]).astype(str)
    df["oracle"] = df["oracle"].fillna(False).astype(bool) if "oracle" in df.columns else False
    df["status"] = df["status"].fillna("ok") if "status" in df.columns else "ok"
    if "direction" not in df.columns:
        df["direction"] = "all"
    return df


def load_run(folder: str | Path) -> Run:
    """Load one finished run folder.

    Raises
    ------
    NotARun
        When the folder has no config.json (not a run) or no metrics.csv (not finished; the
        message says how to resume it).
    """
    folder = Path(folder)
    store = RunStore(folder)
    if not folder.is_dir():
        raise NotARun(f"{folder} does not exist or is not a folder")
    if not store.exists():
        raise NotARun(f"{folder} is not a run folder (no config.json); pass a folder written by "
                      f"'explbench run', or a folder that contains such run folders")
    if not (folder / "metrics.csv").exists():
        raise NotARun(f"{folder} is a run that has not finished (no metrics.csv); continue it with "
                      f"'explbench run --resume {folder}'")
    config = store.config()
    prov = store.read_json("provenance.json") if (folder / "provenance.json").exists() else {}
    cases = store.read_json("cases.json") if (folder / "cases.json").exists() else {}
    metrics = store.metrics()
    timing_path = folder / "timing.csv"
    try:
        timing = pd.read_csv(timing_path) if timing_path.exists() else pd.DataFrame()
    except pd.errors.EmptyDataError:
        timing = pd.DataFrame()
    records = records_frame(store.records())
    oracles = set(records.loc[records["oracle"], "explainer"]) if not records.empty else set()
    return Run(folder=folder, run_id=str(config.get("run_id", folder.name)),
               suite=config.get("suite", {}) or {}, provenance=prov, cases=cases, metrics=metrics,
               timing=timing, records=records, finished=_finished_at(prov, folder),
               oracles=oracles)


def _run_folders(root: Path) -> list[Path]:
    if (root / "config.json").exists():
        return [root]
    found = (p.parent for p in root.rglob("config.json"))
    return sorted(p for p in found if not any(part.startswith(".") for part in p.relative_to(root).parts))


def collect(paths: str | Path | list[str | Path], task: str | None = None) -> list[Run]:
    """Finished runs in ``paths`` (run folders, or roots such as ``runs/`` searched recursively).

    Parameters
    ----------
    paths : path or list of paths
        A folder given directly that is not a finished run raises :class:`NotARun`; unfinished
        runs found while searching a root are skipped with a warning naming how to resume them.
    task : str, optional
        Keep only runs of this task.

    Returns
    -------
    list of Run
        Oldest first.

    Raises
    ------
    NotARun
        For a bad folder given directly, or when no finished run (of ``task``) is found.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    runs: list[Run] = []
    for p in map(Path, paths):
        if not p.exists():
            raise NotARun(f"{p} does not exist")
        if (p / "config.json").exists():
            runs.append(load_run(p))
            continue
        found = _run_folders(p)
        if not found:
            raise NotARun(f"{p} is not a run folder and contains no run folders (no config.json)")
        for f in found:
            try:
                runs.append(load_run(f))
            except NotARun as exc:
                warnings.warn(f"skipped: {exc}", stacklevel=2)
    if task is not None:
        runs = [r for r in runs if r.task == task]
    if not runs:
        where = ", ".join(str(p) for p in paths)
        raise NotARun(f"no finished runs{f' of task {task!r}' if task else ''} found in {where}")
    return sorted(runs, key=lambda r: (r.finished, r.run_id))


def newest_sources(runs: list[Run]) -> dict[str, Run]:
    """For every explainer, the newest run that holds it (ties broken by run id)."""
    out: dict[str, Run] = {}
    for r in sorted(runs, key=lambda r: (r.finished, r.run_id)):
        for e in r.explainers:
            out[e] = r
    return out


def attack_generators(run: Run) -> list[str]:
    """Generators with flip rates but no known cause, in the suite's order."""
    m = run.metrics
    flips = set(m.loc[m["metric"] == "flip-rate", "generator"].astype(str))
    localised = set(localised_generators(run))
    adv = flips - localised
    order = [g for g in run.suite.get("generators", {}) if g in adv]
    return order + sorted(adv - set(order))


def localised_generators(run: Run) -> list[str]:
    """Generators with a known cause (recovery values), in the suite's order."""
    m = run.metrics
    loc = set(m.loc[m["metric"] == "recovery", "generator"].astype(str))
    order = [g for g in run.suite.get("generators", {}) if g in loc]
    return order + sorted(loc - set(order))


def n_clusters(run: Run, generator: str) -> tuple[int, int]:
    """(cases, clusters) of a generator in the run's records (0, 0 when it has none)."""
    r = run.records
    if r.empty:
        return 0, 0
    sel = r[r["generator"] == generator].drop_duplicates("case_id")
    return int(len(sel)), int(sel["cluster"].nunique())


__all__ = ["ALL", "NotARun", "Run", "attack_generators", "collect", "load_run", "localised_generators", "n_clusters", "newest_sources", "records_frame"]
