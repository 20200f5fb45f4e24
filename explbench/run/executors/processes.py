"""The ``processes`` executor: worker processes on this machine (spawned, torch threads split)."""

from __future__ import annotations

import multiprocessing
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Iterator, Sequence

from explbench.run.executors.base import Executor, Init, Work, run_chunk, set_torch_threads, threads_per_worker


class ProcessesExecutor(Executor):
    """Runs chunks in ``workers`` spawned processes, each with ``threads`` torch threads.

    Each worker builds its state once per :meth:`map_chunks` call. When a worker process dies
    (killed, out of memory), the pool is restarted and every chunk whose result had not yet
    arrived is run again, at most ``max_restarts`` times per call; chunks already yielded are
    never re-run, so no result is duplicated.

    Parameters
    ----------
    workers : int
        Worker processes.
    threads : int, optional
        Torch threads per worker; default ``cores // workers`` (at least 1), so that
        workers x threads never exceeds the cores.
    max_restarts : int
        Pool restarts allowed per call before giving up with an error.
    window : int, optional
        Chunks submitted ahead of the results (default ``2 * workers + 1``), which bounds the
        memory held by queued chunks.
    """

    name = "processes"

    def __init__(self, workers: int = 2, threads: int | None = None, max_restarts: int = 3,
                 window: int | None = None) -> None:
        super().__init__(workers=workers, threads=threads_per_worker(workers) if threads is None else threads)
        self.max_restarts = max_restarts
        self.window = window or 2 * workers + 1
        self.restarts = 0

    def _pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=set_torch_threads, initargs=(self.threads,))

    def map_chunks(self, init: Init, work: Work, chunks: Sequence[Any]) -> Iterator[tuple[int, list]]:
        token = uuid.uuid4().hex
        pending = list(range(len(chunks)))  # not yet yielded, in submission order
        restarts = 0
        while pending:
            pool = self._pool()
            queue = list(pending)
            running: dict[Future, int] = {}
            broken = False
            try:
                while (queue or running) and not broken:
                    while queue and len(running) < self.window:
                        i = queue.pop(0)
                        running[pool.submit(run_chunk, token, init, work, self.threads, i, chunks[i])] = i
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        running.pop(fut)
                        try:
                            index, results, info = fut.result()
                        except BrokenProcessPool:
                            broken = True
                            continue
                        pending.remove(index)
                        self.chunks_run.append(info)
                        yield index, results
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
            if broken:
                restarts += 1
                self.restarts += 1
                if restarts > self.max_restarts:
                    raise RuntimeError(
                        f"processes executor: worker processes died {restarts} times; {len(pending)} of "
                        f"{len(chunks)} chunks are unfinished. Run with fewer --workers (memory?) or "
                        f"--executor local to see the error. If no chunk ever finished, the workers may "
                        f"not start at all: a script that uses this executor needs the "
                        f"`if __name__ == \"__main__\":` guard (spawned workers import the main module)")
