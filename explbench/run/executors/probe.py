"""Small deterministic workloads that exercise an executor end to end (tests, benchmarks, clusters).

:func:`probe_init` / :func:`probe_work` compute, per integer unit, a value that depends only on
the unit (a few float64 tanh-matrix steps from a unit-seeded vector), and report which process
and how many torch threads computed it; optional sleeps and marker files let a test find a
worker that is busy with a chunk and kill it. :func:`classifier_init` / :func:`classifier_work`
classify unit-seeded random inputs with a task's real classifier, loaded once per worker.

Use them with ``functools.partial`` so they stay picklable, e.g.
``ex.map_chunks(partial(probe_init, ProbeConfig()), probe_work, [[0, 1], [2, 3]])``.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class ProbeConfig:
    """Parameters of the probe workload.

    Attributes
    ----------
    size : int
        Length of each unit's vector (and side of the fixed matrix).
    steps : int
        Matrix-tanh steps per unit.
    seconds_per_unit : float
        Extra sleep per unit (s), to make chunks last long enough to be interrupted.
    marker_dir : str, optional
        When given, a worker writes ``start-<chunk>-<pid>`` there as it starts a chunk.
    """

    size: int = 64
    steps: int = 8
    seconds_per_unit: float = 0.0
    marker_dir: str | None = None


@dataclass
class ProbeState:
    config: ProbeConfig
    matrix: torch.Tensor  # (size, size), float64
    init_id: str  # unique per call of probe_init: proves the state is built once per worker
    pid: int


def probe_init(config: ProbeConfig) -> ProbeState:
    """The per-worker state: a fixed seeded matrix ``(size, size)`` scaled to keep tanh unsaturated."""
    g = torch.Generator().manual_seed(12345)
    m = torch.randn(config.size, config.size, generator=g, dtype=torch.float64) / config.size**0.5
    return ProbeState(config, m, uuid.uuid4().hex, os.getpid())


def probe_work(state: ProbeState, chunk: list[int]) -> list[dict]:
    """One record per unit of ``chunk``: ``unit``, ``value`` (deterministic), ``pid``, ``threads``, ``init_id``."""
    cfg = state.config
    if cfg.marker_dir is not None and chunk:
        Path(cfg.marker_dir, f"start-{chunk[0]}-{os.getpid()}").touch()
    out = []
    for unit in chunk:
        g = torch.Generator().manual_seed(int(unit))
        x = torch.randn(cfg.size, generator=g, dtype=torch.float64)
        with torch.inference_mode():
            for _ in range(cfg.steps):
                x = torch.tanh(state.matrix @ x)
        if cfg.seconds_per_unit > 0:
            time.sleep(cfg.seconds_per_unit)
        out.append({"unit": int(unit), "value": float(x.sum()), "pid": state.pid,
                    "threads": torch.get_num_threads(), "init_id": state.init_id})
    return out


# -- a real model ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassifierConfig:
    """Classify ``batch`` unit-seeded random domain inputs per unit with a registered task's model."""

    task: str = "svd-synth"
    batch: int = 8


@dataclass
class ClassifierState:
    config: ClassifierConfig
    classify: torch.nn.Module
    shape: tuple[int, ...]


def classifier_init(config: ClassifierConfig) -> ClassifierState:
    from explbench.api import registry

    task = registry.tasks.get(config.task)()
    return ClassifierState(config, task.classifier().eval(), tuple(task.domain_shape))


def classifier_work(state: ClassifierState, chunk: list[int]) -> list[dict]:
    """Per unit: the mean probability of class 1 over ``batch`` random inputs seeded by the unit."""
    out = []
    for unit in chunk:
        g = torch.Generator().manual_seed(int(unit))
        x = torch.randn(state.config.batch, *state.shape, generator=g)
        with torch.inference_mode():
            p = state.classify(x)[:, 1].mean()
        out.append({"unit": int(unit), "value": float(p)})
    return out
