"""Suites: TOML files that say what a run does; presets ship in ``explbench/suites``.

A suite file::

    name = "smoke"
    task = "svd-synth"
    seed = 0
    segmentation = "grid:5x4"
    content = "mean"
    budget = 256
    explainers = ["lime", "random", "oracle-norm"]

    [explainer.lime]
    n_samples = 256

    [generator.cw-spectrogram]
    n = 12

    [generator.localized]
    from = ["cw-spectrogram"]
    ks = [1, 3, 5]

``n``, ``from`` and ``per_cluster`` are read by the harness (``per_cluster``: at most that many
cases per cluster, e.g. per song; passed to generators that take it); every other key of an
``[explainer.*]`` or ``[generator.*]`` table is a constructor argument of that plug-in, and the
keys of an optional ``[task-params]`` table are constructor arguments of the task (e.g.
``weights = "model.safetensors"``).

Top-level settings besides names: ``budget`` (model queries per explanation), ``n_boot``
(bootstrap resamples), ``agnostic_samples`` (size of the shared agnostic-fidelity
neighbourhood, 0 = off), ``content`` (the content type of that neighbourhood, and of explainers
whose constructor has no default for it; an explainer's own default stands unless its table
sets ``content``), ``aggregation`` and ``extra_aggregations`` (how dense maps are projected onto
the grid), ``timeout`` (seconds per explanation, 0 = none; default 120 s + 0.1 s per query of
budget) and ``power_discordance`` (the discordance assumed in the power statement).

Everything is checked before a run writes anything: names against the registries, types and
ranges of every setting and plug-in parameter, split names and the grid against the task's
real domain. Errors name the file, the line and the key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path


PRESETS_DIR = Path(__file__).resolve().parent.parent / "suites"
#: how a dense map is projected onto the grid (Segmentation.project)
AGGREGATIONS = ("sum", "mean", "mean_pos", "mean_abs")
#: generator-table keys the harness reads itself
HARNESS_GENERATOR_KEYS = ("n", "from", "per_cluster")
#: split names of a task that declares no ``splits``
DEFAULT_SPLITS = ("train", "valid", "test")
#: the smallest n_boot accepted
MIN_N_BOOT = 100


class SuiteError(ValueError):
    """A suite file that cannot be used, with the file, line and key at fault."""


@dataclass
class SuiteConfig:
    """A resolved suite: everything a run needs, JSON-serialisable via :meth:`to_dict`."""

    name: str
    task: str = "svd-synth"
    seed: int = 0
    split: str = "test"
    segmentation: str = "grid:5x4"
    content: str = "mean"
    budget: int | None = None
    n_boot: int = 1000
    agnostic_samples: int = 256
    aggregation: str = "mean"
    extra_aggregations: list[str] = field(default_factory=list)
    timeout: float | None = None
    power_discordance: float = 0.4
    explainers: list[str] = field(default_factory=list)
    explainer_params: dict[str, dict] = field(default_factory=dict)
    generators: dict[str, dict] = field(default_factory=dict)
    task_params: dict = field(default_factory=dict)
    description: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SuiteConfig":
        """A config from :meth:`to_dict` output; keys an older version lacked take defaults."""
        if not isinstance(d, dict):
            raise SuiteError(f"a suite must be a table of settings, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SuiteError(f"unknown setting(s) {', '.join(map(repr, unknown))}; settings are "
                             f"{', '.join(sorted(known))}")
        if "name" not in d:
            raise SuiteError("the suite has no name")
        return cls(**d)


_TOP_KEYS = {f.name for f in dataclasses.fields(SuiteConfig)} - {"explainer_params", "generators", "task_params"}
_TABLES = {"explainer", "generator", "task-params"}


# -- validation ----------------------------------------------------------------------------------


def _generator_order(generators: dict[str, dict]) -> list[str]:
    """Base generators first, then derived ones after their parents."""
    order: list[str] = []
    pending = dict(generators)
    while pending:
        ready = [g for g, p in pending.items() if all(q in order for q in p.get("from", []))]
        if not ready:
            raise ValueError(f"generators derive from each other in a cycle: {sorted(pending)}")
        for g in sorted(ready):
            order.append(g)
            del pending[g]
    return order


