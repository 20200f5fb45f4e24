"""Running a suite: cases once per generator (cached), then every (case, explainer) unit.

:func:`execute` is the whole run in one process. Its pieces are public for other executors:
:func:`prepare` builds and checks everything a run needs before it writes anything,
:func:`unit_state` builds what :func:`explbench.protocol.unit.evaluate_unit` needs in any process,
:func:`pending_units` says which units are left, :func:`write_unit` appends one unit's records
(the writer holds the run folder's lock) and :func:`finish` aggregates.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
from tqdm import tqdm

from explbench.api import registry
from explbench.api import Explainer, Task
from explbench.core.cases import Case, cache_key, load_cases, save_cases
from explbench.core.identity import TaskIdentity, task_identity
from explbench.core.segmentation import Segmentation
from explbench.stats.intervals import seed_for
from explbench.api.task import task_segmentation
from explbench.checks.task_checks import MissingHookError, require_hooks
from explbench.store.run_store import METRIC_COLUMNS, RunStore, cache_dir, provenance, record_key
from explbench.run.suite import (SuiteConfig, SuiteError, _generator_order, accepts_per_cluster,
                             check_resolved_ranges, generator_kwargs, validate)
from explbench.protocol.unit import (UnitState, case_context, default_timeout, evaluate_unit,  # noqa: F401
                            params_of)

Log = Callable[[str], None]


class RunError(RuntimeError):
    """A run that cannot go on, with what to do about it."""


def run_id(config: SuiteConfig) -> str:
    """Deterministic id: suite name and a hash of the resolved config."""
    blob = json.dumps(config.to_dict(), sort_keys=True).encode()
    return f"{config.name}-{hashlib.sha256(blob).hexdigest()[:8]}"


def _parameters(cls: object) -> dict[str, inspect.Parameter]:
    """A plug-in constructor's parameters (empty when they cannot be inspected)."""
    try:
        return dict(inspect.signature(cls).parameters)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return {}


def check_device(device: str) -> str:
    """``device`` when torch can use it here; otherwise a ValueError that says what to pass.

    Accepts ``cpu``, ``cuda``, ``cuda:N`` and ``mps``.
    """
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; use --device cpu, cuda (cuda:N for the "
                         f"N-th GPU) or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            built = "built without CUDA" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            raise ValueError(f"--device {device}: torch sees no CUDA GPU on this machine (torch "
                             f"{torch.__version__}, {built}); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} "
                             f"GPU(s), numbered from 0")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"--device {device}: MPS is not available here; use --device cpu")
    elif dev.type != "cpu":
        raise ValueError(f"device {device!r} is not supported; use --device cpu, cuda or mps")
    return device


def make_task(config: SuiteConfig, device: str = "cpu") -> Task:
    """The suite's task, built with its ``[task-params]`` (and the device, if it takes one)."""
    cls = registry.tasks.get(config.task)
    params = dict(config.task_params)
    if "device" in _parameters(cls):  # a task that cannot choose its device runs where it is
        params.setdefault("device", device)
    try:
        return cls(**params)
    except Exception as exc:  # noqa: BLE001 - a user's task parameters
        shown = ", ".join(f"{k} = {v!r}" for k, v in config.task_params.items()) or "no [task-params]"
        raise RunError(f"task {config.task!r} cannot be built with {shown}: "
                       f"{type(exc).__name__}: {exc}") from None


def make_explainer(config: SuiteConfig, name: str) -> Explainer:
    """One explainer with its suite table. Its own defaults stand: the suite-level ``content``
    is passed only to an explainer whose constructor requires ``content`` and has no default."""
    cls = registry.explainers.get(name)
    params = dict(config.explainer_params.get(name, {}))
    content = _parameters(cls).get("content")
    if content is not None and content.default is inspect.Parameter.empty and "content" not in params:
        params["content"] = config.content
    try:
        return cls(**params)
    except Exception as exc:  # noqa: BLE001 - the constructor's own checks
        raise SuiteError(f"key 'explainer.{name}': {name!r} cannot be built with "
                         f"{params or 'its defaults'}: {type(exc).__name__}: {exc}") from None


def generator_identity(gen: object, task: Task) -> dict:
    """Everything that determines a generator's cases: its resolved configuration, defaults
    included (and, where it has one, the configuration it resolves against the task), plus its
    ``version``. Part of the case-cache key, so changing a default never reuses stale cases."""
    import dataclasses

    ident = {"params": gen.get_params() if hasattr(gen, "get_params") else dict(vars(gen)),
             "version": getattr(gen, "version", None)}
    resolve = getattr(gen, "config", None)
    if callable(resolve):
        cfg = resolve(task)
        ident["resolved"] = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else cfg
    return ident


