"""Choosing the classifier's batch size by measurement, once per machine and model.

On small CPUs the fastest batch is often small (the svd CNN peaks around 8–16 on 2 cores and
is 1.5–2.5x slower per excerpt at 256–1024); on a GPU it is large. The choice is cached under
the cache folder, so every run on the same machine and model uses the same batch size (which
also keeps results bit-identical between runs).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

CANDIDATES = (1, 2, 4, 8, 16, 32, 64, 128)


def throughput(classify: torch.nn.Module, shape: tuple[int, ...], batch: int, seconds: float = 0.25,
               device: str = "cpu") -> float:
    """Inputs per second of ``classify`` on batches of ``batch`` random inputs of ``shape``."""
    x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(0)).to(device)
    with torch.inference_mode():
        classify(x)  # warm-up
        n, t0 = 0, time.perf_counter()
        while True:
            classify(x)
            n += batch
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds and n >= 2 * batch:
                return n / elapsed


def _cache_file() -> Path:
    from explbench.store import cache_dir

    return cache_dir() / "tuning.json"


def machine_key(model_hash: str, device: str) -> str:
    return "|".join([model_hash, device, platform.machine(), platform.processor() or "?",
                     str(os.cpu_count()), str(torch.get_num_threads())])


def best_batch_size(classify: torch.nn.Module, shape: tuple[int, ...], model_hash: str,
                    device: str = "cpu", candidates: tuple[int, ...] = CANDIDATES) -> int:
    """The fastest batch size among ``candidates``, measured once and cached per machine."""
    key = machine_key(model_hash, device)
    path = _cache_file()
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        table = {}
    if key in table:
        return int(table[key]["batch_size"])
    rates = {b: throughput(classify, shape, b, device=device) for b in candidates}
    best = max(rates, key=rates.get)
    table[key] = {"batch_size": best, "inputs_per_second": {str(b): round(r, 1) for b, r in rates.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(table, indent=2))
    os.replace(tmp, path)
    return best
