"""Statistical helpers: intervals that hold their level, paired tests, AUC, stable seeds.

Proportions get a Clopper-Pearson interval (:func:`clopper_pearson_interval`; the metrics use
it) or a Wilson score interval (:func:`wilson_interval`, narrower, but under 95 % at some n and
p), on the Kish effective sample size when cases are clustered (:func:`effective_n`). Means, medians and AUCs get a bootstrap that resamples whole *clusters*
(the unit of independence: for svd-synth, the song) with a BCa interval
(:func:`cluster_bootstrap`); with fewer than :data:`MIN_CLUSTERS` clusters no interval is
reported. Paired comparisons use McNemar's test (:func:`mcnemar`) for binary outcomes and
:func:`paired_cluster_bootstrap` for means; :func:`holm` corrects a family of p-values.

Every function here is pure: randomness comes only from the ``numpy.random.Generator`` passed
in, so the same generator state always gives the same numbers. Bootstrap resamples are drawn as
one index matrix of shape ``(n_boot, n)`` and the statistic is evaluated along its last axis.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
from scipy import stats as _sps

__all__ = ["wilson_interval", "clopper_pearson_bounds", "clopper_pearson_interval"]


def check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")


# --------------------------------------------------------------------------- proportions

STD_NORMAL = NormalDist()


def _z(level: float) -> float:
    """The two-sided normal quantile of ``level`` (1.95996... for 0.95)."""
    return STD_NORMAL.inv_cdf(0.5 + level / 2.0)


def _check_count(k: float, n: float) -> tuple[float, float]:
    k, n = float(k), float(n)
    if not (np.isfinite(k) and np.isfinite(n)) or n < 0:
        raise ValueError(f"a proportion needs finite k and n >= 0, got k={k!r}, n={n!r}")
    if k < 0 or k > n * (1.0 + 1e-12):
        raise ValueError(f"the count k must lie in [0, n], got k={k!r}, n={n!r}")
    return min(k, n), n


def wilson_interval(k: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion.

    Parameters
    ----------
    k : float
        Number of successes; ``k / n`` is the observed proportion. With an effective sample
        size (:func:`effective_n`) pass ``k = p_hat * n_eff``; ``k`` need not be an integer.
    n : float
        Number of trials, or an effective number (need not be an integer), ``>= 0``.
    level : float
        Nominal coverage, in (0, 1).

    Returns
    -------
    (lo, hi) : tuple of float
        In [0, 1]; ``lo`` is exactly 0 when ``k = 0`` and ``hi`` exactly 1 when ``k = n``, so
        the interval has positive width at every ``n > 0`` (0/16 gives ``(0.0, 0.194)``).
        ``(nan, nan)`` when ``n = 0``.
    """
    check_level(level)
    k, n = _check_count(k, n)
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    z = _z(level)
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denom
    half = z / denom * np.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return (float(lo), float(hi))


def clopper_pearson_interval(k: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson ("exact") interval of a proportion, from the beta quantiles.

    Parameters
    ----------
    k, n : float
        Successes and trials (integers for the exact guarantee; non-integers are accepted
        and interpolate the beta quantiles).
    level : float
        Nominal coverage, in (0, 1); the actual coverage is at least ``level`` at every p.

    Returns
    -------
    (lo, hi) : tuple of float
        ``lo = 0`` when ``k = 0``, ``hi = 1`` when ``k = n`` (0/16 gives ``(0.0, 0.206)``);
        ``(nan, nan)`` when ``n = 0``.
    """
    check_level(level)
    k, n = _check_count(k, n)
    if n == 0:
        return (float("nan"), float("nan"))
    lo, hi = clopper_pearson_bounds(np.array([k]), n, level)
    return (float(lo[0]), float(hi[0]))


def clopper_pearson_bounds(k: np.ndarray, n: float, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """:func:`clopper_pearson_interval` for many counts of one ``n > 0`` at once.

    Parameters
    ----------
    k : np.ndarray, shape (m,)
        Successes, each in [0, n].

    Returns
    -------
    (lo, hi) : np.ndarray, shape (m,) each
    """
    k = np.asarray(k, dtype=np.float64)
    a = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(k <= 0, 0.0, _sps.beta.ppf(a, np.maximum(k, 1e-300), n - k + 1.0))
        hi = np.where(k >= n, 1.0, _sps.beta.ppf(1.0 - a, k + 1.0, np.maximum(n - k, 1e-300)))
    return lo, hi


# --------------------------------------------------------------------------- clusters


# The weighted statistics below take case-major weights ``w`` of shape (n, rows): column b
# holds how many copies of each case resample b contains. They return shape (rows,), equal to
# the statistic of the concatenated resample, in O(n * rows) without building it. Sums over
# cases are cumulative sums and einsums along axis 0, never BLAS products: OpenBLAS threads
# make small products ~25x slower on a busy machine.


# --------------------------------------------------------------------------- case bootstrap


