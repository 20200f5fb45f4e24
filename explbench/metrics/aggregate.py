"""Turn protocol records into the tidy metric table.

One row per (generator, direction, explainer, metric, k), computed for each direction and pooled
over directions as ``direction == "all"``. Every (group, metric) draws its bootstrap resamples
from its own generator seeded by :func:`explbench.stats.seed_for`, and rows inside a group are
put in ``case_id`` order first, so results depend neither on the order of the input rows nor on
which other groups or explainers are present.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from explbench.metrics.base import Metric
from explbench.registry import metrics as _registry
from explbench.stats import seed_for

#: columns of the table :func:`aggregate` returns, in order
COLUMNS = ["generator", "direction", "explainer", "metric", "k", "value", "ci_low", "ci_high", "n"]
#: the pooled direction label
ALL = "all"
_GROUP = ["generator", "direction", "explainer"]


def aggregate(
    records: pd.DataFrame,
    seed: int,
    n_boot: int = 1000,
    metrics: list[str] | None = None,
) -> pd.DataFrame:
    """Compute metrics with bootstrap intervals for every (generator, direction, explainer).

    Parameters
    ----------
    records : pandas.DataFrame
        Protocol records, one row per (case, explainer); see :class:`explbench.metrics.Metric`.
    seed : int
        The run's master seed.
    n_boot : int
        Bootstrap resamples per interval.
    metrics : list of str, optional
        Registry names to compute; all registered metrics when omitted. An unknown name raises
        :class:`explbench.registry.UnknownName` (a ``KeyError``). A metric whose ``needs`` the
        records lack (e.g. every explanation failed, so there are no ``weights``) is skipped
        with a warning, so ``failure-rate`` is still reported.

    Returns
    -------
    pandas.DataFrame
        Columns ``generator, direction, explainer, metric, k, value, ci_low, ci_high, n``;
        ``k`` is nullable ``Int64``, ``n`` is ``int64``. Sorted by the first five columns
        (missing ``k`` first).
    """
    missing = [c for c in ("case_id", *_GROUP, "status") if c not in records.columns]
    if missing:
        raise ValueError(f"records lack the column(s) {', '.join(missing)}")
    chosen = _select(records, metrics)
    rows = []
    for (generator, direction, explainer), group in _groups(records):
        for metric in chosen:
            key = seed_for(generator, direction, explainer, metric.name, base=seed)
            rng = np.random.default_rng(key)
            for mv in metric.compute(group, rng, n_boot):
                rows.append(
                    (generator, direction, explainer, mv.metric, mv.k, mv.value, mv.ci_low,
                     mv.ci_high, mv.n)
                )
    return _table(rows)


def _select(records: pd.DataFrame, names: list[str] | None) -> list[Metric]:
    out = []
    for name in (_registry.names() if names is None else names):
        metric = _registry.get(name)()  # unknown names raise here, with a suggestion
        lacking = metric.missing(records)
        if lacking:
            # e.g. a run in which every explanation failed has no weight or flip columns
            warnings.warn(
                f"metric {name!r} skipped: the records lack the column(s) {', '.join(lacking)}",
                stacklevel=3,
            )
            continue
        out.append(metric)
    return out


def _groups(records: pd.DataFrame):
    """Yield ((generator, direction, explainer), rows) per direction and pooled, in sorted order.

    Rows of every group are ordered by ``case_id`` (then direction) with a stable sort.
    """
    ordered = records.sort_values(["case_id", "direction"], kind="mergesort")
    per_direction = {
        (str(g), str(d), str(e)): rows
        for (g, d, e), rows in ordered.groupby(_GROUP, sort=False, dropna=False)
    }
    pooled = {
        (str(g), ALL, str(e)): rows
        for (g, e), rows in ordered.groupby(["generator", "explainer"], sort=False, dropna=False)
    }
    for key in sorted(per_direction):
        yield key, per_direction[key]
    for key in sorted(pooled):
        yield key, pooled[key]


def _table(rows: list[tuple]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=COLUMNS)
    table = table.astype(
        {
            "generator": "object",
            "direction": "object",
            "explainer": "object",
            "metric": "object",
            "k": "Int64",
            "value": "float64",
            "ci_low": "float64",
            "ci_high": "float64",
            "n": "int64",
        }
    )
    table = table.sort_values(
        ["generator", "direction", "explainer", "metric", "k"], na_position="first", kind="mergesort"
    )
    return table.reset_index(drop=True)
