"""Paired tests the ranks use: exact McNemar, Holm's step-down adjustment."""

from __future__ import annotations

from typing import Sequence
import numpy as np
from scipy import stats as _sps


#: below this many discordant pairs McNemar's test uses the exact binomial distribution
MCNEMAR_EXACT_BELOW = 25


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control), NaN kept as NaN.

    With the ``m`` non-NaN p-values sorted, ``p_(1) <= ... <= p_(m)``, the adjusted value of
    ``p_(i)`` is ``max_{j <= i} min(1, (m - j + 1) * p_(j))``. Rejecting every hypothesis whose
    adjusted p is ``<= alpha`` controls the family-wise error rate at ``alpha``.

    Parameters
    ----------
    pvalues : sequence of float, any shape
        Raw p-values in [0, 1]; NaN marks a test that was not made and does not count in ``m``.

    Returns
    -------
    np.ndarray
        Adjusted p-values, same shape and order as the input.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    flat = p.ravel()
    out = np.full(flat.shape, np.nan)
    present = ~np.isnan(flat)
    vals = flat[present]
    if np.any((vals < 0) | (vals > 1)):
        raise ValueError(f"p-values must lie in [0, 1], got {vals[(vals < 0) | (vals > 1)]}")
    m = vals.size
    if m:
        order = np.argsort(vals, kind="stable")
        adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * vals[order]))
        res = np.empty(m)
        res[order] = adjusted
        out[present] = res
    return out.reshape(p.shape)


def mcnemar(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """McNemar's test for two paired binary outcomes (e.g. "flipped" for two explainers).

    Parameters
    ----------
    a, b : array_like of bool, shape (n,)

    Returns
    -------
    dict with keys
        ``b01`` (cases where ``a`` is False and ``b`` True), ``b10`` (``a`` True, ``b`` False),
        ``statistic`` and two-sided ``p``. With fewer than 25 discordant cases the exact
        binomial test is used (``statistic`` = the smaller discordant count); otherwise the
        chi-square statistic with continuity correction, ``(|b01 - b10| - 1)^2 / (b01 + b10)``,
        on one degree of freedom. No discordant cases gives ``statistic = 0, p = 1``.
    """
    x = np.asarray(a, dtype=bool).ravel()
    y = np.asarray(b, dtype=bool).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired samples need equal lengths, got {x.size} and {y.size}")
    b01 = int(np.count_nonzero(~x & y))
    b10 = int(np.count_nonzero(x & ~y))
    n = b01 + b10
    if n == 0:
        return {"b01": 0, "b10": 0, "statistic": 0.0, "p": 1.0}
    if n < MCNEMAR_EXACT_BELOW:
        stat = float(min(b01, b10))
    else:
        stat = float((abs(b01 - b10) - 1.0) ** 2 / n)
    return {"b01": b01, "b10": b10, "statistic": stat, "p": float(mcnemar_pvalue(b01, b10))}


def mcnemar_pvalue(b01: int | np.ndarray, b10: int | np.ndarray) -> float | np.ndarray:
    """Two-sided p-value of McNemar's test from the two discordant counts (vectorised).

    The one definition of the test: :func:`mcnemar` and :func:`explbench.stats.power.mcnemar_power`
    both use it, so the power a suite states is the power of the test its ranks use.

    Parameters
    ----------
    b01, b10 : int or array_like of int
        Discordant counts (broadcast together).

    Returns
    -------
    float or np.ndarray
        With ``b01 + b10 < MCNEMAR_EXACT_BELOW``: the exact binomial test,
        ``min(1, 2 * P(X <= min(b01, b10)))`` with ``X ~ Bin(b01 + b10, 1/2)`` (identical to
        ``scipy.stats.binomtest(..., 0.5)``'s two-sided p); otherwise the chi-square test with
        continuity correction on one degree of freedom. 1 when there is no discordant pair.
    """
    x, y = np.broadcast_arrays(np.asarray(b01, dtype=np.int64), np.asarray(b10, dtype=np.int64))
    if np.any(x < 0) or np.any(y < 0):
        raise ValueError("discordant counts b01 and b10 must be >= 0")
    n = x + y
    exact = np.minimum(1.0, 2.0 * _sps.binom.cdf(np.minimum(x, y), n, 0.5))
    with np.errstate(invalid="ignore", divide="ignore"):
        stat = (np.abs(x - y) - 1.0) ** 2 / n
    chi = _sps.chi2.sf(stat, df=1)
    p = np.where(n == 0, 1.0, np.where(n < MCNEMAR_EXACT_BELOW, exact, np.minimum(1.0, chi)))
    return float(p) if p.ndim == 0 else p


__all__ = ["holm", "mcnemar", "mcnemar_pvalue"]
