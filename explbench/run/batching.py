"""Choosing the classifier's batch size by measurement, robustly, once per machine and model.

On small CPUs the fastest batch is often small (the svd CNN peaks around 8–16 on 2 cores and
is 1.5–2.5x slower per excerpt at 256–1024); on a GPU it is large. Timing on shared machines
is noisy (another process can take a core for minutes), so a choice is made like this:

- **measured**: every candidate is timed in several short rounds, *interleaved* (round r
  visits the candidates in a rotated order, so a slow spell hits all of them alike), and each
  candidate's rate is the median over rounds. A candidate other than the plain default
  (:data:`DEFAULT_BATCH`) is chosen only if its median beats the default's by ``margin``.
- **cached**: the choice is stored under a key naming the model, device, CPU model, core
  count, torch version and torch threads, so a new machine or a new torch measures again.
  Every later use first re-checks the cached batch against the default, interleaved; when the
  default is now faster by ``margin``, the entry is measured anew (**remeasured**), so a
  measurement taken on a busy machine never makes later runs slower than the default.
- **pinned**: a batch size given by the user (``--batch-size N``) is used as is.

:func:`best_batch_size` returns a :class:`BatchChoice`: an ``int`` (the batch size) that also
says how it was chosen, for provenance (:meth:`BatchChoice.to_dict`).

Batch sizes change float rounding slightly, so a run should choose once (in the main process)
and hand the number to its workers, and a resumed run should reuse the recorded number.
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from explbench.protocol.scorer import DEFAULT_BATCH

CANDIDATES = (1, 2, 4, 8, 16, 32, 64, 128)
HOW = ("pinned", "measured", "cached", "remeasured")

Timer = Callable[[], float]


class BatchChoice(int):
    """A batch size (an ``int``, usable wherever one is) with how it was chosen.

    Attributes
    ----------
    how : {"pinned", "measured", "cached", "remeasured"}
    key : str
        The cache key (machine, model, torch); empty when pinned.
    rates : dict of int to float
        Median inputs per second per candidate batch size, from the measurement behind the
        choice (empty when pinned).
    check : dict of str to float
        On a cache hit, the re-check: median inputs per second of the cached batch
        (``"cached"``) and of the default (``"default"``).
    """

    how: str
    key: str
    rates: dict[int, float]
    check: dict[str, float]

    def __new__(cls, value: int, how: str, key: str = "", rates: dict[int, float] | None = None,
                check: dict[str, float] | None = None) -> "BatchChoice":
        if how not in HOW:
            raise ValueError(f"how must be one of {HOW}, got {how!r}")
        obj = super().__new__(cls, int(value))
        obj.how, obj.key = how, key
        obj.rates = dict(rates or {})
        obj.check = dict(check or {})
        return obj

    def to_dict(self) -> dict:
        """JSON-ready provenance: batch_size, how, key, rates, check."""
        return {"batch_size": int(self), "how": self.how, "key": self.key,
                "inputs_per_second": {str(b): round(r, 1) for b, r in sorted(self.rates.items())},
                "check": {k: round(v, 1) for k, v in self.check.items()}}

    def __repr__(self) -> str:
        return f"BatchChoice({int(self)}, how={self.how!r})"


# -- measuring ---------------------------------------------------------------------------------


def throughput(classify: torch.nn.Module, shape: tuple[int, ...], batch: int, seconds: float = 0.25,
               device: str = "cpu", timer: Timer = time.perf_counter,
               inputs: torch.Tensor | None = None) -> float:
    """Inputs per second of ``classify`` on batches of ``batch`` random inputs of ``shape``.

    Runs at least two batches and at least ``seconds`` of wall time (as ``timer`` counts it).
    """
    x = inputs if inputs is not None else torch.randn(batch, *shape, generator=torch.Generator().manual_seed(0))
    x = x.to(device)
    with torch.inference_mode():
        n, t0 = 0, timer()
        while True:
            classify(x)
            n += batch
            elapsed = timer() - t0
            if elapsed >= seconds and n >= 2 * batch:
                return n / elapsed


def measure(classify: torch.nn.Module, shape: tuple[int, ...], candidates: Sequence[int], *,
            device: str = "cpu", rounds: int = 5, seconds: float = 0.1,
            timer: Timer = time.perf_counter) -> dict[int, list[float]]:
    """Rates (inputs/s) of every candidate in ``rounds`` interleaved rounds.

    Round ``r`` visits the candidates rotated by ``r`` (and reversed on odd rounds), so no
    candidate is always measured first or right after the largest one.

    Returns
    -------
    dict of int to list of float
        ``rounds`` rates per candidate, in round order.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    cands = list(dict.fromkeys(int(b) for b in candidates))
    gen = torch.Generator().manual_seed(0)
    inputs = {b: torch.randn(b, *shape, generator=gen).to(device) for b in cands}
    with torch.inference_mode():
        for b in cands:  # warm-up: first calls allocate and pick kernels
            classify(inputs[b])
    rates: dict[int, list[float]] = {b: [] for b in cands}
    for r in range(rounds):
        order = cands[r % len(cands):] + cands[: r % len(cands)]
        if r % 2:
            order = order[::-1]
        for b in order:
            rates[b].append(throughput(classify, shape, b, seconds, device, timer, inputs[b]))
    return rates