def _load_cases_file(path: Path, log: Log) -> tuple[list[Case], dict] | None:
    try:
        return load_cases(path)
    except Exception as exc:  # noqa: BLE001 - a damaged file is made again
        log(f"the case file {path} cannot be read ({type(exc).__name__}: {exc}); making its cases again")
        return None


def build_cases(config: SuiteConfig, task: Task, segments: Segmentation, progress: bool = True,
                log: Log = print, *, store: RunStore | None = None,
                identity: TaskIdentity | None = None) -> tuple[dict[str, list[Case]], dict[str, dict]]:
    """Cases of every generator in the suite, from the content-addressed cache when present.

    The cache key covers the task's model and data (:func:`explbench.core.identity.task_identity`).
    With ``store``, each generator's case file is also kept in the run folder
    (``RUN/cases/<key>.npz``), and a case file already there is what the run uses. A task whose
    model cannot be identified gets no cache: its cases are made for the run and kept only in
    the run folder.
    """
    identity = identity or task_identity(task, config.split)
    if identity.uncacheable:
        log(f"note: {identity.uncacheable}")
    all_cases: dict[str, list[Case]] = {}
    info: dict[str, dict] = {}
    keys: dict[str, str] = {}
    for name in _generator_order(config.generators):
        table = config.generators[name]
        n = int(table.get("n", 16))
        parents = list(table.get("from", []))
        cls = registry.generators.get(name)
        gen = cls(**generator_kwargs(config, name))
        extra = {}
        if accepts_per_cluster(cls) == "generate":
            extra["per_cluster"] = int(table.get("per_cluster", 1))
        seed = seed_for("generator", name, base=config.seed)
        parts = dict(task=task.name, task_version=task.version, model=identity.model,
                     data=identity.data, generator=name, params=generator_identity(gen, task),
                     n=n, seed=seed, split=config.split, segmentation=segments.kind,
                     parents=[keys[p] for p in parents])
        if extra:
            parts["per_cluster"] = extra["per_cluster"]
        if identity.uncacheable:
            parts["uncached"] = True
        key = cache_key(**parts)
        keys[name] = key
        cached = cache_dir() / "cases" / f"{key}.npz"
        loaded = None
        if store is not None and store.case_file(key).exists():
            loaded = _load_cases_file(store.case_file(key), log)
            where = "the run folder"
        if loaded is None and not identity.uncacheable and cached.exists():
            loaded = _load_cases_file(cached, log)
            where = f"the cache ({cached.name})"
        if loaded is not None:
            cases, stats = loaded
            log(f"{name}: {len(cases)} cases from {where}")
        else:
            try:
                if parents:
                    parent_cases = [c for p in parents for c in all_cases[p]]
                    cases, stats = gen.derive(task, segments, parent_cases, seed, progress=progress)
                else:
                    cases, stats = gen.generate(task, segments, n, seed, split=config.split,
                                                progress=progress, **extra)
            except Exception as exc:  # noqa: BLE001 - a generator or task plug-in
                where = f" ({store.folder} holds no records yet)" if store is not None else ""
                raise RunError(f"generator {name!r} failed on task {task.name!r}: "
                               f"{type(exc).__name__}: {exc}{where}. If the suite is at fault, "
                               f"change it and start a new run; if the task is, fix it and "
                               f"continue with --resume") from None
            target = store.case_file(key) if (identity.uncacheable and store is not None) else cached
            if not identity.uncacheable or store is not None:
                save_cases(target, cases, stats)
            log(f"{name}: {len(cases)} cases generated" + (" — no successful case; the run goes on "
                "with none for it" if not cases else ""))
        if store is not None and not identity.uncacheable and not store.case_file(key).exists():
            store.keep_case_file(cached, key)
        all_cases[name] = cases
        info[name] = {"cache_key": key, "n_cases": len(cases), "stats": stats, "from": parents,
                      "file": f"cases/{key}.npz" if store is not None else None,
                      "cached": not identity.uncacheable}
    return all_cases, info


# -- preparing a run -----------------------------------------------------------------------------


