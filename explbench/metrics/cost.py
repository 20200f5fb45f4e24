"""Cost and robustness: model queries, seconds per explanation, failure rate."""

from __future__ import annotations

import numpy as np
import pandas as pd

from explbench.metrics.base import Metric, MetricValue, ok_rows, summarise
from explbench.registry import register_metric


class _PerExplanation(Metric):
    """Mean of a numeric column over successful explanations (all cases), ``k = None``."""

    direction = "lower"
    category = "cost"
    column: str = ""

    def compute(
        self, records: pd.DataFrame, rng: np.random.Generator, n_boot: int
    ) -> list[MetricValue]:
        rows = ok_rows(records)
        if rows.empty:
            return []
        values = pd.to_numeric(rows[self.column], errors="coerce").to_numpy(dtype=np.float64)
        return [summarise(self.name, None, values[np.isfinite(values)], rng, n_boot)]


@register_metric("queries")
class Queries(_PerExplanation):
    """Mean number of model queries per successful explanation."""

    name = "queries"
    description = "mean model queries per explanation"
    needs = ("status", "queries")
    column = "queries"


@register_metric("seconds")
class Seconds(_PerExplanation):
    """Mean wall-clock seconds per successful explanation."""

    name = "seconds"
    description = "mean wall-clock seconds per explanation"
    needs = ("status", "seconds")
    column = "seconds"


@register_metric("failure-rate")
class FailureRate(Metric):
    """Share of (case, explainer) rows whose explanation failed; reads every row."""

    name = "failure-rate"
    direction = "lower"
    category = "robustness"
    description = "share of explanations that failed"
    needs = ("status",)

    def compute(
        self, records: pd.DataFrame, rng: np.random.Generator, n_boot: int
    ) -> list[MetricValue]:
        if records.empty:
            return []
        failed = (records["status"] == "failed").to_numpy(dtype=float)
        return [summarise(self.name, None, failed, rng, n_boot)]
