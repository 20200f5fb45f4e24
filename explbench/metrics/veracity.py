"""Label-flip metrics on full adversarial cases (protocol steps 1 and 2; paper Table 1, 2, Fig. 2).

All of them read successful rows of cases *without* ``true_segments``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from explbench.metrics.base import Metric, MetricValue, adversarial_rows, bool_matrix, summarise
from explbench.registry import register_metric
from explbench.stats import bootstrap_mean_columns


class _FlipCurve(Metric):
    """FR(k) for k = 1..d from a list-of-bool column; ``k`` of row ``i`` is ``i + 1``."""

    column: str = ""
    direction = "higher"
    category = "veracity"

    def compute(
        self, records: pd.DataFrame, rng: np.random.Generator, n_boot: int
    ) -> list[MetricValue]:
        rows = adversarial_rows(records)
        if rows.empty:
            return []
        flips = bool_matrix(rows[self.column])
        n = (~np.isnan(flips)).sum(axis=0)
        with np.errstate(invalid="ignore"):
            means = np.nanmean(flips, axis=0) if flips.size else np.zeros(0)
        # one set of case resamples for the whole curve
        lo, hi = bootstrap_mean_columns(flips, rng, n_boot=n_boot)
        return [
            MetricValue(self.name, j + 1, float(means[j]), float(lo[j]), float(hi[j]), int(n[j]))
            for j in range(flips.shape[1])
        ]


@register_metric("flip-rate")
class FlipRate(_FlipCurve):
    """Share of adversarial cases whose label flips when the perturbation is applied on the
    explainer's top-k segments, for k = 1..d."""

    name = "flip-rate"
    description = "label-flip rate FR(k) with the explainer's top-k segments (adversarial cases)"
    needs = ("status", "true_segments", "flip_at_k")
    column = "flip_at_k"


@register_metric("flip-rate-norm")
class FlipRateNorm(_FlipCurve):
    """The oracle reference curve: FR(k) with the top-k segments by perturbation energy."""

    name = "flip-rate-norm"
    description = "reference FR(k) with the top-k segments by perturbation energy (oracle)"
    needs = ("status", "true_segments", "flip_norm_at_k")
    column = "flip_norm_at_k"


class _CaseMean(Metric):
    """Mean of one scalar column over adversarial cases, ``k = None``."""

    column: str = ""

    def compute(
        self, records: pd.DataFrame, rng: np.random.Generator, n_boot: int
    ) -> list[MetricValue]:
        rows = adversarial_rows(records)
        if rows.empty:
            return []
        values = pd.to_numeric(rows[self.column], errors="coerce").to_numpy(dtype=np.float64)
        return [summarise(self.name, None, values[~np.isnan(values)], rng, n_boot)]


@register_metric("positive-flip-rate")
class PositiveFlipRate(_CaseMean):
    """Share of adversarial cases that flip when the perturbation is applied on exactly the
    segments with positive weight (no flip when there are none)."""

    name = "positive-flip-rate"
    direction = "higher"
    category = "veracity"
    description = "flip rate with the perturbation on the positive-weight segments"
    needs = ("status", "true_segments", "flip_positive")
    column = "flip_positive"


@register_metric("positive-flip-rate-norm")
class PositiveFlipRateNorm(_CaseMean):
    """Reference for ``positive-flip-rate``: the same number of segments chosen by energy."""

    name = "positive-flip-rate-norm"
    direction = "higher"
    category = "veracity"
    description = "reference flip rate with as many segments, chosen by energy (oracle)"
    needs = ("status", "true_segments", "flip_norm_positive")
    column = "flip_norm_positive"


@register_metric("positive-count")
class PositiveCount(_CaseMean):
    """Mean number of positive-weight segments. Descriptive (direction "none"): more segments
    make ``positive-flip-rate`` easier, fewer make the explanation sharper, so neither is
    better on its own; read it next to the positive flip rates."""

    name = "positive-count"
    direction = "none"
    category = "veracity"
    description = "mean number of segments with positive weight (context for positive-flip-rate)"
    needs = ("status", "true_segments", "n_positive")
    column = "n_positive"
