"""Fidelity versus correctness on single-segment cases (protocol step 4; paper Fig. 4).

"Correct" means the explainer's top-1 segment is the true segment of a k = 1 localised case.
Two fidelity sources are reported as separate metrics that never mix:

- ``fidelity-*``: the explainer's *own* score (LIME's weighted R²); only explainers that report
  one get these rows;
- ``agnostic-fidelity-*``: the harness's agnostic fidelity (:func:`agnostic_fidelity`), the same
  for every explainer, so explainers without a score of their own are comparable too.

The association statistics (ROC AUC, point-biserial r) need at least
:data:`~explbench.api.metric.MIN_PER_CLASS` correct and as many wrong explanations; below that
nothing is reported. For them "correct" means the true segment is the *unique* top-1 (a tie at
the top points at no segment); ``correct-rate`` scores ties by their expectation. A failed
explanation is wrong and has no fidelity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from explbench.api.metric import Direction, ASSOCIATION, MEDIAN, MIN_PER_CLASS, PROPORTION, Metric, Scores
from explbench.metrics.records import clusters_of, failed, hit_distribution, localized_rows, numeric, segment_set
from explbench.api.registry import register_metric
from explbench.stats.association import point_biserial, roc_auc


def fidelity_table(records: pd.DataFrame, source: str = "score") -> pd.DataFrame:
    """Per-case fidelity and correctness for the k = 1 localised rows.

    Parameters
    ----------
    records : pandas.DataFrame
    source : {"score", "agnostic_score"}
        Which fidelity column to read (never a mix of the two).

    Returns
    -------
    pandas.DataFrame
        Columns ``fidelity`` (float, NaN where absent or failed), ``correct`` (bool: the true
        segment is the unique top-1), ``expected_correct`` (float: over every order of a tie at
        the top) and ``cluster``, in the records' order.
    """
    rows = localized_rows(records)
    single = np.array([len(segment_set(t)) == 1 for t in rows["true_segments"]], dtype=bool)
    rows = rows[single]
    bad = failed(rows)
    expected, unique = [], []
    for w, t, f in zip(rows.get("weights", [None] * len(rows)), rows["true_segments"], bad):
        if f or not isinstance(w, (list, tuple, np.ndarray)):
            expected.append(0.0)
            unique.append(False)
            continue
        p = hit_distribution(w, segment_set(t), 1)[1]
        expected.append(float(p))
        unique.append(bool(p == 1.0))
    fidelity = numeric(rows, source)
    fidelity[bad] = np.nan
    return pd.DataFrame({"fidelity": fidelity, "correct": np.asarray(unique, dtype=bool),
                         "expected_correct": np.asarray(expected, dtype=np.float64),
                         "cluster": clusters_of(rows)})


class _FidelityMetric(Metric):
    category = "fidelity"
    source: str = "score"

    def scores(self, records: pd.DataFrame) -> list[Scores]:
        table = fidelity_table(records, self.source)
        table = table[np.isfinite(table["fidelity"].to_numpy())]
        if table.empty:
            return []
        return self.from_table(table)

    def from_table(self, table: pd.DataFrame) -> list[Scores]:
        raise NotImplementedError


class _Association(_FidelityMetric):
    """A statistic of (fidelity, correct) pairs; nothing below MIN_PER_CLASS per class."""

    direction = Direction.HIGHER

    @staticmethod
    def statistic(scores: np.ndarray, labels: np.ndarray) -> float | np.ndarray:
        raise NotImplementedError

    def from_table(self, table: pd.DataFrame) -> list[Scores]:
        correct = table["correct"].to_numpy(dtype=bool)
        if min(correct.sum(), (~correct).sum()) < MIN_PER_CLASS:
            return []
        return [Scores(self.name, 1, ASSOCIATION, table["fidelity"].to_numpy(np.float64),
                       table["cluster"].to_numpy(object), labels=correct,
                       statistic=self.statistic)]


class _MedianFidelity(_FidelityMetric):
    direction = Direction.NONE
    when_correct: bool = True

    def from_table(self, table: pd.DataFrame) -> list[Scores]:
        sel = table[table["correct"].to_numpy(dtype=bool) == self.when_correct]
        if sel.empty:
            return []
        return [Scores(self.name, 1, MEDIAN, sel["fidelity"].to_numpy(np.float64),
                       sel["cluster"].to_numpy(object))]


def _family(prefix: str, source: str, what: str) -> None:
    """Register the AUC, point-biserial and median metrics of one fidelity source."""
    specs = [
        ("auc", _Association, "ROC AUC of {what} as a predictor of a correct top-1 segment (k = 1 cases)",
         {"statistic": staticmethod(roc_auc)}),
        ("pointbiserial", _Association,
         "point-biserial r between {what} and a correct top-1 segment (k = 1 cases)",
         {"statistic": staticmethod(point_biserial)}),
        ("median-correct", _MedianFidelity,
         "median {what} of explanations whose top-1 segment is the true one", {"when_correct": True}),
        ("median-wrong", _MedianFidelity,
         "median {what} of explanations whose top-1 segment is not the true one",
         {"when_correct": False}),
    ]
    for suffix, base, text, attrs in specs:
        name = f"{prefix}-{suffix}"
        doc = text.format(what=what)
        cls = type(name.title().replace("-", ""), (base,), {
            "name": name, "description": doc, "source": source,
            "needs": ("status", "true_segments", "weights", source), "__doc__": doc[0].upper() + doc[1:] + ".",
            "__module__": __name__, **attrs})
        register_metric(name)(cls)
        globals()[cls.__name__] = cls


_family("fidelity", "score", "the explainer's own fidelity score")
_family("agnostic-fidelity", "agnostic_score", "the harness's agnostic fidelity")


@register_metric("correct-rate")
class CorrectRate(Metric):
    """Share of k = 1 cases whose top-1 segment is the true segment (ties by expectation)."""

    name = "correct-rate"
    direction = Direction.HIGHER
    category = "fidelity"
    description = "share of k = 1 cases whose top-1 segment is the true one"
    needs = ("status", "true_segments")

    def scores(self, records: pd.DataFrame) -> list[Scores]:
        table = fidelity_table(records, "score")
        if table.empty:
            return []
        return [Scores(self.name, 1, PROPORTION, table["expected_correct"].to_numpy(np.float64),
                       table["cluster"].to_numpy(object))]
