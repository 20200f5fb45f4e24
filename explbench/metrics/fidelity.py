"""Fidelity versus correctness on single-segment cases (protocol step 4; paper Fig. 4).

"Correct" means the explainer's top-1 segment is the true segment of a k = 1 localised case.
The fidelity column is the explainer's own ``score`` when every such row of the group has one,
otherwise the harness's ``agnostic_score`` (see :func:`agnostic_fidelity`), so explainers
without a score of their own still get a comparable column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from explbench.metrics.base import Metric, MetricValue, localized_rows, summarise
from explbench.registry import register_metric
from explbench.segmentation import top_k
from explbench.stats import bootstrap_rows, point_biserial, roc_auc


def agnostic_fidelity(
    Z: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None, w: np.ndarray
) -> float:
    """Weighted R² of a linear surrogate whose direction is fixed to an explanation's weights.

    Fits ``y ≈ s · (Z @ w) + b`` by weighted least squares in closed form (scale ``s`` and
    intercept ``b`` free, direction ``w`` fixed) and returns
    ``1 - Σ v (y - ŷ)² / Σ v (y - ȳ_v)²`` with ``v`` the sample weights and ``ȳ_v`` the
    weighted mean. The scale is constrained to ``s >= 0``: an explanation that points the wrong
    way explains nothing (R² = 0) rather than as much as its mirror image. The result does not
    change when ``w`` is multiplied by a positive constant.

    Parameters
    ----------
    Z : np.ndarray, shape (n, d)
        Binary neighbourhood (segment kept = 1).
    y : np.ndarray, shape (n,)
        The model's output for the target class on each neighbour.
    sample_weight : np.ndarray, shape (n,), optional
        Neighbour weights (LIME's kernel); ``None`` for uniform weights.
    w : np.ndarray, shape (d,)
        The explanation's segment weights.

    Returns
    -------
    float
        R² (0 when ``Z @ w`` is constant on the weighted neighbourhood: the intercept-only
        fit); NaN when ``y`` is constant or the weights sum to zero (R² undefined).
    """
    Z = np.asarray(Z, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    w = np.asarray(w, dtype=np.float64).ravel()
    if Z.ndim != 2 or Z.shape != (y.size, w.size):
        raise ValueError(f"shapes do not match: Z {Z.shape}, y ({y.size},), w ({w.size},)")
    v = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight, np.float64).ravel()
    if v.shape != y.shape:
        raise ValueError(f"sample_weight has shape {v.shape}, expected {y.shape}")
    total = v.sum()
    if not total > 0:
        return float("nan")
    p = Z @ w
    y_mean = (v @ y) / total
    p_mean = (v @ p) / total
    yc, pc = y - y_mean, p - p_mean
    sst = v @ yc**2
    if not sst > 1e-15 * max(1.0, v @ y**2):
        return float("nan")
    spp = v @ pc**2
    if not spp > 1e-12 * max(1.0, v @ p**2):
        return 0.0
    s = max((v @ (pc * yc)) / spp, 0.0)
    sse = v @ (yc - s * pc) ** 2
    return float(1.0 - sse / sst)


def fidelity_table(records: pd.DataFrame) -> pd.DataFrame:
    """Per-case ``fidelity`` and ``correct`` for the successful k = 1 localised rows.

    Returns
    -------
    pandas.DataFrame
        Columns ``fidelity`` (float, may be NaN) and ``correct`` (bool), in the records' order.
    """
    rows = localized_rows(records)
    single = [len(np.asarray(t).ravel()) == 1 for t in rows["true_segments"]]
    rows = rows[np.asarray(single, dtype=bool)]
    correct = [
        int(top_k(np.asarray(w, dtype=np.float64), 1)[0]) == int(np.asarray(t).ravel()[0])
        for w, t in zip(rows["weights"], rows["true_segments"])
    ]
    fidelity = _fidelity_column(rows)
    return pd.DataFrame({"fidelity": fidelity, "correct": np.asarray(correct, dtype=bool)})


def _fidelity_column(rows: pd.DataFrame) -> np.ndarray:
    """``score`` when finite for every row, otherwise ``agnostic_score`` (NaN when absent)."""
    n = len(rows)
    if "score" in rows.columns:
        own = pd.to_numeric(rows["score"], errors="coerce").to_numpy(dtype=np.float64)
        if n and np.isfinite(own).all():
            return own
    if "agnostic_score" in rows.columns:
        return pd.to_numeric(rows["agnostic_score"], errors="coerce").to_numpy(dtype=np.float64)
    return np.full(n, np.nan)


class _FidelityMetric(Metric):
    category = "fidelity"
    needs = ("status", "true_segments", "weights", "score", "agnostic_score")

    def compute(
        self, records: pd.DataFrame, rng: np.random.Generator, n_boot: int
    ) -> list[MetricValue]:
        table = fidelity_table(records)
        if table.empty:
            return []
        return [self.value(table, rng, n_boot)]

    def value(self, table: pd.DataFrame, rng: np.random.Generator, n_boot: int) -> MetricValue:
        raise NotImplementedError


def _scored(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    f = table["fidelity"].to_numpy(dtype=np.float64)
    keep = np.isfinite(f)
    return f[keep], table["correct"].to_numpy(dtype=bool)[keep]


class _Association(_FidelityMetric):
    """A statistic of (fidelity, correct) pairs with a case-resampling bootstrap interval."""

    direction = "higher"

    @staticmethod
    def statistic(scores: np.ndarray, labels: np.ndarray) -> float | np.ndarray:
        raise NotImplementedError

    def value(self, table: pd.DataFrame, rng: np.random.Generator, n_boot: int) -> MetricValue:
        f, c = _scored(table)
        value = float(self.statistic(f, c))
        if np.isnan(value):  # degenerate sample: resampling cannot repair it
            lo = hi = float("nan")
        else:
            lo, hi = bootstrap_rows((f, c), self.statistic, rng, n_boot=n_boot)
        return MetricValue(self.name, 1, value, lo, hi, int(f.size))


@register_metric("fidelity-auc")
class FidelityAUC(_Association):
    """ROC AUC of the fidelity score as a predictor of a correct top-1 segment (k = 1 cases)."""

    name = "fidelity-auc"
    description = "ROC AUC of fidelity as a predictor of a correct top-1 segment (k = 1 cases)"
    statistic = staticmethod(roc_auc)


@register_metric("fidelity-pointbiserial")
class FidelityPointBiserial(_Association):
    """Point-biserial correlation between fidelity and a correct top-1 segment (k = 1 cases)."""

    name = "fidelity-pointbiserial"
    description = "point-biserial r between fidelity and a correct top-1 segment (k = 1 cases)"
    statistic = staticmethod(point_biserial)


class _MedianFidelity(_FidelityMetric):
    direction = "none"
    when_correct: bool = True

    def value(self, table: pd.DataFrame, rng: np.random.Generator, n_boot: int) -> MetricValue:
        f, c = _scored(table)
        return summarise(self.name, 1, f[c == self.when_correct], rng, n_boot, np.median)


@register_metric("fidelity-median-correct")
class FidelityMedianCorrect(_MedianFidelity):
    """Median fidelity of correct explanations (k = 1 cases); compare with the wrong ones."""

    name = "fidelity-median-correct"
    description = "median fidelity of explanations whose top-1 segment is the true one"
    when_correct = True


@register_metric("fidelity-median-wrong")
class FidelityMedianWrong(_MedianFidelity):
    """Median fidelity of wrong explanations (k = 1 cases); compare with the correct ones."""

    name = "fidelity-median-wrong"
    description = "median fidelity of explanations whose top-1 segment is not the true one"
    when_correct = False


@register_metric("correct-rate")
class CorrectRate(_FidelityMetric):
    """Share of k = 1 cases whose top-1 segment is the true segment."""

    name = "correct-rate"
    direction = "higher"
    description = "share of k = 1 cases whose top-1 segment is the true one"
    needs = ("status", "true_segments", "weights")

    def value(self, table: pd.DataFrame, rng: np.random.Generator, n_boot: int) -> MetricValue:
        return summarise(self.name, 1, table["correct"].to_numpy(dtype=float), rng, n_boot)