@dataclass
class Prepared:
    """Everything built and checked before a run writes anything.

    ``left_out`` names the suite's generators and explainers that cannot work on the task at
    all (:func:`explbench.checks.task_checks.inapplicable`), with the reason; ``config`` is the suite
    without them.
    """

    config: SuiteConfig
    task: Task
    segments: Segmentation
    explainers: dict[str, Explainer]
    identity: TaskIdentity
    device: str
    left_out: dict[str, str] = field(default_factory=dict)


def fit_to_task(config: SuiteConfig, task: Task, log: Log = print) -> tuple[SuiteConfig, dict[str, str]]:
    """The suite as it applies to ``task``: what cannot work on it left out, and said so.

    Generators and explainers that cannot work on the task whatever hooks it adds (declared
    ``unsupported``, made for another axis order, a frequency axis on a waveform) are dropped,
    a derived generator loses them from its ``from`` list (and goes too when none is left),
    and ``grid:TxF`` on a waveform domain becomes ``time:T*F``
    (:func:`explbench.core.segmentation.spec_for_shape`). A hook that is merely missing is not
    fitted away: :func:`explbench.checks.task_checks.require_hooks` then stops the run.

    Raises
    ------
    SuiteError
        When no generator or no explainer is left.
    """
    from explbench.core.segmentation import spec_for_shape
    from explbench.checks.task_checks import inapplicable

    left_out = inapplicable(task, list(config.generators), list(config.explainers))
    generators: dict[str, dict] = {}
    for name, params in config.generators.items():
        if name in left_out:
            continue
        parents = params.get("from")
        if isinstance(parents, list) and any(p in left_out for p in parents):
            kept = [p for p in parents if p not in left_out]
            if not kept:
                left_out[name] = f"every generator it derives from ({', '.join(parents)}) is left out"
                continue
            params = {**params, "from": kept}
        generators[name] = params
    explainers = [e for e in config.explainers if e not in left_out]
    spec, note = spec_for_shape(config.segmentation, tuple(task.domain_shape))
    for name, why in left_out.items():
        log(f"note: {name} is left out of this run: {why}")
    if note:
        log(f"note: {note}")
    if not generators or not explainers:
        kind = "generator" if not generators else "explainer"
        raise SuiteError(f"no {kind} of suite {config.name!r} can run on task {config.task!r}: "
                         + "; ".join(f"{n}: {w}" for n, w in left_out.items()))
    if not left_out and spec == config.segmentation:
        return config, {}
    fitted = SuiteConfig.from_dict({**config.to_dict(), "generators": generators,
                                    "explainers": explainers, "segmentation": spec})
    return fitted, left_out


def prepare(config: SuiteConfig, device: str = "cpu", log: Log = print) -> Prepared:
    """Build the task, segmentation and explainers and check the suite against the real task.

    Raises
    ------
    ValueError, SuiteError, RunError
        For a bad device, an invalid suite for this task, a task or classifier that cannot be
        built, or an explainer that refuses its parameters; nothing has been written then.
    """
    check_device(device)
    validate(config)
    task = make_task(config, device)
    config, left_out = fit_to_task(config, task, log)
    validate(config, task=task)
    check_resolved_ranges(config, task)
    try:
        require_hooks(task, list(config.generators), list(config.explainers))
    except MissingHookError as exc:
        raise SuiteError(str(exc)) from None
    segments = task_segmentation(task, config.segmentation)
    try:
        task.classifier()
    except Exception as exc:  # noqa: BLE001 - a user's weights or model code
        raise RunError(f"task {config.task!r}: its classifier cannot be built "
                       f"({type(exc).__name__}: {exc}); check its [task-params] (e.g. weights)") from None
    for name in config.generators:  # generators that can say up front that a task cannot host them
        check = getattr(registry.generators.get(name), "check", None)
        if callable(check):
            try:
                check(registry.generators.get(name)(**generator_kwargs(config, name)), task)
            except Exception as exc:  # noqa: BLE001
                raise SuiteError(f"key 'generator.{name}': {name!r} cannot run on task "
                                 f"{config.task!r}: {exc}") from None
    explainers = {name: make_explainer(config, name) for name in config.explainers}
    return Prepared(config, task, segments, explainers, task_identity(task, config.split), device,
                    left_out)


