"""The metric interface: per-case :class:`Scores`, aggregate :class:`MetricValue`, and helpers.

A metric reads protocol records (one row per (case, explainer), see ``Metric.scores``) for one
group of cases and returns per-case scores: one :class:`Scores` per reported quantity. It never
computes an interval: :func:`explbench.metrics.aggregate.summarise` is the one place that turns
per-case scores into a value with ``n``, ``n_clusters`` and a 95 % interval chosen by the
scores' ``kind``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
import pandas as pd
from scipy import stats as _sps

from explbench.api.registry import metrics as _registry

DIRECTIONS = ("higher", "lower", "none")

#: the k of the headline label-flip rate FR(k) (paper: FR(3)); the one place it is set
HEADLINE_K = 3

#: per-case values in [0, 1] whose mean is reported (Wilson interval on the effective n)
PROPORTION = "proportion"
#: per-case values whose mean is reported (cluster bootstrap)
MEAN = "mean"
#: per-case values whose median is reported (cluster bootstrap)
MEDIAN = "median"
#: a statistic of (value, label) pairs, e.g. ROC AUC (cluster bootstrap)
ASSOCIATION = "association"
KINDS = (PROPORTION, MEAN, MEDIAN, ASSOCIATION)

#: association statistics (fidelity AUC, point-biserial r) need this many cases of each class
MIN_PER_CLASS = 5


@dataclass(frozen=True)
class MetricValue:
    """One aggregate number with its uncertainty.

    Attributes
    ----------
    metric : str
        Name of the reported quantity (may differ from the metric's registry name, e.g.
        ``recovery-dist-2``).
    k : int or None
        The size parameter (number of segments) the value refers to, if any.
    value : float
        Point estimate on all cases.
    ci_low, ci_high : float
        95 % confidence interval; both NaN when the sample is too small for an honest one.
    n : int
        Number of cases the value is computed on.
    n_clusters : int
        Number of independent clusters (e.g. songs) those cases come from.
    """

    metric: str
    k: int | None
    value: float
    ci_low: float
    ci_high: float
    n: int
    n_clusters: int = 0


@dataclass(frozen=True)
class Scores:
    """Per-case scores of one reported quantity, before aggregation.

    Attributes
    ----------
    metric : str
        Reported name.
    k : int or None
        Size parameter.
    kind : str
        One of :data:`KINDS`; decides the statistic and the interval.
    values : np.ndarray, shape (n,), float64
        One score per case (for ``PROPORTION`` in [0, 1]).
    clusters : np.ndarray, shape (n,), str
        The cluster (unit of independence) of each case.
    labels : np.ndarray, shape (n,), bool, optional
        Second variable of an ``ASSOCIATION`` (e.g. "the explanation is correct").
    statistic : callable, optional
        For ``ASSOCIATION``: vectorised ``statistic(values, labels)`` over the last axis.
    """

    metric: str
    k: int | None
    kind: str
    values: np.ndarray
    clusters: np.ndarray
    labels: np.ndarray | None = None
    statistic: Callable[..., np.ndarray | float] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if np.shape(self.values) != np.shape(self.clusters):
            raise ValueError(f"{self.metric}: {np.size(self.values)} values but "
                             f"{np.size(self.clusters)} clusters")


class Metric(ABC):
    """Base class of every metric.

    Subclasses set the class attributes and implement :meth:`scores`. They are registered with
    ``@register_metric("name")`` and instantiated without arguments by the aggregator.
    """

    #: registry name; also the ``metric`` of the values it reports unless documented otherwise
    name: ClassVar[str] = ""
    #: "higher" or "lower" is better, or "none" for descriptive quantities
    direction: ClassVar[str] = "higher"
    #: e.g. "veracity", "localisation", "fidelity", "cost", "robustness"
    category: ClassVar[str] = ""
    #: one line shown by ``explbench list metrics``
    description: ClassVar[str] = ""
    #: record columns the metric reads
    needs: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def scores(self, records: pd.DataFrame) -> list[Scores]:
        """Per-case scores for one group of records.

        Parameters
        ----------
        records : pandas.DataFrame
            Protocol records of one group (one generator, direction and explainer), one row
            per (case, explainer), in ``case_id`` order. Failed explanations are included.

        Returns
        -------
        list of Scores
            Empty when the group holds no rows the metric applies to.
        """

    def missing(self, records: pd.DataFrame) -> list[str]:
        """Columns in :attr:`needs` that ``records`` lacks."""
        return [c for c in self.needs if c not in records.columns]


# --------------------------------------------------------------------------- record helpers


def has_truth(value: object) -> bool:
    """Whether a ``true_segments`` cell holds a known cause (a non-empty list-like)."""
    if value is None or isinstance(value, (str, bytes)):
        return False
    if isinstance(value, float):  # NaN from pandas for a missing list
        return False
    try:
        return len(value) > 0  # type: ignore[arg-type]
    except TypeError:
        return False


def segment_set(value: object) -> set[int]:
    """A list-like cell of segment indices as a set (empty for a missing cell)."""
    return {int(i) for i in np.asarray(value).ravel()} if has_truth(value) else set()


def failed(records: pd.DataFrame) -> np.ndarray:
    """``(n,)`` bool: which rows are failed explanations."""
    return (records["status"] != "ok").to_numpy(dtype=bool)


def ok_rows(records: pd.DataFrame) -> pd.DataFrame:
    """Rows whose explanation succeeded (``status == "ok"``)."""
    return records[records["status"] == "ok"]


def _truth_mask(records: pd.DataFrame) -> np.ndarray:
    if "true_segments" not in records.columns:
        return np.zeros(len(records), dtype=bool)
    return np.array([has_truth(v) for v in records["true_segments"]], dtype=bool)


def adversarial_rows(records: pd.DataFrame) -> pd.DataFrame:
    """Rows (ok and failed) of full adversarial cases: those without ``true_segments``."""
    return records[~_truth_mask(records)]


def localized_rows(records: pd.DataFrame) -> pd.DataFrame:
    """Rows (ok and failed) of cases with a known cause (non-empty ``true_segments``)."""
    return records[_truth_mask(records)]


def clusters_of(records: pd.DataFrame) -> np.ndarray:
    """``(n,)`` str: each row's cluster, falling back to its ``case_id`` where none is recorded."""
    ids = records["case_id"].astype(str).to_numpy()
    if "cluster" not in records.columns:
        return ids.astype(object)
    out = []
    for c, i in zip(records["cluster"], ids):
        missing = c is None or (isinstance(c, float) and np.isnan(c))
        out.append(i if missing else str(c))
    return np.asarray(out, dtype=object)


