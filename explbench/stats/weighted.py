"""Weighted statistics over resampled clusters: each bootstrap replicate as case weights, so a replicate costs one matrix product."""

from __future__ import annotations

from typing import Callable
import numpy as np
from explbench.stats.association import point_biserial, roc_auc
from explbench.stats.clusters import ClusterLayout


def mean_replicates(
    y: np.ndarray, lay: ClusterLayout, draws: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean of all cases, its cluster-bootstrap replicates and its cluster jackknife values."""
    if not np.all(np.isfinite(y)):
        raise ValueError("the mean needs finite values: drop missing cases and their clusters")
    sums = np.bincount(lay.codes, weights=y, minlength=lay.n_clusters)
    sizes = lay.sizes.astype(np.float64)
    if np.all(lay.sizes == lay.sizes[0]):  # equal clusters: every resample has n cases
        boot = np.take(sums, draws).sum(axis=1) / y.size
    else:  # one gather for numerator and denominator: (sum, size) as a complex number
        both = np.take(sums + 1j * sizes, draws).sum(axis=1)
        boot = both.real / both.imag
    jack = (sums.sum() - sums) / (y.size - sizes)
    return float(y.mean()), boot, jack


def case_weights(draws: np.ndarray, lay: ClusterLayout) -> np.ndarray:
    """(n, n_boot) float, case-major: how many copies of each case each resample holds."""
    n_boot, g = draws.shape
    flat = (draws + (np.arange(n_boot) * g)[:, None]).ravel()
    counts = np.bincount(flat, minlength=n_boot * g).reshape(n_boot, g)
    return np.ascontiguousarray(counts.T, dtype=np.float64)[lay.codes]


def leave_one_out_weights(lay: ClusterLayout) -> np.ndarray:
    """(n, G) float, case-major: case weights of the jackknife samples (cluster g out in g)."""
    return (lay.codes[:, None] != np.arange(lay.n_clusters)[None, :]).astype(np.float64)


def _weighted_auc(scores: np.ndarray, labels: np.ndarray, w: np.ndarray) -> np.ndarray:
    """:func:`roc_auc` of weighted resamples (see above).

    The Mann-Whitney count over (positive, negative) pairs of copies: with the cases in score
    order, every positive copy counts the negative copies below it plus half those tied with
    it, read off the cumulative negative counts.
    """
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(labels, dtype=bool)
    order = np.argsort(s, kind="stable")
    s_sorted, pos_sorted = s[order], pos[order]
    ws = w[order]
    neg_cum = np.zeros((s.size + 1, w.shape[1]))  # row j: negative copies among the first j
    np.cumsum(ws * (~pos_sorted)[:, None], axis=0, out=neg_cum[1:])
    s_pos = s_sorted[pos_sorted]
    below = neg_cum[np.searchsorted(s_sorted, s_pos, side="left")]
    upto = neg_cum[np.searchsorted(s_sorted, s_pos, side="right")]
    wp = ws[pos_sorted]
    num = 0.5 * np.einsum("ib,ib->b", wp, below + upto)
    den = wp.sum(axis=0) * neg_cum[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _weighted_point_biserial(scores: np.ndarray, labels: np.ndarray, w: np.ndarray) -> np.ndarray:
    """:func:`point_biserial` of weighted resamples (see above): weighted Pearson r."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool).astype(np.float64)
    s = s - s.mean()  # shift-invariant; keeps the moment sums well conditioned

    def total_of(v: np.ndarray) -> np.ndarray:
        return np.einsum("ib,i->b", w, v)

    with np.errstate(invalid="ignore", divide="ignore"):
        total = w.sum(axis=0)
        wy = total_of(y)
        ms, my = total_of(s) / total, wy / total
        sxy = total_of(s * y) - total * ms * my
        sxx = total_of(s * s) - total * ms * ms
        syy = wy - total * my * my
        den = np.sqrt(np.maximum(sxx, 0.0) * np.maximum(syy, 0.0))
        scale = max(1.0, float(np.abs(s).max(initial=0.0)))
        bad = ~(den > 1e-12 * scale) | (total < 2)
        return np.where(bad, np.nan, sxy / np.where(bad, 1.0, den))


def _weighted_median(values: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``np.median`` of weighted resamples (see above).

    The median of ``L`` copies is the mean of the order statistics of ranks
    ``(L + 1) // 2`` and ``L // 2 + 1``; each is found from the cumulative counts of the
    values in sorted order.
    """
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v, kind="stable")
    cum = np.cumsum(w[order], axis=0)
    total = cum[-1]
    lo_rank, hi_rank = np.floor((total + 1.0) / 2.0), np.floor(total / 2.0) + 1.0
    lo = np.minimum((cum < lo_rank).sum(axis=0), v.size - 1)
    hi = np.minimum((cum < hi_rank).sum(axis=0), v.size - 1)
    ordered = v[order]
    return np.where(total > 0, (ordered[lo] + ordered[hi]) / 2.0, np.nan)


def is_statistic(statistic: object, func: Callable[..., np.ndarray], name: str) -> bool:
    return statistic is func or (isinstance(statistic, str) and statistic == name)


def fast_path(statistic: object, n_arrays: int) -> Callable[..., np.ndarray] | None:
    """The weighted evaluation of a known statistic, or None (defined after the statistics)."""
    if n_arrays == 1 and is_statistic(statistic, np.median, "median"):
        return _weighted_median
    if n_arrays == 2 and statistic is roc_auc:
        return _weighted_auc
    if n_arrays == 2 and statistic is point_biserial:
        return _weighted_point_biserial
    return None
