"""The metric interface: :class:`Metric`, :class:`MetricValue` and record-selection helpers.

A metric reads protocol records (one row per (case, explainer), see ``Metric.compute``) for one
group of cases and returns one :class:`MetricValue` per reported number, each with its sample
size and a bootstrap confidence interval.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
import pandas as pd

from explbench.registry import metrics as _registry
from explbench.stats import bootstrap_ci

DIRECTIONS = ("higher", "lower", "none")


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
        Percentile bootstrap 95 % confidence interval over cases.
    n : int
        Number of cases the value is computed on.
    """

    metric: str
    k: int | None
    value: float
    ci_low: float
    ci_high: float
    n: int


class Metric(ABC):
    """Base class of every metric.

    Subclasses set the class attributes and implement :meth:`compute`. They are registered with
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
    def compute(
        self, records: pd.DataFrame, rng: np.random.Generator, n_boot: int
    ) -> list[MetricValue]:
        """Aggregate values for one group of records.

        Parameters
        ----------
        records : pandas.DataFrame
            Protocol records of one group (usually one generator, direction and explainer),
            one row per (case, explainer), in a deterministic order.
        rng : numpy.random.Generator
            Source of bootstrap resamples, seeded per (group, metric) by the aggregator.
        n_boot : int
            Number of bootstrap resamples per interval.

        Returns
        -------
        list of MetricValue
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


def ok_rows(records: pd.DataFrame) -> pd.DataFrame:
    """Rows whose explanation succeeded (``status == "ok"``)."""
    return records[records["status"] == "ok"]


def adversarial_rows(records: pd.DataFrame) -> pd.DataFrame:
    """Successful rows of full adversarial cases: those without ``true_segments``."""
    ok = ok_rows(records)
    if "true_segments" not in ok.columns:
        return ok
    mask = np.array([not has_truth(v) for v in ok["true_segments"]], dtype=bool)
    return ok[mask]


def localized_rows(records: pd.DataFrame) -> pd.DataFrame:
    """Successful rows of cases with a known cause (non-empty ``true_segments``)."""
    ok = ok_rows(records)
    mask = np.array([has_truth(v) for v in ok["true_segments"]], dtype=bool)
    return ok[mask]


def bool_matrix(cells: pd.Series) -> np.ndarray:
    """Stack list-of-bool cells into a float matrix (n, max_len), NaN-padded for short rows."""
    rows = [np.asarray(v, dtype=np.float64).ravel() for v in cells]
    width = max((r.size for r in rows), default=0)
    out = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        out[i, : r.size] = r
    return out


def summarise(
    metric: str,
    k: int | None,
    values: np.ndarray,
    rng: np.random.Generator,
    n_boot: int,
    statistic: Callable[..., np.ndarray] = np.mean,
) -> MetricValue:
    """A :class:`MetricValue` for ``statistic(values)`` with a bootstrap interval over cases.

    An empty sample gives value and interval NaN with ``n = 0``.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    value = float(statistic(x)) if x.size else float("nan")
    lo, hi = bootstrap_ci(x, rng, n_boot=n_boot, statistic=statistic)
    return MetricValue(metric, k, value, lo, hi, int(x.size))


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
