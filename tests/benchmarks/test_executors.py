"""Executor throughput: processes and dask at 1 and 2 workers against local, as ratios in one run.

The workload classifies unit-seeded random inputs with the svd-synth CNN (loaded once per
worker). ``single`` is one process with one torch thread: the per-core rate. Target: with w
workers, a rate of at least 0.8 x min(w, cores) x single, counted once every worker runs
(start-up, which spawns processes and loads the model, is reported apart).

Chunks last about 1.5 s here. The runner's chunks are longer: in the committed bundles they
take 9-120 s (``chunk_size`` gives each worker about 8 chunks of up to 64 units), so the
per-chunk cost of an executor (dask: scheduling, shipping, the client's event loop) weighs less
in a run than here. With 0.2 s chunks and one round, dask-2's efficiency had a median of 0.75
over 7 runs; the client and scheduler take 0.066 of a core at 8 chunks/s, 0.018 at 1 chunk/s.

This machine is a shared VM whose single-core rate drifted between 126 and 162 inputs/s over
minutes, so the configurations are measured in ``ROUNDS`` interleaved rounds; each ratio is
taken within its round and the median over rounds is reported (and asserted), with the range
beside it.
"""

import statistics
import time
from functools import partial

from explbench.run.executors import available_cores, chunked, get_executor
from explbench.run.executors.probe import ClassifierConfig, classifier_init, classifier_work

UNITS = list(range(384))  # 384 x 8 = 3072 forwards a configuration
CHUNK = 32  # 256 forwards, ~1.5 s on one core
ROUNDS = 3
CONFIGS = (("single", "local", None, 1), ("local", "local", None, None),
           ("processes-1", "processes", 1, None), ("processes-2", "processes", 2, None),
           ("dask-1", "dask", 1, None), ("dask-2", "dask", 2, None))


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
    rounds: list[dict[str, dict]] = []

    def measure():
        for _ in range(ROUNDS):
            rounds.append({key: rate(name, w, threads=t) for key, name, w, t in CONFIGS})

    benchmark.pedantic(measure, rounds=1, iterations=1)
    lines = []
    worst = float("inf")
    summary = {}
    for key, *_ in CONFIGS:
        w = rounds[0][key]["workers"]
        ratios = [r[key]["inputs_per_second"] / r["local"]["inputs_per_second"] for r in rounds]
        effs = [r[key]["inputs_per_second"] / (min(w, cores) * r["single"]["inputs_per_second"]) for r in rounds]
        eff = statistics.median(effs)
        summary[key] = {"workers": w, "threads_per_worker": rounds[0][key]["threads_per_worker"],
                        "inputs_per_second": [r[key]["inputs_per_second"] for r in rounds],
                        "start_seconds": [r[key]["start_seconds"] for r in rounds],
                        "ratio_to_local": round(statistics.median(ratios), 2), "efficiency": round(eff, 2),
                        "efficiency_range": [round(min(effs), 2), round(max(effs), 2)]}
        if key.startswith(("processes", "dask")):
            worst = min(worst, eff)
        rates = statistics.median(summary[key]["inputs_per_second"])
        lines.append(f"{key:12s} workers {w} x {summary[key]['threads_per_worker']} threads: {rates:7.1f} "
                     f"inputs/s, {statistics.median(ratios):.2f}x local, efficiency {eff:.2f} "
                     f"({min(effs):.2f}-{max(effs):.2f}; start-up {statistics.median(summary[key]['start_seconds'])} s)")
    benchmark.extra_info.update(summary)
    print(f"\nexecutors on {cores} cores, median of {ROUNDS} interleaved rounds "
          f"(efficiency = rate / (min(workers, cores) x single-thread rate of the same round)):")
    print("\n".join(lines))
    assert worst >= 0.8
