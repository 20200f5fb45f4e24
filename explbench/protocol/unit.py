"""One unit of work — an explainer on a case — inside its failure boundary and time limit.

:func:`evaluate_unit` is what every executor calls (in process or in a worker): it explains,
validates, scores and makes the records JSON-safe, all inside one ``try``, under a time limit.
Whatever the plug-in does — raise, hang, return NaN or an object JSON cannot hold — the unit
ends as records that can be appended, and the run goes on.

Time limits use ``SIGALRM`` (``signal.setitimer``), which is available only on POSIX and only
in a process's main thread. Their limits:

- elsewhere (Windows, a worker thread such as a Dask worker's) the limit is not enforced;
  :func:`time_limit` says so once through its ``log``;
- the signal is handled between Python bytecodes: a single long call into C (one huge torch
  operation, a blocking read in an extension) is interrupted only when it returns;
- an explainer that catches ``BaseException`` (rather than ``Exception``) can swallow it.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from explbench.core.jsonsafe import sanitise_record
from explbench.core.seeding import seed_for
from explbench.protocol.validate import traceback_text

#: seconds allowed per explanation when neither the suite nor the command line sets ``timeout``
#: and the budget is unlimited
UNLIMITED_BUDGET_TIMEOUT = 1800.0


def default_timeout(budget: int | None) -> float:
    """Seconds one explanation may take by default: 120 s plus 0.1 s per query of budget.

    One model query of the svd CNN costs about 10 ms on a quiet 2-core CPU; the allowance is
    ten times that, so a busy machine does not time out honest explainers (budget 256: 146 s;
    8192: 939 s). Unlimited budget: :data:`UNLIMITED_BUDGET_TIMEOUT`.
    """
    if budget is None:
        return UNLIMITED_BUDGET_TIMEOUT
    return 120.0 + 0.1 * float(budget)


class UnitTimeout(BaseException):
    """An explanation ran past its time limit.

    A ``BaseException`` (like ``KeyboardInterrupt``), so that an explainer's own
    ``except Exception`` cannot swallow it.
    """


_warned_unenforced = False


def _can_alarm() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def time_limit(seconds: float | None, what: str = "the explanation",
               log: Callable[[str], None] | None = None) -> Iterator[None]:
    """Raise :class:`UnitTimeout` in the body after ``seconds`` (None or 0: no limit).

    See the module docstring for where the limit cannot be enforced.
    """
    global _warned_unenforced
    if not seconds or seconds <= 0:
        yield
        return
    if not _can_alarm():
        if log is not None and not _warned_unenforced:
            _warned_unenforced = True
            log("note: per-explanation time limits need SIGALRM in the main thread; they are "
                "not enforced here")
        yield
        return

    def _alarm(signum: int, frame: Any) -> None:
        raise UnitTimeout(f"{what} ran longer than its time limit of {seconds:g} s (suite key "
                          f"`timeout` or --timeout; --resume --retry-failed runs it again)")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class UnitState:
    """Everything :func:`evaluate_unit` needs besides the case, built once per process.

    Attributes
    ----------
    scorer : explbench.protocol.scorer.Scorer
    explainers : dict of str to Explainer
    budget : int or None
        Model queries allowed per explanation.
    seed : int
        The run's master seed (every unit's generator is derived from it).
    timeout : float or None
        Seconds per explanation (None or 0: no limit).
    classes : tuple of str
        The task's class names.
    sample_rate : int
        Hz, for listenable explanations.
    log : callable
        Where notes go (e.g. that a time limit cannot be enforced).
    task_name : str
        For messages that blame the task.
    """

    scorer: Any
    explainers: dict[str, Any]
    budget: int | None
    seed: int
    timeout: float | None
    classes: tuple[str, ...]
    sample_rate: int
    log: Callable[[str], None] = field(default=print, repr=False)
    task_name: str = ""


def case_context(state: UnitState, case: Any) -> Any:
    """The per-case quantities every explainer of ``case`` shares (seeded from the case id)."""
    return state.scorer.context(case, seed_for("context", case.case_id, base=state.seed))


def unit_rng(state: UnitState, case_id: str, explainer_name: str) -> np.random.Generator:
    """The explainer's generator for one case: the same in every process and on resume."""
    return np.random.default_rng(seed_for("explain", case_id, explainer_name, base=state.seed))