def width_of(records: pd.DataFrame) -> int:
    """Number of scoring segments d of a group (the ``d`` column, else the longest list)."""
    if "d" in records.columns:
        d = pd.to_numeric(records["d"], errors="coerce").dropna()
        if len(d):
            return int(d.max())
    for col in ("flip_norm_at_k", "flip_at_k", "weights"):
        if col in records.columns:
            lengths = [np.size(v) for v in records[col] if isinstance(v, (list, tuple, np.ndarray))]
            if lengths:
                return max(lengths)
    return 0


def bool_matrix(cells: pd.Series, width: int, missing: float = 0.0) -> np.ndarray:
    """Stack list-of-bool cells into a float matrix ``(n, width)``; absent cells are ``missing``."""
    out = np.full((len(cells), width), missing, dtype=np.float64)
    for i, v in enumerate(cells):
        if isinstance(v, (list, tuple, np.ndarray)):
            r = np.asarray(v, dtype=np.float64).ravel()[:width]
            out[i, : r.size] = r
    return out


def numeric(records: pd.DataFrame, column: str) -> np.ndarray:
    """``(n,)`` float64 of a column, NaN where missing or not a number."""
    if column not in records.columns:
        return np.full(len(records), np.nan)
    return pd.to_numeric(records[column], errors="coerce").to_numpy(dtype=np.float64, copy=True)


def signed_group(records: pd.DataFrame) -> bool:
    """False when the records say the explainer's weights are never negative (``signed``)."""
    if "signed" not in records.columns:
        return True
    flags = [bool(v) for v in records["signed"] if isinstance(v, (bool, np.bool_))]
    return not flags or all(flags)


# --------------------------------------------------------------------------- ties


def hit_distribution(weights: object, truth: set[int], k: int) -> np.ndarray:
    """Distribution of ``|truth ∩ top-k(weights)|`` over all orders of tied weights.

    Segments with a weight above the k-th largest are chosen for certain; the remaining places
    go to the segments tied at the k-th largest weight, uniformly at random. The number of
    true segments among those drawn is hypergeometric, so the expectation over every order of
    the tie is exact (a fully tied explainer scores exactly the random expectation).

    Parameters
    ----------
    weights : sequence of float, length d
    truth : set of int
    k : int
        Size of the selection, ``1 <= k <= d``.

    Returns
    -------
    np.ndarray, shape (min(k, |truth|) + 1,)
        ``P(hits = j)`` for ``j = 0 ..``.
    """
    w = np.asarray(weights, dtype=np.float64).ravel()
    k = min(int(k), w.size)
    top = min(k, len(truth))
    t = np.sort(w)[::-1][k - 1]
    above = np.flatnonzero(w > t)
    tied = np.flatnonzero(w == t)
    certain = len(truth.intersection(above.tolist()))
    pool, true_in_pool, draws = tied.size, len(truth.intersection(tied.tolist())), k - above.size
    pmf = np.zeros(top + 1)
    if true_in_pool == 0 or draws == pool:  # no tie matters: the selection is determined
        pmf[min(certain + (true_in_pool if draws == pool else 0), top)] = 1.0
        return pmf
    extra = np.arange(0, min(draws, true_in_pool) + 1)
    probs = _sps.hypergeom.pmf(extra, pool, true_in_pool, draws)
    for x, p in zip(extra, probs):
        pmf[min(certain + int(x), top)] += p
    return pmf


def metric_info() -> pd.DataFrame:
    """Registered metrics with their name, direction, category and description.

    Returns
    -------
    pandas.DataFrame
        Columns ``name, direction, category, description``, sorted by name.
    """
    rows = []
    for entry in _registry.entries():
        obj = entry.obj
        rows.append(
            {
                "name": entry.name,
                "direction": getattr(obj, "direction", "none"),
                "category": getattr(obj, "category", ""),
                "description": entry.description or getattr(obj, "description", ""),
            }
        )
    return pd.DataFrame(rows, columns=["name", "direction", "category", "description"])
