"""Association of a score with a binary label: ROC AUC and the point-biserial correlation."""

from __future__ import annotations

import numpy as np
from scipy import stats as _sps


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float | np.ndarray:
    """Area under the ROC curve of ``scores`` as a predictor of ``labels``.

    Computed from mid-ranks (the Mann-Whitney statistic), so ties count one half.

    Parameters
    ----------
    scores : array_like, shape (..., n)
    labels : array_like of bool, shape (..., n)
        Leading axes are independent problems (e.g. bootstrap resamples).

    Returns
    -------
    float (1-D input) or np.ndarray of shape ``(...)``
        NaN where only one class is present.
    """
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(labels, dtype=bool)
    if s.shape != pos.shape:
        raise ValueError(f"scores and labels differ in shape: {s.shape} vs {pos.shape}")
    if s.shape[-1] == 0:
        out = np.full(s.shape[:-1], np.nan)
    else:
        ranks = _sps.rankdata(s, axis=-1)
        n1 = pos.sum(axis=-1).astype(np.float64)
        n0 = s.shape[-1] - n1
        with np.errstate(invalid="ignore", divide="ignore"):
            u = (ranks * pos).sum(axis=-1) - n1 * (n1 + 1.0) / 2.0
            out = np.where((n1 > 0) & (n0 > 0), u / (n1 * n0), np.nan)
    return float(out) if out.ndim == 0 else out


def point_biserial(scores: np.ndarray, labels: np.ndarray) -> float | np.ndarray:
    """Point-biserial correlation: Pearson r between ``scores`` and 0/1 ``labels``.

    Parameters
    ----------
    scores : array_like, shape (..., n)
    labels : array_like of bool, shape (..., n)

    Returns
    -------
    float (1-D input) or np.ndarray of shape ``(...)``
        NaN when either variable is constant (including one class only) or ``n < 2``.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool).astype(np.float64)
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in shape: {s.shape} vs {y.shape}")
    sc = s - s.mean(axis=-1, keepdims=True) if s.shape[-1] else s
    yc = y - y.mean(axis=-1, keepdims=True) if y.shape[-1] else y
    num = (sc * yc).sum(axis=-1)
    den = np.sqrt((sc**2).sum(axis=-1) * (yc**2).sum(axis=-1))
    scale = np.maximum(np.abs(s).max(axis=-1, initial=0.0), 1.0)
    degenerate = (den <= 1e-12 * scale) | (s.shape[-1] < 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(degenerate, np.nan, num / np.where(degenerate, 1.0, den))
    return float(out) if out.ndim == 0 else out


__all__ = ["point_biserial", "roc_auc"]
