"""Label-flip metrics on full adversarial cases (protocol steps 1 and 2; paper Table 1, 2, Fig. 2).

All of them read the rows of cases *without* ``true_segments``. A failed explanation counts as a
case that did not flip: an explainer cannot raise its flip rate by failing on hard cases.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from explbench.api.metric import Direction, MEAN, PROPORTION, Metric, Scores
from explbench.metrics.records import adversarial_rows, bool_matrix, clusters_of, failed, numeric, signed_group, width_of
from explbench.api.registry import register_metric


def flip_matrix(rows: pd.DataFrame, column: str = "flip_at_k", count_failures: bool = True) -> np.ndarray:
    """Per case and k, whether the label flipped: ``(n, d)`` floats in {0, 1}, column ``j`` is
    k = j + 1. A failed explanation flips nothing (``count_failures``; False for reference
    curves, which do not depend on the explainer). The one definition every FR(k) reads."""
    d = width_of(rows)
    cells = rows[column] if column in rows.columns else pd.Series([None] * len(rows))
    flips = bool_matrix(cells, d)  # failed rows hold no list: no flip at any k
    if count_failures and "status" in rows.columns:
        flips[failed(rows)] = 0.0
    return flips


def flips_at(rows: pd.DataFrame, k: int) -> np.ndarray:
    """``(n,)`` bool: flipped at ``k`` (:func:`flip_matrix`; False for a failed explanation, and
    for a row whose list is shorter than k)."""
    if rows.empty:
        return np.zeros(0, dtype=bool)
    m = flip_matrix(rows)
    return m[:, k - 1].astype(bool) if m.shape[1] >= k else np.zeros(len(rows), dtype=bool)


class _FlipCurve(Metric):
    """FR(k) for k = 1..d from a list-of-bool column; ``k`` of column ``j`` is ``j + 1``."""

    column: str = ""
    direction = Direction.HIGHER
    category = "veracity"
    #: reference curves do not depend on the explainer, so its failures do not change them
    reference: bool = False

    def scores(self, records: pd.DataFrame) -> list[Scores]:
        rows = adversarial_rows(records)
        if rows.empty:
            return []
        if self.reference:
            if self.column not in rows.columns:
                return []
            rows = rows[[isinstance(v, (list, tuple, np.ndarray)) for v in rows[self.column]]]
            if rows.empty:
                return []
        flips = flip_matrix(rows, self.column, count_failures=not self.reference)
        d = flips.shape[1]
        clusters = clusters_of(rows)
        return [Scores(self.name, j + 1, PROPORTION, flips[:, j], clusters) for j in range(d)]


@register_metric("flip-rate")
class FlipRate(_FlipCurve):
    """Share of adversarial cases whose label flips when the perturbation is applied on the
    explainer's top-k segments, for k = 1..d. Failed explanations count as no flip."""

    name = "flip-rate"
    description = "label-flip rate FR(k) with the explainer's top-k segments (adversarial cases)"
    needs = ("status", "true_segments")
    column = "flip_at_k"


@register_metric("flip-rate-norm")
class FlipRateNorm(_FlipCurve):
    """The oracle reference curve: FR(k) with the top-k segments by perturbation energy."""

    name = "flip-rate-norm"
    description = "reference FR(k) with the top-k segments by perturbation energy sum(delta^2) (oracle)"
    needs = ("status", "true_segments", "flip_norm_at_k")
    column = "flip_norm_at_k"
    reference = True


@register_metric("flip-rate-absmean")
class FlipRateAbsMean(_FlipCurve):
    """A size-independent second reference: FR(k) with the top-k segments by mean |delta|."""

    name = "flip-rate-absmean"
    description = "reference FR(k) with the top-k segments by mean |delta| per segment (oracle)"
    needs = ("status", "true_segments", "flip_absmean_at_k")
    column = "flip_absmean_at_k"
    reference = True


class _PositiveFlip(Metric):
    """Share of adversarial cases flipping with the perturbation on the positive-weight segments.

    Not applicable (no value) to explainers whose weights are never negative (``signed`` False
    in the records): for them "positive" means "every segment with any weight".
    """

    column: str = ""
    direction = Direction.HIGHER
    category = "veracity"
    #: the reference is defined only where the explainer gave a count of positive weights
    reference: bool = False

    def scores(self, records: pd.DataFrame) -> list[Scores]:
        rows = adversarial_rows(records)
        if rows.empty or not signed_group(rows):
            return []
        bad = failed(rows)
        if self.reference:
            rows, bad = rows[~bad], bad[~bad]
            if rows.empty:
                return []
        values = np.nan_to_num(numeric(rows, self.column), nan=0.0)
        values[bad] = 0.0
        return [Scores(self.name, None, PROPORTION, values, clusters_of(rows))]


@register_metric("positive-flip-rate")
class PositiveFlipRate(_PositiveFlip):
    """Share of adversarial cases that flip when the perturbation is applied on exactly the
    segments with positive weight (no flip when there are none, or the explanation failed)."""

    name = "positive-flip-rate"
    description = "flip rate with the perturbation on the positive-weight segments (signed explainers)"
    needs = ("status", "true_segments")
    column = "flip_positive"


@register_metric("positive-flip-rate-norm")
class PositiveFlipRateNorm(_PositiveFlip):
    """Reference for ``positive-flip-rate``: the same number of segments chosen by energy."""

    name = "positive-flip-rate-norm"
    description = "reference flip rate with as many segments, chosen by energy (oracle)"
    needs = ("status", "true_segments", "flip_norm_positive")
    column = "flip_norm_positive"
    reference = True


@register_metric("positive-count")
class PositiveCount(Metric):
    """Mean number of positive-weight segments. Descriptive (direction "none"): more segments
    make ``positive-flip-rate`` easier, fewer make the explanation sharper, so neither is
    better on its own; read it next to the positive flip rates."""

    name = "positive-count"
    direction = Direction.NONE
    category = "veracity"
    description = "mean number of segments with positive weight (context for positive-flip-rate)"
    needs = ("status", "true_segments", "n_positive")

    def scores(self, records: pd.DataFrame) -> list[Scores]:
        rows = adversarial_rows(records)
        rows = rows[~failed(rows)]
        if rows.empty or not signed_group(rows):
            return []
        return [Scores(self.name, None, MEAN, numeric(rows, "n_positive"), clusters_of(rows))]
