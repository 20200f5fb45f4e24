"""The real unit loop under every executor: the tiny suite through ``explbench run`` with
``local``, ``processes --workers 2`` and ``dask --workers 2`` gives byte-identical metrics.csv.

Each executor calls the same loop (:func:`explbench.run.loop.worker_work` in its workers,
with the same error wrapping, time limit and seeding); a worker whose seeding or torch thread
count differed would change a flip or a fidelity value, and so these bytes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

#: a whole run or more: `pytest -m 'not slow'` leaves it out of a quick loop; `make test` runs it
pytestmark = pytest.mark.slow

TINY = str(Path(__file__).resolve().parent / "data" / "tiny.toml")


def run(out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)  # the tests' shared cache: test_run makes the tiny suite's cases
    return subprocess.run([sys.executable, "-m", "explbench.cli", "run", "--suite", TINY,
                           "--explainers", "lime,random,saliency", "--batch-size", "16",
                           "--quiet", "--out", str(out), *extra],
                          env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    root = tmp_path_factory.mktemp("executors")
    res = run(root / "local")
    assert res.returncode == 0, res.stderr
    return root


@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_every_executor_writes_the_same_metrics(local, executor):
    res = run(local / executor, "--executor", executor, "--workers", "2")
    assert res.returncode == 0, res.stderr
    a = (local / "local" / "metrics.csv").read_bytes()
    b = (local / executor / "metrics.csv").read_bytes()
    assert a == b, f"{executor} wrote another metrics.csv than local"


def test_dask_workers_with_several_threads_are_refused():
    from distributed import LocalCluster

    from explbench.run.executors.dask_executor import DaskExecutor

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cl:
        ex = DaskExecutor(scheduler=cl.scheduler_address)
        with pytest.raises(ConnectionError, match="--nthreads 1"):
            ex.client()
