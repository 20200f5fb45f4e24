"""Segment recovery on cases with a known cause (protocol step 3; paper Fig. 3).

A localised or planted case claims a set S* of k segments: delta applied on S* alone flips the
label. Some of those segments may be unnecessary (the label still flips without them); the
generators record the *necessary* ones, N ⊆ S*, by a leave-one-segment-out test. Two recoveries
are reported:

- ``recovery`` (the paper's definition): ``|S* ∩ top-k(E)| / k``;
- ``recovery-necessary``: ``|N ∩ top-k(E)| / |N|`` on cases with a non-empty N — an explainer
  that finds what the model really needs scores 1 even where S* holds segments the model
  ignores.

Ties in the explainer's weights are scored by their exact expectation over all orders of the
tie (:func:`explbench.metrics.records.hit_distribution`), never by segment index. A failed
explanation recovers nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from explbench.api.metric import Direction, PROPORTION, Metric, Scores
from explbench.metrics.records import clusters_of, failed, hit_distribution, localized_rows, segment_set
from explbench.api.registry import register_metric


def hits(weights: object, truth: set[int], k: int, ok: bool) -> np.ndarray:
    """``P(|truth ∩ top-k| = j)`` for ``j = 0..min(k, |truth|)``; all mass on 0 when not ``ok``."""
    if not ok or not isinstance(weights, (list, tuple, np.ndarray)):
        out = np.zeros(min(k, len(truth)) + 1)
        out[0] = 1.0
        return out
    return hit_distribution(weights, truth, k)


def recovery_table(records: pd.DataFrame, against: str = "claimed") -> pd.DataFrame:
    """Per-case expected recovery of the localised rows.

    Parameters
    ----------
    records : pandas.DataFrame
    against : {"claimed", "necessary"}
        The truth: the claimed cause S*, or its necessary segments N (rows without a known,
        non-empty N are left out).

    Returns
    -------
    pandas.DataFrame
        Columns ``k`` (= |S*|, the selection size), ``size`` (|truth|), ``pmf`` (the hit
        distribution), ``share`` (expected hits / size) and ``cluster``, in the records' order.
    """
    rows = localized_rows(records)
    bad = failed(rows)
    clusters = clusters_of(rows)
    out = []
    necessary = rows["necessary_segments"] if "necessary_segments" in rows.columns else [None] * len(rows)
    for i, (w, claimed, nec) in enumerate(zip(rows.get("weights", [None] * len(rows)),
                                              rows["true_segments"], necessary)):
        s_star = segment_set(claimed)
        truth = s_star if against == "claimed" else segment_set(nec)
        if not truth:
            continue
        pmf = hits(w, truth, len(s_star), not bad[i])
        share = float(pmf @ np.arange(pmf.size)) / len(truth)
        out.append({"k": len(s_star), "size": len(truth), "pmf": pmf, "share": share,
                    "cluster": clusters[i]})
    return pd.DataFrame(out, columns=["k", "size", "pmf", "share", "cluster"])


class _Recovery(Metric):
    direction = Direction.HIGHER
    category = "localisation"
    needs = ("status", "true_segments")
    against = "claimed"

    def scores(self, records: pd.DataFrame) -> list[Scores]:
        table = recovery_table(records, self.against)
        return [Scores(self.name, int(k), PROPORTION, g["share"].to_numpy(np.float64),
                       g["cluster"].to_numpy(object))
                for k, g in table.groupby("k", sort=True)]


@register_metric("recovery")
class Recovery(_Recovery):
    """Mean fraction of the claimed cause S* found among the explainer's top-k, per k = |S*|."""

    name = "recovery"
    description = "mean |S* ∩ top-k(weights)| / k on cases with a claimed k-segment cause"


@register_metric("recovery-necessary")
class RecoveryNecessary(_Recovery):
    """Mean fraction of the necessary segments N ⊆ S* found among the top-k, per k = |S*|."""

    name = "recovery-necessary"
    description = "mean |N ∩ top-k(weights)| / |N| for the necessary segments N of S* (k = |S*|)"
    needs = ("status", "true_segments", "necessary_segments")
    against = "necessary"


@register_metric("recovery-dist")
class RecoveryDistribution(Metric):
    """Distribution of the number of recovered segments: reported as ``recovery-dist-{j}``
    with ``k`` = |S*|, the share of cases recovering exactly ``j`` of ``k`` (j = 0..k)."""

    name = "recovery-dist"
    direction = Direction.NONE
    category = "localisation"
    description = "share of cases recovering exactly j of k claimed segments (metric recovery-dist-j)"
    needs = ("status", "true_segments")

    def scores(self, records: pd.DataFrame) -> list[Scores]:
        table = recovery_table(records)
        out = []
        for k, g in table.groupby("k", sort=True):
            pmf = np.stack(g["pmf"].to_numpy())
            clusters = g["cluster"].to_numpy(object)
            out += [Scores(f"{self.name}-{j}", int(k), PROPORTION, pmf[:, j], clusters)
                    for j in range(int(k) + 1)]
        return out


@register_metric("minimal-cause-rate")
class MinimalCauseRate(Metric):
    """Share of cases whose claimed cause is minimal: every segment of S* is necessary.

    A property of the cases, not of the explainer (every explainer's row shows the same value);
    it says how far ``recovery`` and ``recovery-necessary`` can differ.
    """

    name = "minimal-cause-rate"
    direction = Direction.NONE
    category = "localisation"
    description = "share of localised/planted cases whose claimed cause S* is minimal (N = S*)"
    needs = ("true_segments", "necessary_segments")

    def scores(self, records: pd.DataFrame) -> list[Scores]:
        rows = localized_rows(records)
        known = [isinstance(v, (list, tuple, np.ndarray)) for v in rows["necessary_segments"]]
        rows = rows[np.asarray(known, dtype=bool)]
        if rows.empty:
            return []
        sizes = np.array([len(segment_set(t)) for t in rows["true_segments"]])
        minimal = np.array([segment_set(t) == segment_set(n)
                            for t, n in zip(rows["true_segments"], rows["necessary_segments"])], float)
        clusters = clusters_of(rows)
        return [Scores(self.name, int(k), PROPORTION, minimal[sizes == k], clusters[sizes == k])
                for k in sorted(set(sizes.tolist()))]
