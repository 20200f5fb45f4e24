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
from enum import Enum
from typing import Callable, ClassVar

import numpy as np
import pandas as pd


class Direction(str, Enum):
    """Which way a metric is better: a board's arrow and a comparison's verdict read it."""

    HIGHER = "higher"
    LOWER = "lower"
    #: descriptive quantities (counts, medians of a score) that are neither better nor worse
    NONE = "none"

    def __str__(self) -> str:  # "higher" in tables and messages, on every Python
        return self.value

    __format__ = str.__format__


DIRECTIONS = tuple(d.value for d in Direction)

#: the k of the headline label-flip rate FR(k) (paper: FR(3)); the one place it is set
HEADLINE_K = 3

#: per-case values in [0, 1] whose mean is reported (Clopper-Pearson interval on the effective n)
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
    #: which way is better (:class:`Direction`; NONE for descriptive quantities)
    direction: ClassVar[Direction] = Direction.HIGHER
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

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        try:
            cls.direction = Direction(cls.direction)
        except ValueError:
            raise TypeError(f"metric {cls.__name__}: direction {cls.direction!r} is not one of "
                            f"{', '.join(DIRECTIONS)}; use explbench.api.Direction") from None

    def missing(self, records: pd.DataFrame) -> list[str]:
        """Columns in :attr:`needs` that ``records`` lacks."""
        return [c for c in self.needs if c not in records.columns]



