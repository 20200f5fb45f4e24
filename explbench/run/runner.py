"""Running a suite: cases once per generator (cached), then every (case, explainer) unit.

:func:`execute` is the whole run in one process. Its pieces are public for other executors:
:func:`prepare` builds and checks everything a run needs before it writes anything,
:func:`unit_state` builds what :func:`explbench.protocol.unit.evaluate_unit` needs in any process,
:func:`pending_units` says which units are left, :func:`write_unit` appends one unit's records
(the writer holds the run folder's lock) and :func:`finish` aggregates.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import pandas as pd
from tqdm import tqdm

from explbench.api import registry
from explbench.store.run_store import METRIC_COLUMNS, RunStore
from explbench.store.provenance import provenance
from explbench.run.suite import SuiteConfig, _generator_order
from explbench.protocol.unit import (evaluate_unit,
                            params_of)
from explbench.api.metric import HEADLINE_K
from explbench.run.case_pack import Pack
from explbench.run.manifest import MANIFEST_FILE, build_manifest
from explbench.run.identity import IDENTITY_KEYS, run_identity
from explbench.run.prepare import Log, Prepared, RunError, prepare
from explbench.run.case_cache import build_cases, power_statement
from explbench.run.loop import WorkerSpec, _context_or_error, _units_elsewhere, choose_batch_size, make_scorer, pending_units, resolve_timeout, unit_state, write_unit


def run_id(config: SuiteConfig) -> str:
    """Deterministic id: suite name and a hash of the resolved config."""
    blob = json.dumps(config.to_dict(), sort_keys=True).encode()
    return f"{config.name}-{hashlib.sha256(blob).hexdigest()[:8]}"


# -- preparing a run -----------------------------------------------------------------------------


# -- worker processes ----------------------------------------------------------------------------


# -- the whole run -------------------------------------------------------------------------------


@dataclass
class RunResult:
    folder: Path
    metrics: pd.DataFrame
    timing: pd.DataFrame
    n_failed: int
    n_written: int = 0


def _plugins_entry(store: RunStore, plugins: Iterable[str | Path], previous: list[dict]) -> list[dict]:
    """The run's plug-in list: those loaded now (copied into the run), then earlier ones whose
    file name was not given again."""
    now = [store.keep_plugin(Path(p)) for p in plugins]
    names = {Path(p["path"]).name for p in now}
    return now + [p for p in previous if Path(p["path"]).name not in names]


def execute(config: SuiteConfig, out: Path, *, resume: bool = False, device: str = "cpu",
            progress: bool = True, log: Log = print, batch_size: int | None = None,
            timeout: float | None = None, retry_failed: bool = False,
            plugins: Iterable[str | Path] = (), executor: object | None = None,
            cases: Pack | None = None) -> RunResult:
    """Run (or resume) a suite into ``out`` and write its metric tables.

    Everything is checked before anything is written (:func:`prepare`); the run folder is then
    locked for the life of the run (:class:`explbench.store.lock.RunLock`).

    Parameters
    ----------
    config : SuiteConfig
    out : Path
        The run folder.
    resume : bool
        Continue the run in ``out`` (its stored suite must equal ``config``).
    device : str
    batch_size : int, optional
        Pins the classifier's batch size (else measured once per machine and model).
    timeout : float, optional
        Seconds per explanation, overriding the suite's (0: no limit).
    retry_failed : bool
        On resume, run failed units again.
    plugins : paths
        Plug-in files loaded for this run; copied into ``RUN/plugins`` and listed in
        ``config.json`` so that a resume loads them again.
    cases : Pack, optional
        Run on exactly these cases (:func:`explbench.run.case_pack.load_pack`, verified against
        its manifest) instead of generating them.
    executor : explbench.run.executors.Executor, optional
        Where units are computed (default: here, one after the other). This process stays the
        one writer; results are keyed by unit, so the executor never changes ``metrics.csv``.

    Raises
    ------
    RunError
        When no generator produced a case (the folder keeps cases.json), or a resumed run's
        model changed.
    explbench.store.lock.RunLocked
        When another live process writes ``out``.
    """
    out = Path(out)
    prep = prepare(config, device, log)
    store = RunStore(out)
    created = not out.exists()
    try:
        with store.lock(log):
            return _execute_locked(prep, store, resume=resume, progress=progress, log=log,
                                   batch_size=batch_size, timeout=timeout,
                                   retry_failed=retry_failed, plugins=list(plugins),
                                   executor=executor, pack=cases)
    finally:
        if created and out.is_dir() and not store.exists():
            import shutil

            shutil.rmtree(out, ignore_errors=True)


def _execute_locked(prep: Prepared, store: RunStore, *, resume: bool, progress: bool, log: Log,
                    batch_size: int | None, timeout: float | None, retry_failed: bool,
                    plugins: list, executor: object | None = None,
                    pack: Pack | None = None) -> RunResult:
    config = prep.config
    if resume:
        stored = store.config()
        if SuiteConfig.from_dict(stored["suite"]).to_dict() != config.to_dict():
            raise ValueError(f"{store.folder} was started with a different configuration; resume it "
                             f"without changing the suite, or start a new run with --out")
        rid = stored.get("run_id") or run_id(config)
        prov = store.read_json("provenance.json") if (store.folder / "provenance.json").exists() else {}
        recorded = prov.get("identity") or {}
        choice, source = _resumed_batch_size(recorded, batch_size, store.folder, prep)
        if not recorded:  # a run stopped while it was created, or written before identities
            log(f"note: {store.folder} has no run identity; writing it again")
            prov = {**_new_provenance(prep, int(choice)), **{k: v for k, v in prov.items() if k != "identity"}}
            prov["identity"] = _new_provenance(prep, int(choice))["identity"]
            store.write_json("provenance.json", prov)
        _check_same_identity(prov["identity"], prep, int(choice), store.folder)
        entry = _plugins_entry(store, plugins, stored.get("plugins") or [])
        if entry != (stored.get("plugins") or []):
            store.write_json("config.json", {**stored, "plugins": entry})
        store.repair(log)
    else:
        rid = run_id(config)
        choice, source = choose_batch_size(prep, batch_size)
        store.create({"run_id": rid, "suite": config.to_dict(),
                      "plugins": _plugins_entry(store, plugins, [])}, _new_provenance(prep, int(choice)))

    bs = int(choice)
    scorer = make_scorer(prep, bs, log)
    cases_by_gen, info = build_cases(config, prep.task, prep.segments, progress=progress, log=log,
                                     store=store, identity=prep.identity, pack=pack)
    store.write_json("cases.json", info)
    ident = store.read_json("provenance.json")["identity"]
    store.write_json(MANIFEST_FILE, build_manifest({k: v for k, v in ident.items() if k != "batch_size"},
                                                   cases_by_gen, info))
    cases = [c for name in _generator_order(config.generators) for c in cases_by_gen[name]]
    if not cases:
        raise RunError(f"no generator produced a case, so there is nothing to explain (generation "
                       f"statistics: {store.folder / 'cases.json'}). Change the suite (more "
                       f"excerpts, other attack settings) and start a new run: delete "
                       f"{store.folder} or choose another --out")
    n_by, power = power_statement(cases_by_gen, config.power_discordance)
    if power:
        log(power)
    seconds = resolve_timeout(config, timeout)
    session = {"started_at": _now(), "device": prep.device, "batch_size": bs,
               "batch_size_source": source, "timeout": seconds, "retry_failed": retry_failed}
    prov = store.read_json("provenance.json")
    if not resume or "explainers" not in prov:  # (a first session may have stopped before this)
        if hasattr(choice, "to_dict"):
            prov["batch_choice"] = choice.to_dict()  # how it was chosen, and the rates behind it
        if pack is not None:
            prov["case_pack"] = {"file": str(pack.path), "digest": pack.manifest.get("digest")}
        prov.update(batch_size=bs, batch_size_source=source, timeout=seconds,
                    explainers={n: params_of(e) for n, e in prep.explainers.items()},
                    power={"n_by_generator": n_by, "discordance": config.power_discordance,
                           "statement": power})
        store.write_json("provenance.json", prov)

    state = unit_state(prep, scorer, seconds, log)
    records = store.records(log)
    todo = pending_units(cases, config.explainers, records, retry_failed)
    if resume:
        log(f"resuming: {len(records)} records kept, {len(todo)} units to go"
            + (" (failed ones included)" if retry_failed else ""))
        if todo:
            prov = store.read_json("provenance.json")
            prov.setdefault("sessions", []).append({**session, "units": len(todo)})
            store.write_json("provenance.json", prov)
    bar = tqdm(total=len(todo), desc="explaining", unit="expl", disable=not progress, file=sys.stderr)
    n_written = 0
    try:
        if executor is None or getattr(executor, "name", "local") == "local" or not todo:
            ctx_of: tuple[str, object] | None = None
            for case, name in todo:
                if ctx_of is None or ctx_of[0] != case.case_id:
                    ctx_of = (case.case_id, _context_or_error(state, case, state.task_name))
                bar.set_postfix_str(f"{name} on {case.case_id}")
                write_unit(store, evaluate_unit(state, case, name, ctx_of[1]), state.sample_rate)
                n_written += 1
                bar.update(1)
        else:
            from explbench.run.executors.shipping import ship

            files = [(store.folder / p["copy"]) if not Path(p["path"]).is_file() else Path(p["path"])
                     for p in (store.config().get("plugins") or [])]
            spec = WorkerSpec(config.to_dict(), prep.device, bs, seconds, ship(files))
            for results in _units_elsewhere(executor, spec, todo):
                write_unit(store, results, state.sample_rate)
                n_written += 1
                bar.update(1)
    finally:
        bar.close()
    result = finish(store, config, rid, changed=n_written > 0, log=log)
    result.n_written = n_written
    return result


def _new_provenance(prep: Prepared, batch_size: int) -> dict:
    prov = provenance(prep.task, prep.config.to_dict())
    if prep.left_out:
        prov["left_out"] = dict(prep.left_out)
    prov["identity"] = run_identity(prep.task, prep.identity, prep.config.task_params, batch_size,
                                    tuple(prep.task.domain_axes) or None)
    prov["task"]["identity"] = prep.identity.to_dict()
    # explainers read it from ExplainContext (adaptive sampling settles this top-k set); what
    # they were told is part of what the run did
    prov["headline_k"] = HEADLINE_K
    return prov


def _resumed_batch_size(recorded: dict, asked: int | None, folder: Path, prep: Prepared) -> tuple[int, str]:
    """A resume computes with the batch size the run started with (a forward's rounding can
    depend on it), so that one run never mixes two; asking for another is refused."""
    was = recorded.get("batch_size")
    if was is None:
        return choose_batch_size(prep, asked)
    if asked is not None and int(asked) != int(was):
        raise RunError(f"{folder} was started with batch size {was}; a resume computes with the "
                       f"same one so that the run does not mix two. Drop --batch-size {asked}, or "
                       f"start a new run with --out")
    return int(was), "recorded"


def _check_same_identity(recorded: dict, prep: Prepared, batch_size: int, folder: Path) -> None:
    """Refuse a resume whose model, data, task parameters or domain changed."""
    now = run_identity(prep.task, prep.identity, prep.config.task_params, batch_size,
                       tuple(prep.task.domain_axes) or None)
    changed = [f"{k} {recorded.get(k)!r} then, {now[k]!r} now" for k in IDENTITY_KEYS
               if recorded.get(k) != now[k]]
    if changed:
        raise RunError(f"the task {prep.config.task!r} changed since {folder} was started ("
                       + "; ".join(changed) + "); resuming would mix two. Restore it, or start a "
                       "new run with --out")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def finish(store: RunStore, config: SuiteConfig, rid: str, *, changed: bool = True,
           log: Log | None = None) -> RunResult:
    """Aggregate the records of a complete run into ``metrics.csv`` and ``timing.csv``.

    ``finished_at`` (UTC, microseconds) is set when the run first finishes, and again only
    when records were written or the metrics changed.
    """
    from explbench.metrics.aggregate import aggregate

    records = pd.DataFrame(store.records(log))
    if records.empty:
        metrics = pd.DataFrame(columns=METRIC_COLUMNS)
        timing = pd.DataFrame(columns=["explainer", "generator", "seconds_mean", "seconds_median", "n"])
    else:
        names = [m for m in registry.metrics.names() if m != "seconds"]
        metrics = aggregate(records, seed=config.seed, n_boot=config.n_boot, metrics=names)
        metrics.insert(0, "task", config.task)
        metrics.insert(0, "run_id", rid)
        metrics = metrics[METRIC_COLUMNS]
        ok = records[records["status"] == "ok"]
        timing = (ok.groupby(["explainer", "generator"])["seconds"]
                  .agg(seconds_mean="mean", seconds_median="median", n="size").reset_index()
                  if not ok.empty else pd.DataFrame())
    path = store.folder / "metrics.csv"
    before = path.read_bytes() if path.exists() else None
    store.write_csv("metrics.csv", metrics)
    store.write_csv("timing.csv", timing)
    prov = store.read_json("provenance.json")
    if changed or before != path.read_bytes() or "finished_at" not in prov:
        prov["finished_at"] = _now()
        store.write_json("provenance.json", prov)
    n_failed = int((records["status"] == "failed").sum()) if not records.empty else 0
    return RunResult(store.folder, metrics, timing, n_failed)
