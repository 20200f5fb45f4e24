"""The one unit loop: which units are left, the state a process needs to compute them, and writing their records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable
import numpy as np
from explbench.core.cases import Case
from explbench.store.run_store import RunStore
from explbench.store.records import record_key
from explbench.run.suite import SuiteConfig
from explbench.protocol.unit import (UnitState, case_context, default_timeout, evaluate_unit)
from explbench.run.prepare import Log, Prepared, RunError, _parameters, prepare


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
                     sample_rate=int(prep.task.sample_rate), log=log, task_name=prep.config.task)


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
            ctx_of = (case.case_id, _context_or_error(state, case, state.task_name))
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


def _context_or_error(state: UnitState, case: Case, task: str) -> object:
    """The case's shared context; a failure there is the task's, and stops the run clearly."""
    try:
        return case_context(state, case)
    except Exception as exc:  # noqa: BLE001 - a user's task code
        raise RunError(f"task {task!r} failed on case {case.case_id} while the harness scored its "
                       f"reference rankings ({type(exc).__name__}: {exc}); the task's classifier "
                       f"or decide() is at fault. Fix it, then continue with --resume") from None