def evaluate_unit(state: UnitState, case: Any, explainer_name: str,
                  ctx: Any) -> list[tuple[dict, np.ndarray | None]]:
    """Records of one explainer on one case, never raising for anything the plug-in does.

    Parameters
    ----------
    state : UnitState
    case : explbench.core.cases.Case
    explainer_name : str
        A key of ``state.explainers``.
    ctx : explbench.protocol.scorer.CaseContext
        From :func:`case_context` (shared by the case's explainers).

    Returns
    -------
    list of (record, audio)
        The main record first, then one per extra aggregation when the protocol makes them.
        Every record is JSON-safe (non-finite numbers are ``None``; numpy values converted).
        ``audio`` is a finite float32 waveform ``(n_samples,)`` or None. On any failure —
        an exception, a time-out, a value JSON cannot store — every record of the unit has
        ``status == "failed"`` and the reason in ``error``.

    Raises
    ------
    KeyboardInterrupt
        Passed on, so that Ctrl-C still stops a run.
    """
    explainer = state.explainers[explainer_name]
    rng = unit_rng(state, case.case_id, explainer_name)
    t0 = time.perf_counter()
    try:
        with time_limit(state.timeout, f"{explainer_name} on {case.case_id}", state.log):
            results = _score(state, case, explainer_name, explainer, ctx, rng)
            out = []
            for record, audio in results:
                record = sanitise_record(record)
                json.dumps(record, allow_nan=False)  # what append will do, inside the boundary
                out.append((record, _clean_audio(record, audio)))
            return out
    except UnitTimeout as exc:
        error, tb = f"Timeout: {exc}", traceback_text(exc)
    except Exception as exc:  # noqa: BLE001 - the failure boundary of one unit
        error, tb = f"{type(exc).__name__}: {exc}", traceback_text(exc)
    seconds = round(time.perf_counter() - t0, 4)
    out = []
    for name in _unit_names(state, explainer_name, explainer):
        record = failure_record(state, case, name, explainer, ctx, error)
        record["seconds"] = seconds
        record.setdefault("traceback", tb)
        out.append((record, None))
    return out



def _unit_names(state: UnitState, explainer_name: str, explainer: Any) -> list[str]:
    """The record names of one unit (the explainer's first, then its extra aggregations)."""
    try:
        return list(state.scorer.unit_names(explainer_name, explainer))
    except Exception:  # noqa: BLE001 - a protocol without unit_names, or a broken explainer
        return [explainer_name]


def _score(state: UnitState, case: Any, name: str, explainer: Any, ctx: Any,
           rng: np.random.Generator) -> list[tuple[dict, Any]]:
    return list(state.scorer.records(case, name, explainer, ctx, state.budget, rng, state.classes))


def failure_record(state: UnitState, case: Any, explainer_name: str, explainer: Any, ctx: Any,
                   error: str) -> dict:
    """A JSON-safe failed record with the protocol's base fields (and never an exception)."""
    try:
        record = state.scorer.failure(case, explainer_name, explainer, ctx, state.classes, error)
        return sanitise_record(record)
    except Exception as exc:  # noqa: BLE001 - even the failure record must not stop the run
        return {"case_id": case.case_id, "generator": getattr(case, "generator", None),
                "explainer": explainer_name, "status": "failed",
                "error": f"{error} (and the failure record could not be built: "
                         f"{type(exc).__name__}: {exc})"}


def _clean_audio(record: dict, audio: Any) -> np.ndarray | None:
    """A finite float32 waveform, or None with the reason in ``record["audio_error"]``."""
    if audio is None:
        return None
    a = np.asarray(audio, dtype=np.float32).reshape(-1)
    if a.size == 0 or not np.all(np.isfinite(a)):
        record["audio_error"] = ("the explanation's audio is empty" if a.size == 0 else
                                 f"the explanation's audio holds {int((~np.isfinite(a)).sum())} "
                                 "NaN or infinite samples; it was not written")
        return None
    return a


def params_of(explainer: Any) -> dict:
    """An explainer's resolved constructor parameters, JSON-safe (unstorable values as repr)."""
    from explbench.core.jsonsafe import NotStorable, jsonable

    try:
        params = explainer.get_params()
    except Exception as exc:  # noqa: BLE001
        return {"<error>": f"get_params() failed: {type(exc).__name__}: {exc}"}
    out = {}
    for k, v in dict(params).items():
        try:
            out[str(k)] = jsonable(v, str(k))
        except NotStorable:
            out[str(k)] = repr(v)
    return out


__all__ = ["UnitState", "UnitTimeout", "case_context", "default_timeout", "evaluate_unit",
           "failure_record", "params_of", "time_limit", "unit_rng"]
