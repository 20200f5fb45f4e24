"""Segment recovery on cases with a known cause (protocol step 3; paper Fig. 3)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from explbench.metrics.base import Metric, MetricValue, localized_rows, summarise
from explbench.registry import register_metric
from explbench.segmentation import top_k


def recovered(weights: object, true_segments: object) -> tuple[int, int]:
    """``(|S* ∩ top-k(weights)|, k)`` with ``k = |S*|``; ties in the ranking go to the lower index.

    Parameters
    ----------
    weights : sequence of float, length d
    true_segments : sequence of int
        The exact cause S*.
    """
    truth = {int(i) for i in np.asarray(true_segments).ravel()}
    k = len(truth)
    chosen = {int(i) for i in top_k(np.asarray(weights, dtype=np.float64), k)}
    return len(truth & chosen), k


def recovery_table(records: pd.DataFrame) -> pd.DataFrame:
    """Per-case recovery of localised rows: columns ``k`` and ``hits`` (in the records' order)."""
    rows = localized_rows(records)
    pairs = [recovered(w, t) for w, t in zip(rows["weights"], rows["true_segments"])]
    return pd.DataFrame(pairs, columns=["hits", "k"], dtype=np.int64)


@register_metric("recovery")
class Recovery(Metric):
    """Mean fraction of the true segments found among the explainer's top-k, per k = |S*|."""

    name = "recovery"
    direction = "higher"
    category = "localisation"
    description = "mean |S* ∩ top-k(weights)| / k on cases with a known k-segment cause"
    needs = ("status", "true_segments", "weights")

    def compute(
        self, records: pd.DataFrame, rng: np.random.Generator, n_boot: int
    ) -> list[MetricValue]:
        table = recovery_table(records)
        out = []
        for k, group in table.groupby("k", sort=True):
            frac = group["hits"].to_numpy(dtype=np.float64) / k
            out.append(summarise(self.name, int(k), frac, rng, n_boot))
        return out


@register_metric("recovery-dist")
class RecoveryDistribution(Metric):
    """Distribution of the number of recovered segments: reported as ``recovery-dist-{j}``
    with ``k`` = |S*|, the share of cases recovering exactly ``j`` of ``k`` (j = 0..k)."""

    name = "recovery-dist"
    direction = "none"
    category = "localisation"
    description = "share of cases recovering exactly j of k true segments (metric recovery-dist-j)"
    needs = ("status", "true_segments", "weights")

    def compute(
        self, records: pd.DataFrame, rng: np.random.Generator, n_boot: int
    ) -> list[MetricValue]:
        table = recovery_table(records)
        out = []
        for k, group in table.groupby("k", sort=True):
            hits = group["hits"].to_numpy()
            for j in range(int(k) + 1):
                out.append(
                    summarise(f"{self.name}-{j}", int(k), (hits == j).astype(float), rng, n_boot)
                )
        return out
