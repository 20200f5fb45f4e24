"""Reading protocol records for metrics: which rows are failed, adversarial or localised, their clusters, and matrices of their per-k cells."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as _sps
from explbench.api.registry import metrics as _registry


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


def segment_set(value: object) -> set[int]:
    """A list-like cell of segment indices as a set (empty for a missing cell)."""
    return {int(i) for i in np.asarray(value).ravel()} if has_truth(value) else set()


def failed(records: pd.DataFrame) -> np.ndarray:
    """``(n,)`` bool: which rows are failed explanations."""
    return (records["status"] != "ok").to_numpy(dtype=bool)


def ok_rows(records: pd.DataFrame) -> pd.DataFrame:
    """Rows whose explanation succeeded (``status == "ok"``)."""
    return records[records["status"] == "ok"]


def _truth_mask(records: pd.DataFrame) -> np.ndarray:
    if "true_segments" not in records.columns:
        return np.zeros(len(records), dtype=bool)
    return np.array([has_truth(v) for v in records["true_segments"]], dtype=bool)


def adversarial_rows(records: pd.DataFrame) -> pd.DataFrame:
    """Rows (ok and failed) of full adversarial cases: those without ``true_segments``."""
    return records[~_truth_mask(records)]


def localized_rows(records: pd.DataFrame) -> pd.DataFrame:
    """Rows (ok and failed) of cases with a known cause (non-empty ``true_segments``)."""
    return records[_truth_mask(records)]


def clusters_of(records: pd.DataFrame) -> np.ndarray:
    """``(n,)`` str: each row's cluster, falling back to its ``case_id`` where none is recorded."""
    ids = records["case_id"].astype(str).to_numpy()
    if "cluster" not in records.columns:
        return ids.astype(object)
    out = []
    for c, i in zip(records["cluster"], ids):
        missing = c is None or (isinstance(c, float) and np.isnan(c))
        out.append(i if missing else str(c))
    return np.asarray(out, dtype=object)


def width_of(records: pd.DataFrame) -> int:
    """Number of scoring segments d of a group (the ``d`` column, else the longest list)."""
    if "d" in records.columns:
        d = pd.to_numeric(records["d"], errors="coerce").dropna()
        if len(d):
            return int(d.max())
    for col in ("flip_norm_at_k", "flip_at_k", "weights"):
        if col in records.columns:
            lengths = [np.size(v) for v in records[col] if isinstance(v, (list, tuple, np.ndarray))]
            if lengths:
                return max(lengths)
    return 0


def bool_matrix(cells: pd.Series, width: int, missing: float = 0.0) -> np.ndarray:
    """Stack list-of-bool cells into a float matrix ``(n, width)``; absent cells are ``missing``."""
    out = np.full((len(cells), width), missing, dtype=np.float64)
    for i, v in enumerate(cells):
        if isinstance(v, (list, tuple, np.ndarray)):
            r = np.asarray(v, dtype=np.float64).ravel()[:width]
            out[i, : r.size] = r
    return out


def numeric(records: pd.DataFrame, column: str) -> np.ndarray:
    """``(n,)`` float64 of a column, NaN where missing or not a number."""
    if column not in records.columns:
        return np.full(len(records), np.nan)
    return pd.to_numeric(records[column], errors="coerce").to_numpy(dtype=np.float64, copy=True)


def signed_group(records: pd.DataFrame) -> bool:
    """False when the records say the explainer's weights are never negative (``signed``)."""
    if "signed" not in records.columns:
        return True
    flags = [bool(v) for v in records["signed"] if isinstance(v, (bool, np.bool_))]
    return not flags or all(flags)


def hit_distribution(weights: object, truth: set[int], k: int) -> np.ndarray:
    """Distribution of ``|truth ∩ top-k(weights)|`` over all orders of tied weights.

    Segments with a weight above the k-th largest are chosen for certain; the remaining places
    go to the segments tied at the k-th largest weight, uniformly at random. The number of
    true segments among those drawn is hypergeometric, so the expectation over every order of
    the tie is exact (a fully tied explainer scores exactly the random expectation).

    Parameters
    ----------
    weights : sequence of float, length d
    truth : set of int
    k : int
        Size of the selection, ``1 <= k <= d``.

    Returns
    -------
    np.ndarray, shape (min(k, |truth|) + 1,)
        ``P(hits = j)`` for ``j = 0 ..``.
    """
    w = np.asarray(weights, dtype=np.float64).ravel()
    k = min(int(k), w.size)
    top = min(k, len(truth))
    t = np.sort(w)[::-1][k - 1]
    above = np.flatnonzero(w > t)
    tied = np.flatnonzero(w == t)
    certain = len(truth.intersection(above.tolist()))
    pool, true_in_pool, draws = tied.size, len(truth.intersection(tied.tolist())), k - above.size
    pmf = np.zeros(top + 1)
    if true_in_pool == 0 or draws == pool:  # no tie matters: the selection is determined
        pmf[min(certain + (true_in_pool if draws == pool else 0), top)] = 1.0
        return pmf
    extra = np.arange(0, min(draws, true_in_pool) + 1)
    probs = _sps.hypergeom.pmf(extra, pool, true_in_pool, draws)
    for x, p in zip(extra, probs):
        pmf[min(certain + int(x), top)] += p
    return pmf


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
