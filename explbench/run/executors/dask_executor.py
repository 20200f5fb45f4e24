"""The ``dask`` executor: chunks on a dask.distributed cluster.

Without a scheduler address it starts a private :class:`distributed.LocalCluster` on this
machine (worker processes, one task at a time each, loopback only, no dashboard). With an
address (``tcp://HOST:8786``) it connects to a running cluster, started for instance with
``dask scheduler`` on one machine and ``dask worker tcp://HOST:8786`` on each of the others;
those workers need only ``pip install explbench`` (plug-in files travel inside ``init``, see
:mod:`explbench.run.executors.shipping`).

A worker that dies mid-chunk is replaced (by its nanny) and the scheduler runs its chunks
again elsewhere; a chunk's result reaches the caller once, when its future completes, so a
lost worker neither loses nor duplicates results.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections import Counter
from typing import Any, Iterator, Sequence

from explbench.run.executors.base import Executor, Init, Work, available_cores, run_chunk, threads_per_worker


#: dask settings of the private LocalCluster. Its scheduler, nannies and workers share this
#: machine's cores with the computation, so every periodic wake-up competes with it for a core
#: and the GIL. Without a dashboard nobody reads the statistical profiler (a stack sample of
#: every thread each 10 ms) or the system monitor, the 20 ms event-loop tick only feeds
#: "unresponsive loop" warnings, memory limits hold at a 1 s check, and work stealing (every
#: 100 ms) has nothing to balance when the scheduler hands each worker one chunk at a time.
#: Measured with 2 workers on 2 cores, the gain from these settings is within the run-to-run
#: spread. What does matter is the chunk rate: the client and scheduler took 0.066 of a core at
#: 8 chunks/s and 0.018 at 1 chunk/s. With 0.2 s chunks the executor benchmark's dask-2 had a
#: median efficiency of 0.75; with 1.5 s chunks 0.88-0.95. The runner's chunks last 9-120 s in
#: the committed bundles.
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.scheduler.work-stealing": False,
}


def _run_on_worker(token: str, init: Init, work: Work, threads: int, host_threads: dict[str, int],
                   index: int, chunk: Any) -> tuple:
    """Dask task: resolve this worker's torch threads, then :func:`run_chunk`.

    ``threads`` > 0 is used as is; 0 means "this machine's cores divided by the dask threads
    running on it" (``host_threads``, counted by the client when the call started; a worker
    that joined later counts only its own threads).
    """
    if threads <= 0:
        from distributed import get_worker

        worker = get_worker()
        host = worker.address.rsplit(":", 1)[0]
        on_host = host_threads.get(host, worker.state.nthreads)
        threads = max(1, available_cores() // max(1, on_host))
    return run_chunk(token, init, work, threads, index, chunk)


class DaskExecutor(Executor):
    """Runs chunks as dask tasks.

    Parameters
    ----------
    workers : int, optional
        Worker processes of the private LocalCluster (default 2); ignored with ``scheduler``
        (the cluster has the workers it has).
    scheduler : str, optional
        Address of a running scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
    threads : int, optional
        Torch threads per worker. Default: ``cores // workers`` for the LocalCluster; for a
        remote cluster, each worker's machine cores divided by the dask threads on it.
    window : int, optional
        Chunks in flight at once (default ``3 x`` the cluster's total threads, at least 4), so a
        large run does not ship all its cases to the scheduler at the start.
    """

    name = "dask"

    def __init__(self, workers: int | None = None, scheduler: str | None = None, threads: int | None = None,
                 window: int | None = None) -> None:
        try:
            import distributed  # noqa: F401
        except ImportError as exc:  # pragma: no cover - dask is a dependency
            raise ImportError("the dask executor needs dask.distributed: pip install 'distributed'") from exc
        self.scheduler = scheduler
        self._cluster = None
        self._client = None
        if scheduler is None:
            n = 2 if workers is None else workers
            super().__init__(workers=n, threads=threads_per_worker(n) if threads is None else threads)
        else:
            super().__init__(workers=1, threads=threads or 0)
        self._window = window

    # -- cluster -----------------------------------------------------------------------------

    def client(self):
        """The connected :class:`distributed.Client` (starting the LocalCluster on first use)."""
        if self._client is None:
            from distributed import Client, LocalCluster

            if self.scheduler is None:
                import dask

                with dask.config.set(LOCAL_CLUSTER_CONFIG):
                    self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                                 host="127.0.0.1", dashboard_address=None,
                                                 silence_logs=logging.ERROR)
                self._client = Client(self._cluster)
            else:
                try:
                    self._client = Client(self.scheduler, timeout="30s")
                except OSError as exc:
                    raise ConnectionError(
                        f"dask executor: no scheduler answers at {self.scheduler!r} ({exc}); start one "
                        f"with `dask scheduler` and workers with `dask worker {self.scheduler}`") from exc
                n = len(self._client.scheduler_info().get("workers", {}))
                if n == 0:
                    self._client.close()
                    self._client = None
                    raise ConnectionError(f"dask executor: the scheduler at {self.scheduler!r} has no workers; "
                                          f"start some with `dask worker {self.scheduler}`")
                many = {a: int(w.get("nthreads", 1))
                        for a, w in self._client.scheduler_info().get("workers", {}).items()
                        if int(w.get("nthreads", 1)) != 1}
                if many:
                    self._client.close()
                    self._client = None
                    shown = ", ".join(f"{a} ({k} threads)" for a, k in sorted(many.items()))
                    raise ConnectionError(
                        f"dask executor: workers must run one thread each, and {shown} run more. "
                        f"Two explanations in one worker process would share torch's thread "
                        f"count and the plug-ins' seeding, and the run would no longer be "
                        f"reproducible. Start workers with `dask worker {self.scheduler} "
                        f"--nthreads 1 --nworkers N` (one process per core)")
                self.workers = n
        return self._client

    def _host_threads(self) -> dict[str, int]:
        info = self.client().scheduler_info().get("workers", {})
        load: Counter[str] = Counter()
        for addr, w in info.items():
            load[addr.rsplit(":", 1)[0]] += int(w.get("nthreads", 1))
        return dict(load)

    def worker_pids(self) -> dict[str, int]:
        """Process id of every current worker, by address (for tests and diagnostics)."""
        return self.client().run(os.getpid)

    def describe(self) -> dict:
        d = super().describe()
        d["scheduler"] = self.scheduler or "LocalCluster"
        return d

    # -- mapping -----------------------------------------------------------------------------

    def map_chunks(self, init: Init, work: Work, chunks: Sequence[Any]) -> Iterator[tuple[int, list]]:
        from distributed import KilledWorker, as_completed

        client = self.client()
        token = uuid.uuid4().hex
        host_threads = self._host_threads()
        window = self._window or max(4, 3 * sum(host_threads.values()))
        threads = self.threads

        def submit(i: int):
            return client.submit(_run_on_worker, token, init, work, threads, host_threads, i, chunks[i],
                                 key=f"explbench-chunk-{token}-{i}", pure=False)

        queue = list(range(len(chunks)))
        live = {}
        for _ in range(min(window, len(queue))):
            i = queue.pop(0)
            live[i] = submit(i)
        futures = as_completed(list(live.values()))
        try:
            for fut in futures:
                try:
                    index, results, info = fut.result()
                except KilledWorker as exc:
                    raise RuntimeError(
                        f"dask executor: the workers running one chunk died again and again (more "
                        f"than distributed.scheduler.allowed-failures times: too much memory, or a crash "
                        f"in native code?); {len(queue) + len(live)} chunks are unfinished. Run with "
                        f"--executor local to see the error") from exc
                live.pop(index).release()
                if queue:
                    i = queue.pop(0)
                    live[i] = submit(i)
                    futures.add(live[i])
                self.chunks_run.append(info)
                yield index, results
        finally:
            futures.clear()
            if live:  # stopped early or failed: drop what is still queued or running
                client.cancel(list(live.values()))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
