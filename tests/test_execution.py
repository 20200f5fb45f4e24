"""Executors: same results under local / processes / dask, state built once per worker, threads
split over the cores, and a worker killed mid-chunk loses and duplicates nothing."""

from __future__ import annotations

import os
import signal
import threading
import time
from functools import partial
from pathlib import Path

import pytest

from explbench.run.executors import chunk_size, chunked, get_executor, threads_per_worker
from explbench.run.executors.probe import ProbeConfig, probe_init, probe_work
from explbench.run.executors.dask_executor import LOCAL_CLUSTER_CONFIG

UNITS = list(range(24))
CHUNKS = chunked(UNITS, 4)


def run(executor, config: ProbeConfig = ProbeConfig(), chunks=CHUNKS) -> tuple[dict[int, float], list[dict]]:
    """Values by unit, and every record, from one map_chunks call (asserting each chunk once)."""
    seen: list[int] = []
    records: list[dict] = []
    for index, results in executor.map_chunks(partial(probe_init, config), probe_work, chunks):
        seen.append(index)
        assert [r["unit"] for r in results] == list(chunks[index])
        records += results
    assert sorted(seen) == list(range(len(chunks)))
    values = {r["unit"]: r["value"] for r in records}
    assert len(values) == len(records)  # no unit twice
    return values, records


@pytest.fixture(scope="module")
def local_values() -> dict[int, float]:
    with get_executor("local") as ex:
        values, records = run(ex)
    assert len({r["init_id"] for r in records}) == 1  # one state for the whole call
    return values


# -- pure logic -------------------------------------------------------------------------------


def test_threads_per_worker_never_oversubscribes():
    for cores in (1, 2, 3, 8, 64):
        for workers in (1, 2, 3, 5, 8, 100):
            t = threads_per_worker(workers, cores)
            assert t >= 1
            assert workers * t <= max(cores, workers)  # one thread each is the floor
    assert threads_per_worker(2, 8) == 4
    assert threads_per_worker(3, 8) == 2
    with pytest.raises(ValueError, match="workers"):
        threads_per_worker(0, 2)


def test_chunked_keeps_groups_together_and_order():
    units = [("a", 1), ("a", 2), ("b", 1), ("c", 1), ("c", 2), ("c", 3), ("d", 1)]
    chunks = chunked(units, 3, key=lambda u: u[0])
    assert [u for c in chunks for u in c] == units
    assert chunks == [[("a", 1), ("a", 2), ("b", 1)], [("c", 1), ("c", 2), ("c", 3)], [("d", 1)]]
    assert chunked(list(range(5)), 2) == [[0, 1], [2, 3], [4]]
    assert chunk_size(1000, 2) == 63 and chunk_size(3, 2) == 1 and chunk_size(10_000, 1) == 64


def test_get_executor_rejects_bad_options():
    with pytest.raises(ValueError, match="unknown executor 'threads'"):
        get_executor("threads")
    with pytest.raises(ValueError, match="--scheduler is for --executor dask"):
        get_executor("processes", scheduler="tcp://x:8786")
    with pytest.raises(ValueError, match="processes --workers 2"):
        get_executor("local", workers=2)


# -- real workers -----------------------------------------------------------------------------


def test_processes_give_local_results_with_state_once_per_worker(local_values):
    with get_executor("processes", workers=2) as ex:
        assert ex.threads == threads_per_worker(2)
        values, records = run(ex)
    assert values == local_values  # exact: float64 results of the same arithmetic
    pids = {r["pid"] for r in records}
    # one state per worker process, whatever the number of chunks each ran
    assert len({r["init_id"] for r in records}) == len(pids) <= 2
    cores = os.cpu_count() or 1
    assert all(r["threads"] == ex.threads for r in records)
    assert len(pids) * ex.threads <= max(cores, len(pids))


@pytest.fixture(scope="module")
def dask_executor():
    """One private LocalCluster of 2 workers for this module's dask tests (closed at the end)."""
    with get_executor("dask", workers=2) as ex:
        yield ex