def choose_batch_size(prep: Prepared, batch_size: int | None) -> tuple[int, str]:
    """The classifier batch size and whether it was ``"pinned"`` (given) or ``"measured"``.

    A measured size is a :class:`explbench.run.batching.BatchChoice` (an int that also says whether
    the measurement was fresh, cached or re-measured, and the rates behind it).
    """
    if batch_size is not None:
        if int(batch_size) < 1:
            raise ValueError(f"--batch-size must be at least 1, got {batch_size}")
        return int(batch_size), "pinned"
    from explbench.run.batching import best_batch_size

    model = prep.identity.model or f"unidentified-{prep.task.name}"
    return best_batch_size(prep.task.classifier(), tuple(prep.task.domain_shape), model,
                           prep.device), "measured"


def make_scorer(prep: Prepared, batch_size: int, log: Log = print):
    """The protocol's scorer for this suite (passing the options the protocol knows)."""
    from explbench.protocol.scorer import Scorer

    c = prep.config
    kwargs: dict = {"content": c.content, "agnostic_samples": c.agnostic_samples,
                    "batch_size": batch_size, "device": prep.device}
    known = _parameters(Scorer)
    for key, value, default in (("aggregation", c.aggregation, "mean"),
                                ("extra_aggregations", tuple(c.extra_aggregations), ()),
                                ("seed", c.seed, None)):
        if key in known:
            kwargs[key] = value
        elif default is not None and value != default:
            raise RunError(f"this version of the protocol has no {key!r}; remove it from the suite")
    return Scorer(prep.task, prep.segments, **kwargs)


def unit_state(prep: Prepared, scorer: object, timeout: float | None, log: Log = print) -> UnitState:
    """What :func:`explbench.protocol.unit.evaluate_unit` needs (``timeout``: seconds, None = none)."""
    return UnitState(scorer=scorer, explainers=prep.explainers, budget=prep.config.budget,
                     seed=prep.config.seed, timeout=timeout, classes=tuple(prep.task.classes),
                     sample_rate=int(prep.task.sample_rate), log=log)


def resolve_timeout(config: SuiteConfig, override: float | None = None) -> float | None:
    """Seconds per explanation: the command line, else the suite, else the budget's default;
    0 means no limit (None)."""
    t = override if override is not None else config.timeout
    if t is None:
        t = default_timeout(config.budget)
    return float(t) if t and t > 0 else None


def pending_units(cases: Iterable[Case], explainers: list[str], records: list[dict],
                  retry_failed: bool = False) -> list[tuple[Case, str]]:
    """(case, explainer) units still to run, in canonical order (cases, then explainers).

    A unit is done when its main record (explainer name without ``[aggregation]``) exists;
    with ``retry_failed``, a unit whose main record failed runs again.
    """
    status = {record_key(r): r.get("status") for r in records}
    out = []
    for c in cases:
        for e in explainers:
            s = status.get((c.case_id, e))
            if s is None or (retry_failed and s == "failed"):
                out.append((c, e))
    return out


def write_unit(store: RunStore, results: list[tuple[dict, np.ndarray | None]],
               sample_rate: int) -> None:
    """Append one unit's records in one write, its main record last (so a unit whose main
    record is on disk is complete); listenable explanations go to WAV files first."""
    records = []
    for record, audio in results:
        if audio is not None:
            record["audio_file"] = store.write_wav(record["case_id"], record["explainer"], audio,
                                                   sample_rate)
        records.append(record)
    store.append_many(records[1:] + records[:1])


def power_statement(cases_by_gen: dict[str, list[Case]], discordance: float) -> tuple[dict, str | None]:
    """The attack generators' case counts and the minimum-detectable-difference statement."""
    n_by = {g: len(cs) for g, cs in cases_by_gen.items()
            if cs and all(c.true_segments is None for c in cs)}
    if not n_by:
        return n_by, None
    try:
        from explbench.stats.power import describe
    except ImportError:  # pragma: no cover - power.py is being written
        return n_by, None
    return n_by, describe(n_by, discordance)


# -- worker processes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerSpec:
    """A picklable recipe for a worker's :class:`~explbench.protocol.unit.UnitState`.

    Attributes
    ----------
    config : dict
        ``SuiteConfig.to_dict()``.
    device : str
    batch_size : int
        The batch size the main process chose (so every worker scores alike).
    timeout : float or None
        Seconds per explanation (enforced where the worker runs units in its main thread).
    plugins : tuple
        Plug-in files shipped to the workers (:func:`explbench.run.executors.shipping.ship`).
    """

    config: dict
    device: str
    batch_size: int
    timeout: float | None
    plugins: tuple = ()


