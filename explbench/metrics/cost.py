"""Cost and robustness: model queries, seconds per explanation, failure rate."""

from __future__ import annotations

import numpy as np
import pandas as pd

from explbench.api.metric import Direction, MEAN, PROPORTION, Metric, Scores
from explbench.metrics.records import clusters_of, failed, numeric
from explbench.api.registry import register_metric


class _PerExplanation(Metric):
    """Mean of a numeric column over successful explanations (all cases), ``k = None``."""

    direction = Direction.LOWER
    category = "cost"
    column: str = ""

    def scores(self, records: pd.DataFrame) -> list[Scores]:
        rows = records[~failed(records)]
        if rows.empty:
            return []
        return [Scores(self.name, None, MEAN, numeric(rows, self.column), clusters_of(rows))]


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
    direction = Direction.LOWER
    category = "robustness"
    description = "share of explanations that failed (they count as no flip and no recovery)"
    needs = ("status",)

    def scores(self, records: pd.DataFrame) -> list[Scores]:
        if records.empty:
            return []
        return [Scores(self.name, None, PROPORTION, failed(records).astype(np.float64),
                       clusters_of(records))]