def test_dask_local_cluster_gives_local_results(local_values, dask_executor):
    ex = dask_executor
    assert ex.describe() == {"executor": "dask", "workers": 2, "threads_per_worker": threads_per_worker(2),
                             "scheduler": "LocalCluster"}
    values, records = run(ex)
    assert values == local_values
    pids = {r["pid"] for r in records}
    assert len({r["init_id"] for r in records}) == len(pids) <= 2
    assert all(r["threads"] == threads_per_worker(2) for r in records)
    # the private cluster's workers run with the quiet settings (no profiler, slow ticks)
    for key, value in LOCAL_CLUSTER_CONFIG.items():
        seen = ex.client().run(lambda k=key: __import__("dask").config.get(k))
        assert list(seen.values()) == [value, value], key
    assert "stealing" not in ex.client().run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.extensions))


def _kill_first_busy_worker(marker_dir: Path, killed: list, stop: threading.Event) -> None:
    """Wait until some worker has started a chunk (a marker names it), then SIGKILL that worker."""
    while not stop.is_set():
        markers = sorted(marker_dir.glob("start-*"))
        if markers:
            _, first_unit, pid = markers[0].name.split("-")
            time.sleep(0.2)  # well inside the chunk (>= 1 s long)
            os.kill(int(pid), signal.SIGKILL)
            killed.append((int(first_unit), int(pid)))
            return
        time.sleep(0.02)


@pytest.mark.parametrize("name", ["dask", "processes"])
def test_killed_worker_loses_and_duplicates_nothing(name, local_values, tmp_path, request):
    config = ProbeConfig(seconds_per_unit=0.25, marker_dir=str(tmp_path))  # 4 units: 1 s per chunk
    chunks = CHUNKS[:4]
    killed: list[tuple[int, int]] = []
    stop = threading.Event()
    # dask: the module's cluster, already started (this test runs after the other dask test)
    ex = request.getfixturevalue("dask_executor") if name == "dask" else get_executor(name, workers=2)
    watcher = threading.Thread(target=_kill_first_busy_worker, args=(tmp_path, killed, stop), daemon=True)
    watcher.start()
    try:
        values, records = run(ex, config, chunks)
    finally:
        stop.set()
        watcher.join()
        if name != "dask":
            ex.close()
    assert killed, "no worker was killed: the test did not test anything"
    first_unit, pid = killed[0]
    # every unit exactly once (run() checks), with the values a local run computes
    assert values == {u: local_values[u] for c in chunks for u in c}
    # the interrupted chunk was started again by another process, which delivered its results
    starts = [m.name for m in tmp_path.glob(f"start-{first_unit}-*")]
    assert len(starts) >= 2, starts
    assert all(r["pid"] != pid for r in records if r["unit"] in chunks[first_unit // 4])


def test_a_forward_gives_the_same_bits_at_any_thread_count():
    """A worker of --executor processes has one torch thread, a local run all of them. Every
    batch is computed on one thread (several batches side by side), so the CNN's float32
    outputs, and the metrics built on them, are bit for bit the same either way."""
    import numpy as np
    import torch

    from explbench.api.model_access import ModelAccess, forward_batched
    from explbench.tasks.svd.model import Probabilities, SchlueterCNN

    torch.manual_seed(0)
    model = Probabilities(SchlueterCNN()).eval()
    x = torch.randn(130, 80, 115, generator=torch.Generator().manual_seed(1))
    before = torch.get_num_threads()
    out = {}
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            out[n] = forward_batched(model, x, 64).numpy()
        np.testing.assert_array_equal(out[1], out[2])
        np.testing.assert_array_equal(out[1], out[3])
        for n in (1, 2):
            torch.set_num_threads(n)
            access = ModelAccess(model, batch_size=64)
            assert access.threads == n
            np.testing.assert_array_equal(access.predict(x).numpy(), out[1])
    finally:
        torch.set_num_threads(before)
    assert torch.get_num_threads() == before
    assert out[1].shape == (130, 2) and np.isfinite(out[1]).all()