def worker_init(spec: WorkerSpec) -> UnitState:
    """Build a worker's state: load the shipped plug-ins, then task, explainers and scorer."""
    if spec.plugins:
        from explbench.run.executors.shipping import load_shipped

        load_shipped(spec.plugins)
    prep = prepare(SuiteConfig.from_dict(spec.config), spec.device, log=lambda s: None)
    return unit_state(prep, make_scorer(prep, spec.batch_size), spec.timeout, log=lambda s: None)


def worker_work(state: UnitState, chunk: list[tuple[Case, str]]) -> list[list[tuple[dict, np.ndarray | None]]]:
    """The results of a chunk of (case, explainer) units, one list of records per unit; each
    case's shared context is computed once."""
    out = []
    ctx_of: tuple[str, object] | None = None
    for case, name in chunk:
        if ctx_of is None or ctx_of[0] != case.case_id:
            ctx_of = (case.case_id, case_context(state, case))
        out.append(evaluate_unit(state, case, name, ctx_of[1]))
    return out


def _units_elsewhere(executor: object, spec: WorkerSpec, todo: list[tuple[Case, str]]):
    """Results of ``todo`` computed by ``executor``, chunk by chunk as they arrive."""
    from functools import partial

    from explbench.run.executors import chunk_size, chunked

    chunks = chunked(todo, chunk_size(len(todo), getattr(executor, "workers", 1)),
                     key=lambda u: u[0].case_id)
    for _, results in executor.map_chunks(partial(worker_init, spec), worker_work, chunks):  # type: ignore[attr-defined]
        yield from results


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
            plugins: Iterable[str | Path] = (), executor: object | None = None) -> RunResult:
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
                                   executor=executor)
    finally:
        if created and out.is_dir() and not store.exists():
            import shutil

            shutil.rmtree(out, ignore_errors=True)


def _execute_locked(prep: Prepared, store: RunStore, *, resume: bool, progress: bool, log: Log,
                    batch_size: int | None, timeout: float | None, retry_failed: bool,
                    plugins: list, executor: object | None = None) -> RunResult:
    config = prep.config
    if resume:
        stored = store.config()
        if SuiteConfig.from_dict(stored["suite"]).to_dict() != config.to_dict():
            raise ValueError(f"{store.folder} was started with a different configuration; resume it "
                             f"without changing the suite, or start a new run with --out")
        rid = stored.get("run_id") or run_id(config)
        if not (store.folder / "provenance.json").exists():  # a run stopped while it was created
            log(f"note: {store.folder} has no provenance.json; writing it again")
            store.write_json("provenance.json", _new_provenance(prep))
        prov = store.read_json("provenance.json")
        was = (prov.get("task") or {}).get("model_identity") or (prov.get("task") or {}).get("model_hash")
        now = prep.identity.model
        if was and now and was != now and was != "none":
            raise RunError(f"the model of task {config.task!r} changed since {store.folder} was "
                           f"started (model hash {was} then, {now} now); resuming would mix two "
                           f"models. Restore the old weights, or start a new run with --out")
        entry = _plugins_entry(store, plugins, stored.get("plugins") or [])
        if entry != (stored.get("plugins") or []):
            store.write_json("config.json", {**stored, "plugins": entry})
        store.repair(log)
    else:
        rid = run_id(config)
        store.create({"run_id": rid, "suite": config.to_dict(),
                      "plugins": _plugins_entry(store, plugins, [])}, _new_provenance(prep))

    choice, source = choose_batch_size(prep, batch_size)
    bs = int(choice)
    scorer = make_scorer(prep, bs, log)
    cases_by_gen, info = build_cases(config, prep.task, prep.segments, progress=progress, log=log,
                                     store=store, identity=prep.identity)
    store.write_json("cases.json", info)
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
                    ctx_of = (case.case_id, _context_or_error(state, case, config.task))
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


def _new_provenance(prep: Prepared) -> dict:
    prov = provenance(prep.task, prep.config.to_dict())
    if prep.left_out:
        prov["left_out"] = dict(prep.left_out)
    prov["task"]["model_identity"] = prep.identity.model
    prov["task"]["identity"] = prep.identity.to_dict()
    return prov


def _context_or_error(state: UnitState, case: Case, task: str) -> object:
    """The case's shared context; a failure there is the task's, and stops the run clearly."""
    try:
        return case_context(state, case)
    except Exception as exc:  # noqa: BLE001 - a user's task code
        raise RunError(f"task {task!r} failed on case {case.case_id} while the harness scored its "
                       f"reference rankings ({type(exc).__name__}: {exc}); the task's classifier "
                       f"or decide() is at fault. Fix it, then continue with --resume") from None


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
