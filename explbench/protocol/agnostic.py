"""The harness's agnostic fidelity: how well an explanation's weights, with a fitted intercept and scale, predict the model on a shared random-mask neighbourhood."""

from __future__ import annotations

import numpy as np


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
