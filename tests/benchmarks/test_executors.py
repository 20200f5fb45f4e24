"""Executor throughput: processes and dask at 1 and 2 workers against local, as ratios in one run.

The workload classifies unit-seeded random inputs with the svd-synth CNN (loaded once per
worker). ``single`` is one process with one torch thread: the per-core rate. Target: with w
workers, a rate of at least 0.8 x min(w, cores) x single, counted once every worker runs
(start-up, which spawns processes and loads the model, is reported apart).
"""

import time
from functools import partial


from explbench.execution import available_cores, chunked, get_executor
from explbench.execution.probe import ClassifierConfig, classifier_init, classifier_work

UNITS = list(range(160))  # 160 x 8 = 1280 forwards
CHUNK = 4


def rate(name: str, workers: int | None, threads: int | None = None) -> dict:
    """Throughput of one executor: inputs per second once every worker is running (counted from
    the moment each worker has delivered a chunk to the last result), and start-up seconds."""
    chunks = chunked(UNITS, CHUNK)
    batch = ClassifierConfig().batch
    t0 = time.perf_counter()
    arrivals: list[tuple[float, str, int]] = []
    with get_executor(name, workers=workers, threads=threads) as ex:
        for _, results in ex.map_chunks(partial(classifier_init, ClassifierConfig()), classifier_work, chunks):
            arrivals.append((time.perf_counter(), ex.chunks_run[-1].worker, len(results)))
        desc = ex.describe()
    seen: set[str] = set()
    ready = None
    for i, (t, worker, _) in enumerate(arrivals):
        seen.add(worker)
        if len(seen) == min(desc["workers"], len(chunks)):
            ready = i
            break
    later = arrivals[ready + 1:] if ready is not None else []
    steady = (sum(n for *_, n in later) * batch / (later[-1][0] - arrivals[ready][0])
              if len(later) >= 2 else float("nan"))
    return {**desc, "start_seconds": round(arrivals[ready][0] - t0, 2) if ready is not None else None,
            "total_seconds": round(arrivals[-1][0] - t0, 2), "inputs_per_second": round(steady, 1)}


def test_executor_efficiency(benchmark):
    cores = available_cores()
    runs = {}

    def measure():
        runs["single"] = rate("local", None, threads=1)
        runs["local"] = rate("local", None)
        for name in ("processes", "dask"):
            for w in (1, 2):
                runs[f"{name}-{w}"] = rate(name, w)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    single = runs["single"]["inputs_per_second"]
    lines = []
    worst = float("inf")
    for key, r in runs.items():
        w = r["workers"]
        ratio = r["inputs_per_second"] / runs["local"]["inputs_per_second"]
        eff = r["inputs_per_second"] / (min(w, cores) * single)
        r.update(ratio_to_local=round(ratio, 2), efficiency=round(eff, 2))
        if key.startswith(("processes", "dask")):
            worst = min(worst, eff)
        lines.append(f"{key:12s} workers {w} x {r['threads_per_worker']} threads: {r['inputs_per_second']:7.1f} "
                     f"inputs/s, {ratio:.2f}x local, efficiency {eff:.2f} (start-up {r['start_seconds']} s)")
    benchmark.extra_info.update(runs)
    print(f"\nexecutors on {cores} cores (efficiency = rate / (min(workers, cores) x single-thread rate)):")
    print("\n".join(lines))
    assert worst >= 0.8
