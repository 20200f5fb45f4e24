"""Running a suite: cases once per generator (cached), then every (case, explainer) unit."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
from datetime import datetime, timezone
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from explbench import registry
from explbench.api import Explainer, Task
from explbench.cases import Case, cache_key, load_cases, save_cases
from explbench.protocol import Scorer
from explbench.segmentation import Segmentation, from_spec
from explbench.stats import seed_for
from explbench.store import METRIC_COLUMNS, RunStore, cache_dir, provenance
from explbench.suite import SuiteConfig


def run_id(config: SuiteConfig) -> str:
    """Deterministic id: suite name and a hash of the resolved config."""
    blob = json.dumps(config.to_dict(), sort_keys=True).encode()
    return f"{config.name}-{hashlib.sha256(blob).hexdigest()[:8]}"


def _parameters(cls: object) -> set[str]:
    """Names of a plug-in constructor's parameters (empty when they cannot be inspected)."""
    try:
        return set(inspect.signature(cls).parameters)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return set()


def make_task(config: SuiteConfig, device: str = "cpu") -> Task:
    cls = registry.tasks.get(config.task)
    params = dict(config.task_params)
    if "device" in _parameters(cls):  # a task that cannot choose its device runs where it is
        params.setdefault("device", device)
    return cls(**params)


def make_explainer(config: SuiteConfig, name: str) -> Explainer:
    cls = registry.explainers.get(name)
    params = dict(config.explainer_params.get(name, {}))
    if "content" in _parameters(cls):
        params.setdefault("content", config.content)
    return cls(**params)


def _generator_order(generators: dict[str, dict]) -> list[str]:
    """Base generators first, then derived ones after their parents."""
    order: list[str] = []
    pending = dict(generators)
    while pending:
        ready = [g for g, p in pending.items() if all(q in order for q in p.get("from", []))]
        if not ready:
            raise ValueError(f"generators derive from each other in a cycle: {sorted(pending)}")
        for g in sorted(ready):
            order.append(g)
            del pending[g]
    return order


def generator_identity(gen: object, task: Task) -> dict:
    """Everything that determines a generator's cases: its resolved configuration, defaults
    included (and, where it has one, the configuration it resolves against the task), plus its
    ``version``. Part of the case-cache key, so changing a default never reuses stale cases."""
    ident = {"params": gen.get_params() if hasattr(gen, "get_params") else dict(vars(gen)),
             "version": getattr(gen, "version", None)}
    resolve = getattr(gen, "config", None)
    if callable(resolve):
        cfg = resolve(task)
        ident["resolved"] = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else cfg
    return ident


def build_cases(config: SuiteConfig, task: Task, segments: Segmentation, progress: bool = True,
                log=print) -> tuple[dict[str, list[Case]], dict[str, dict]]:
    """Cases of every generator in the suite, from the content-addressed cache when present."""
    all_cases: dict[str, list[Case]] = {}
    info: dict[str, dict] = {}
    keys: dict[str, str] = {}
    for name in _generator_order(config.generators):
        params = dict(config.generators[name])
        n = int(params.pop("n", 16))
        parents = params.pop("from", [])
        gen = registry.generators.get(name)(**params)
        seed = seed_for("generator", name, base=config.seed)
        key = cache_key(task=task.name, task_version=task.version, model=task.model_hash(),
                        data=task.data_version(), generator=name, params=generator_identity(gen, task),
                        n=n, seed=seed,
                        split=config.split, segmentation=segments.kind,
                        parents=[keys[p] for p in parents])
        keys[name] = key
        path = cache_dir() / "cases" / f"{key}.npz"
        if path.exists():
            cases, stats = load_cases(path)
            log(f"{name}: {len(cases)} cases from the cache ({path.name})")
        else:
            if parents:
                parent_cases = [c for p in parents for c in all_cases[p]]
                cases, stats = gen.derive(task, segments, parent_cases, seed, progress=progress)
            else:
                cases, stats = gen.generate(task, segments, n, seed, split=config.split, progress=progress)
            save_cases(path, cases, stats)
            log(f"{name}: {len(cases)} cases generated" + (" — no successful case; the run goes on "
                "with none for it" if not cases else ""))
        all_cases[name] = cases
        info[name] = {"cache_key": key, "n_cases": len(cases), "stats": stats, "from": parents}
    return all_cases, info


@dataclass
class RunResult:
    folder: Path
    metrics: pd.DataFrame
    timing: pd.DataFrame
    n_failed: int


def execute(config: SuiteConfig, out: Path, *, resume: bool = False, device: str = "cpu",
            progress: bool = True, log=print) -> RunResult:
    """Run (or resume) a suite into ``out`` and write its metric tables."""
    store = RunStore(out)
    rid = run_id(config)
    task = make_task(config, device)
    if resume:
        stored = store.config()
        if stored.get("suite") != config.to_dict():
            raise ValueError(f"{out} was started with a different configuration; resume it without "
                             f"changing the suite, or start a new run with --out")
        store.repair()
    else:
        store.create({"run_id": rid, "suite": config.to_dict()}, provenance(task, config.to_dict()))
    segments = from_spec(config.segmentation, tuple(task.domain_shape))
    cases_by_gen, info = build_cases(config, task, segments, progress=progress, log=log)
    store.write_json("cases.json", info)

    explainers = {name: make_explainer(config, name) for name in config.explainers}
    scorer = Scorer(task, segments, content=config.content, agnostic_samples=config.agnostic_samples,
                    device=device)
    if not resume:
        prov = store.read_json("provenance.json")
        prov["batch_size"] = scorer.batch_size
        store.write_json("provenance.json", prov)
    done = store.done()
    cases = [c for name in _generator_order(config.generators) for c in cases_by_gen[name]]
    todo = [(c, e) for c in cases for e in config.explainers if (c.case_id, e) not in done]
    if resume and done:
        log(f"resuming: {len(done)} records kept, {len(todo)} to go")
    bar = tqdm(total=len(todo), desc="explaining", unit="expl", disable=not progress, file=sys.stderr)
    by_case: dict[str, list[str]] = {}
    for c, e in todo:
        by_case.setdefault(c.case_id, []).append(e)
    case_map = {c.case_id: c for c in cases}
    try:
        for case_id, names in by_case.items():
            case = case_map[case_id]
            ctx = scorer.context(case, seed_for("context", case_id, base=config.seed))
            for name in names:
                bar.set_postfix_str(f"{name} on {case_id}")
                rng = np.random.default_rng(seed_for("explain", case_id, name, base=config.seed))
                record, audio = scorer.record(case, name, explainers[name], ctx, config.budget, rng,
                                              tuple(task.classes))
                if audio is not None:
                    record["audio_file"] = store.write_wav(case_id, name, audio, task.sample_rate)
                store.append(record)
                bar.update(1)
    finally:
        bar.close()
    return finish(store, config, rid)


def finish(store: RunStore, config: SuiteConfig, rid: str) -> RunResult:
    """Aggregate the records of a complete run into ``metrics.csv`` and ``timing.csv``."""
    from explbench.metrics.aggregate import aggregate

    records = pd.DataFrame(store.records())
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
    store.write_csv("metrics.csv", metrics)
    store.write_csv("timing.csv", timing)
    prov = store.read_json("provenance.json")
    prov["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    store.write_json("provenance.json", prov)
    n_failed = int((records["status"] == "failed").sum()) if not records.empty else 0
    return RunResult(store.folder, metrics, timing, n_failed)
