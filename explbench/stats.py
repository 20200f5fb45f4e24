"""Small statistical helpers: bootstrap intervals, paired tests, AUC, stable seeds.

Every function here is pure: randomness comes only from the ``numpy.random.Generator`` passed
in, so the same generator state always gives the same numbers. Bootstrap resamples are drawn as
one index matrix of shape ``(n_boot, n)`` and the statistic is evaluated along its second axis.
"""

from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np
from scipy import stats as _sps

__all__ = [
    "bootstrap_ci",
    "bootstrap_rows",
    "bootstrap_mean_columns",
    "paired_bootstrap",
    "mcnemar",
    "roc_auc",
    "point_biserial",
    "seed_for",
]

#: below this many discordant pairs McNemar's test uses the exact binomial distribution
MCNEMAR_EXACT_BELOW = 25


def _resample_index(n: int, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    return rng.integers(0, n, size=(n_boot, n))


def _percentile_interval(boot: np.ndarray, level: float) -> tuple[float, float]:
    boot = np.asarray(boot, dtype=np.float64)
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return (float("nan"), float("nan"))
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")


def bootstrap_ci(
    values: np.ndarray,
    rng: np.random.Generator,
    n_boot: int = 1000,
    statistic: Callable[..., np.ndarray] = np.mean,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of a statistic of one sample.

    Parameters
    ----------
    values : array_like, shape (n,)
        The sample (booleans are treated as 0/1). NaNs are not removed: filter them first.
    rng : numpy.random.Generator
        Source of the resampling indices.
    n_boot : int
        Number of bootstrap resamples.
    statistic : callable
        Called as ``statistic(resamples, axis=1)`` on the ``(n_boot, n)`` matrix of resamples
        (``np.mean``, ``np.median`` and most numpy reductions accept this). A callable without
        an ``axis`` argument is applied row by row instead.
    level : float
        Coverage of the interval, in (0, 1).

    Returns
    -------
    (lo, hi) : tuple of float
        ``(nan, nan)`` for an empty sample; ``(v, v)`` with ``v = statistic(values)`` for a
        sample of one.
    """
    _check_level(level)
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        return (float("nan"), float("nan"))
    if x.size == 1:
        v = float(_apply(statistic, x[None, :])[0])
        return (v, v)
    resamples = x[_resample_index(x.size, rng, n_boot)]
    return _percentile_interval(_apply(statistic, resamples), level)


def _apply(statistic: Callable[..., np.ndarray], rows: np.ndarray) -> np.ndarray:
    try:
        out = np.asarray(statistic(rows, axis=1), dtype=np.float64)
    except TypeError:
        out = np.array([statistic(r) for r in rows], dtype=np.float64)
    return out.reshape(rows.shape[0])


def bootstrap_rows(
    arrays: tuple[np.ndarray, ...],
    statistic: Callable[..., np.ndarray],
    rng: np.random.Generator,
    n_boot: int = 1000,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a statistic of several aligned arrays (cases resampled).

    Parameters
    ----------
    arrays : tuple of array_like, each shape (n,)
        Per-case values resampled together (the same index for every array).
    statistic : callable
        Vectorised statistic: called with arrays of shape ``(n_boot, n)`` (one per input) and
        must return shape ``(n_boot,)``; it operates along the last axis, like :func:`roc_auc`
        and :func:`point_biserial`. Non-finite results (degenerate resamples) are ignored.
    rng, n_boot, level
        As in :func:`bootstrap_ci`.

    Returns
    -------
    (lo, hi) : tuple of float
        ``(nan, nan)`` for an empty sample or when no resample gives a finite statistic.
    """
    _check_level(level)
    cols = [np.asarray(a).ravel() for a in arrays]
    n = cols[0].size if cols else 0
    if any(c.size != n for c in cols):
        raise ValueError("bootstrap_rows needs arrays of equal length")
    if n == 0:
        return (float("nan"), float("nan"))
    idx = _resample_index(n, rng, n_boot)
    boot = np.asarray(statistic(*(c[idx] for c in cols)), dtype=np.float64)
    return _percentile_interval(boot, level)


def bootstrap_mean_columns(
    matrix: np.ndarray,
    rng: np.random.Generator,
    n_boot: int = 1000,
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap intervals of every column mean, resampling cases (rows) jointly.

    One set of resamples serves all columns (e.g. FR(k) for every k), drawn as an index matrix
    and turned into per-resample case counts, so the cost is one ``(n_boot, n) @ (n, p)``
    product instead of ``p`` separate bootstraps. NaN entries are missing values: each column's
    mean is taken over its non-NaN entries in every resample.

    Parameters
    ----------
    matrix : array_like, shape (n, p)
        Per-case values (rows are cases), booleans as 0/1.
    rng, n_boot, level
        As in :func:`bootstrap_ci`.

    Returns
    -------
    (lo, hi) : tuple of np.ndarray, each shape (p,)
        NaN for a column without values; ``(v, v)`` for a column with a single case.
    """
    _check_level(level)
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"matrix must be 2-D (cases x columns), got shape {m.shape}")
    n, p = m.shape
    lo, hi = np.full(p, np.nan), np.full(p, np.nan)
    if n == 0:
        return lo, hi
    valid = ~np.isnan(m)
    idx = _resample_index(n, rng, n_boot)
    offsets = (np.arange(n_boot) * n)[:, None]
    counts = np.bincount((idx + offsets).ravel(), minlength=n_boot * n).reshape(n_boot, n)
    counts = counts.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (counts @ np.where(valid, m, 0.0)) / (counts @ valid)
    for j in range(p):
        col = m[valid[:, j], j]
        if col.size == 1:
            lo[j] = hi[j] = col[0]
        elif col.size > 1:
            lo[j], hi[j] = _percentile_interval(boot[:, j], level)
    return lo, hi


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, rng: np.random.Generator, n_boot: int = 2000, level: float = 0.95
) -> dict[str, float]:
    """Paired bootstrap of the difference of means ``a - b`` over the same cases.

    Parameters
    ----------
    a, b : array_like, shape (n,)
        Per-case values of two explainers on the same cases, in the same order.
    rng : numpy.random.Generator
    n_boot : int
    level : float

    Returns
    -------
    dict with keys
        ``diff`` (mean of ``a - b``), ``ci_low``, ``ci_high`` (percentile interval) and ``p``,
        the two-sided bootstrap p-value of "no difference": the share of null-centred
        resampled differences at least as far from 0 as the observed one, computed as
        ``(1 + #{|d*_b - diff| >= |diff|}) / (n_boot + 1)``. ``p`` is NaN with fewer than
        two cases; everything is NaN for no cases.
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired samples need equal lengths, got {x.size} and {y.size}")
    d = x - y
    if d.size == 0:
        nan = float("nan")
        return {"diff": nan, "ci_low": nan, "ci_high": nan, "p": nan}
    diff = float(d.mean())
    if d.size == 1:
        return {"diff": diff, "ci_low": diff, "ci_high": diff, "p": float("nan")}
    boot = d[_resample_index(d.size, rng, n_boot)].mean(axis=1)
    lo, hi = _percentile_interval(boot, level)
    # tolerance so an exactly-null sample (all differences 0) is not split by rounding noise
    tol = 1e-12 * max(1.0, abs(diff))
    extreme = np.count_nonzero(np.abs(boot - diff) >= abs(diff) - tol)
    p = (1.0 + extreme) / (n_boot + 1.0)
    return {"diff": diff, "ci_low": lo, "ci_high": hi, "p": float(min(1.0, p))}


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
        p = float(_sps.binomtest(b01, n, 0.5, alternative="two-sided").pvalue)
    else:
        stat = float((abs(b01 - b10) - 1.0) ** 2 / n)
        p = float(_sps.chi2.sf(stat, df=1))
    return {"b01": b01, "b10": b10, "statistic": stat, "p": min(1.0, p)}


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


def seed_for(*keys: str | int | None, base: int) -> int:
    """A stable 63-bit seed derived from ``base`` and a sequence of keys.

    Uses SHA-256 over a typed encoding of the keys, so it is identical across processes,
    machines and Python versions (unlike ``hash()``), and ``("1",)`` differs from ``(1,)``.

    Parameters
    ----------
    *keys : str, int or None
        Names and indices identifying the unit of work (e.g. generator, explainer, metric).
    base : int
        The run's master seed.

    Returns
    -------
    int in ``[0, 2**63)``
    """
    parts = [_encode_key(base)]
    parts.extend(_encode_key(k) for k in keys)
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


def _encode_key(key: object) -> str:
    if key is None:
        return "n:"
    if isinstance(key, (bool, np.bool_)):
        return f"b:{int(key)}"
    if isinstance(key, (int, np.integer)):
        return f"i:{int(key)}"
    if isinstance(key, str):
        return f"s:{key}"
    raise TypeError(f"seed keys must be str, int or None, got {type(key).__name__}: {key!r}")
