"""Turn protocol records into the tidy metric table: the one place intervals are chosen.

Metrics return per-case :class:`~explbench.api.metric.Scores`; :func:`summarise` turns each
into a value with ``n``, ``n_clusters`` and a 95 % interval:

- ``proportion`` (per-case values in [0, 1]: flips, recovery shares, failures): the mean with a
  Clopper-Pearson interval on the *effective* sample size (Kish design effect from the
  intra-cluster correlation; the plain n when every case is its own cluster). Its coverage is
  at least 95 % at every n and p for independent cases (Wilson's dips to 0.83 at n = 6,
  p = 0.03, where the board reads flip rates near 0; ``tests/test_coverage.py`` computes both
  exactly over every n the suites make). A [0, 1]-valued variable has at most the variance of a
  Bernoulli with the same mean, so the interval is conservative for shares such as recovery@k.
  It never has zero width at n >= 1.
- ``mean``, ``median`` and ``association`` (fidelity AUC, point-biserial r): a BCa bootstrap
  that resamples whole clusters. Below :data:`explbench.stats.clusters.MIN_CLUSTERS` clusters, or when
  every resample gives the same number, the interval is NaN: "n too small", never a fake
  zero-width interval.

One row per (generator, direction, explainer, metric, k), for each direction and pooled over
directions as ``direction == "all"``. Every (group, metric) draws its resamples from its own
generator seeded by :func:`explbench.core.seeding.seed_for`, and rows inside a group are put in
``case_id`` order first, so results depend neither on the order of the input rows nor on which
other groups or explainers are present.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from explbench.api.metric import ASSOCIATION, MEDIAN, PROPORTION, Metric, MetricValue, Scores
from explbench.api.registry import metrics as _registry
from explbench.stats.intervals import clopper_pearson_interval

#: columns of the table :func:`aggregate` returns, in order (``n_clusters`` last)
from explbench.stats.bootstrap import cluster_bootstrap
from explbench.stats.clusters import effective_n
from explbench.core.seeding import seed_for
COLUMNS = ["generator", "direction", "explainer", "metric", "k", "value", "ci_low", "ci_high", "n",
           "n_clusters"]
#: the pooled direction label
ALL = "all"
_GROUP = ["generator", "direction", "explainer"]


def summarise(scores: Scores, rng: np.random.Generator, n_boot: int) -> MetricValue:
    """The value, sample sizes and 95 % interval of one set of per-case scores.

    Parameters
    ----------
    scores : Scores
    rng : numpy.random.Generator
        Source of bootstrap resamples (unused for proportions).
    n_boot : int
        Bootstrap resamples per interval.

    Returns
    -------
    MetricValue
        NaN value and interval for an empty sample; NaN interval when the sample is too small
        for an honest one (see the module docstring).
    """
    x = np.asarray(scores.values, dtype=np.float64).ravel()
    clusters = np.asarray(scores.clusters, dtype=object).ravel()
    keep = np.isfinite(x)
    x, clusters = x[keep], clusters[keep]
    labels = None if scores.labels is None else np.asarray(scores.labels, dtype=bool).ravel()[keep]
    n, n_clusters = int(x.size), int(len(set(clusters.tolist())))
    nan = float("nan")
    if n == 0:
        return MetricValue(scores.metric, scores.k, nan, nan, nan, 0, 0)
    if scores.kind == PROPORTION:
        if x.min() < 0.0 or x.max() > 1.0:
            raise ValueError(f"{scores.metric}: proportion scores must lie in [0, 1]")
        value = float(x.mean())
        n_eff = effective_n(x, clusters)
        lo, hi = clopper_pearson_interval(value * n_eff, n_eff)
        return MetricValue(scores.metric, scores.k, value, float(lo), float(hi), n, n_clusters)
    if scores.kind == ASSOCIATION:
        stat = scores.statistic
        value = float(stat(x, labels))
        lo, hi = (nan, nan) if not np.isfinite(value) else cluster_bootstrap(
            (x, labels), clusters, stat, rng, n_boot=n_boot)
    else:
        func = np.median if scores.kind == MEDIAN else np.mean
        value = float(func(x))
        lo, hi = cluster_bootstrap((x,), clusters, func, rng, n_boot=n_boot)
    return MetricValue(scores.metric, scores.k, value, float(lo), float(hi), n, n_clusters)


def aggregate(
    records: pd.DataFrame,
    seed: int,
    n_boot: int = 1000,
    metrics: list[str] | None = None,
) -> pd.DataFrame:
    """Compute metrics with intervals for every (generator, direction, explainer).

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
        :class:`explbench.api.registry.UnknownName` (a ``KeyError``). A metric whose ``needs`` the
        records lack is skipped with a warning, so ``failure-rate`` is still reported.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`; ``k`` is nullable ``Int64``, ``n`` and ``n_clusters`` are
        ``int64``. Sorted by the first five columns (missing ``k`` first).
    """
    missing = [c for c in ("case_id", *_GROUP, "status") if c not in records.columns]
    if missing:
        raise ValueError(f"records lack the column(s) {', '.join(missing)}")
    chosen = _select(records, metrics)
    rows = []
    for (generator, direction, explainer), group in _groups(records):
        for metric in chosen:
            rng = np.random.default_rng(seed_for(generator, direction, explainer, metric.name,
                                                 base=seed))
            for scores in metric.scores(group):
                mv = summarise(scores, rng, n_boot)
                rows.append((generator, direction, explainer, mv.metric, mv.k, mv.value, mv.ci_low,
                             mv.ci_high, mv.n, mv.n_clusters))
    return _table(rows)


def _select(records: pd.DataFrame, names: list[str] | None) -> list[Metric]:
    out = []
    for name in (_registry.names() if names is None else names):
        metric = _registry.get(name)()  # unknown names raise here, with a suggestion
        lacking = metric.missing(records)
        if lacking:
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
    ordered = ordered.assign(direction=by_target(ordered["direction"]))
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


def by_target(directions: pd.Series) -> pd.Series:
    """Directions as written (``"a-to-b"``) for two-class tasks; ``"to-b"`` with more classes.

    With C > 2 classes there are C (C - 1) original-target pairs, most with a case or two, so
    cases are grouped by their target class instead (the pooled ``"all"`` rows remain).
    """
    names = directions.astype(str)
    if names.nunique() <= 2:
        return names
    return names.map(lambda d: "to-" + d.rsplit("-to-", 1)[-1])


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
            "n_clusters": "int64",
        }
    )
    table = table.sort_values(
        ["generator", "direction", "explainer", "metric", "k"], na_position="first", kind="mergesort"
    )
    return table.reset_index(drop=True)