def pick(medians: dict[int, float], default: int, margin: float) -> int:
    """The fastest candidate, unless it beats ``default`` by less than ``margin`` (then ``default``)."""
    best = max(medians, key=lambda b: (medians[b], -b))
    if default in medians and medians[best] < (1.0 + margin) * medians[default]:
        return default
    return best


# -- the cache ---------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "?"


def machine_key(model_hash: str, device: str, shape: tuple[int, ...] = ()) -> str:
    """Cache key: model, input shape, device, CPU architecture and model, cores, torch version
    and threads. Any of these changing means the choice is measured again."""
    from explbench.run.executors.base import available_cores

    return "|".join([model_hash, "x".join(map(str, shape)), device, platform.machine(), cpu_model(),
                     f"cores={available_cores()}", f"torch={torch.__version__}",
                     f"threads={torch.get_num_threads()}"])


def _default_cache_file() -> Path:
    from explbench.store.provenance import cache_dir

    return cache_dir() / "tuning.json"


def _read(path: Path) -> dict:
    try:
        table = json.loads(path.read_text())
        return table if isinstance(table, dict) else {}
    except (OSError, ValueError):
        return {}


def _write(path: Path, table: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(table, indent=2, sort_keys=True))
    os.replace(tmp, path)


# -- choosing ----------------------------------------------------------------------------------


def best_batch_size(classify: torch.nn.Module, shape: tuple[int, ...], model_hash: str,
                    device: str = "cpu", candidates: Sequence[int] = CANDIDATES, *,
                    pinned: int | None = None, default: int = DEFAULT_BATCH, rounds: int = 5,
                    seconds: float = 0.1, check_rounds: int = 3, margin: float = 0.05,
                    cache_file: str | os.PathLike | None = None,
                    timer: Timer = time.perf_counter) -> BatchChoice:
    """The batch size to classify with, and how it was chosen (see the module docstring).

    Parameters
    ----------
    classify : torch.nn.Module
        Domain inputs ``(B, *shape)`` to outputs.
    shape : tuple of int
        One input's shape (the task's domain shape).
    model_hash : str
        Identifies the model's weights (part of the cache key).
    device : str
    candidates : sequence of int
        Batch sizes to try; ``default`` is always tried too.
    pinned : int, optional
        Use this batch size, measure nothing (``how="pinned"``).
    default : int
        The plain default every choice must beat by ``margin``.
    rounds, seconds : int, float
        Interleaved rounds per measurement, and seconds per candidate and round.
    check_rounds : int
        Interleaved rounds of the cached-vs-default re-check on a cache hit.
    margin : float
        Relative speed a non-default batch must gain over the default to be chosen or kept.
    cache_file : path, optional
        Default ``<cache>/tuning.json``.
    timer : callable
        Clock in seconds (injectable for tests).

    Returns
    -------
    BatchChoice
    """
    if pinned is not None:
        if int(pinned) < 1:
            raise ValueError(f"--batch-size must be >= 1, got {pinned}")
        return BatchChoice(int(pinned), "pinned")
    if default < 1:
        raise ValueError(f"default batch size must be >= 1, got {default}")
    key = machine_key(model_hash, device, tuple(shape))
    path = Path(cache_file) if cache_file is not None else _default_cache_file()
    table = _read(path)
    entry = table.get(key)
    how = "measured"
    check: dict[str, float] = {}
    if isinstance(entry, dict) and "batch_size" in entry:
        cached = int(entry["batch_size"])
        rates = {int(b): float(r) for b, r in entry.get("inputs_per_second", {}).items()}
        if cached == default:
            return BatchChoice(cached, "cached", key, rates)
        now = measure(classify, shape, [cached, default], device=device, rounds=check_rounds,
                      seconds=seconds, timer=timer)
        check = {"cached": float(np.median(now[cached])), "default": float(np.median(now[default]))}
        if check["default"] < (1.0 + margin) * check["cached"]:
            return BatchChoice(cached, "cached", key, rates, check)
        how = "remeasured"  # the default is now clearly faster: the cached measurement was off
    cands = sorted(set(int(b) for b in candidates) | {default})
    raw = measure(classify, shape, cands, device=device, rounds=rounds, seconds=seconds, timer=timer)
    medians = {b: float(np.median(r)) for b, r in raw.items()}
    best = pick(medians, default, margin)
    table[key] = {"batch_size": best, "inputs_per_second": {str(b): round(r, 1) for b, r in medians.items()},
                  "rounds": rounds, "seconds_per_round": seconds, "default": default,
                  "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    _write(path, table)
    return BatchChoice(best, how, key, medians, check)
