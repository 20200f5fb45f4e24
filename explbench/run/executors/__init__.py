"""Executors: where the (case, explainer) units of a run are computed.

``get_executor("local" | "processes" | "dask", workers=N, scheduler=ADDRESS)`` returns an
:class:`Executor`; its :meth:`Executor.map_chunks` runs ``work(state, chunk)`` over chunks
with ``state = init()`` built once per worker, and yields ``(chunk_index, results)`` to the one
caller as chunks finish (any order). The caller writes and keys results by unit, so the
executor and worker count never change what a run writes.

>>> from functools import partial
>>> from explbench.run.executors import get_executor
>>> from explbench.run.executors.probe import ProbeConfig, probe_init, probe_work
>>> with get_executor("local") as ex:
...     done = dict(ex.map_chunks(partial(probe_init, ProbeConfig()), probe_work, [[0, 1], [2]]))
>>> sorted(done), [r["unit"] for r in done[0]]
([0, 1], [0, 1])
"""

from __future__ import annotations

from typing import Any, Callable, Sequence, TypeVar

from explbench.run.executors.base import (ChunkInfo, Executor, Init, Work, available_cores, run_chunk,
                                      threads_per_worker, tune_allocator)
from explbench.run.executors.local import LocalExecutor

EXECUTORS = ("local", "processes", "dask")

T = TypeVar("T")


def get_executor(name: str = "local", workers: int | None = None, scheduler: str | None = None,
                 threads: int | None = None) -> Executor:
    """The executor called ``name``.

    Parameters
    ----------
    name : {"local", "processes", "dask"}
    workers : int, optional
        Worker processes: ``processes`` default :func:`available_cores`; ``dask`` default 2
        (ignored with ``scheduler``); must be 1 or None for ``local``.
    scheduler : str, optional
        ``dask`` only: address of a running scheduler (``tcp://HOST:8786``); without it a
        private LocalCluster is started on this machine.
    threads : int, optional
        Torch threads per worker; default ``cores // workers`` (at least 1).
    """
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    if scheduler is not None and name != "dask":
        raise ValueError(f"--scheduler is for --executor dask, not {name!r}")
    if name == "local":
        if workers not in (None, 1):
            raise ValueError(f"--executor local runs one worker (this process), not {workers}; "
                             f"use --executor processes --workers {workers}")
        return LocalExecutor(threads=threads or 0)
    if name == "processes":
        from explbench.run.executors.processes import ProcessesExecutor

        return ProcessesExecutor(workers=workers or available_cores(), threads=threads)
    from explbench.run.executors.dask_executor import DaskExecutor

    return DaskExecutor(workers=workers, scheduler=scheduler, threads=threads)


def chunked(units: Sequence[T], size: int, key: Callable[[T], Any] | None = None) -> list[list[T]]:
    """``units`` in order, cut into chunks of at most ``size``; with ``key``, units sharing a key
    (e.g. a case id) are kept in one chunk, so per-key work (a case's shared context) is done once.

    A group larger than ``size`` becomes one chunk of its own.
    """
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    if key is None:
        return [list(units[i : i + size]) for i in range(0, len(units), size)]
    groups: dict[Any, list[T]] = {}
    for u in units:
        groups.setdefault(key(u), []).append(u)
    chunks: list[list[T]] = []
    current: list[T] = []
    for group in groups.values():
        if current and len(current) + len(group) > size:
            chunks.append(current)
            current = []
        current = current + group
    if current:
        chunks.append(current)
    return chunks


def chunk_size(n_units: int, workers: int, per_worker: int = 8, cap: int = 64) -> int:
    """A chunk size that gives each worker about ``per_worker`` chunks (load balance, and a
    resume loses little), at most ``cap`` units; 1 for tiny runs."""
    return max(1, min(cap, -(-n_units // max(1, workers * per_worker))))


__all__ = ["EXECUTORS", "ChunkInfo", "Executor", "Init", "LocalExecutor", "Work", "available_cores",
           "chunk_size", "chunked", "get_executor", "run_chunk", "threads_per_worker", "tune_allocator"]
