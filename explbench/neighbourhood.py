"""LIME's neighbourhood: random binary masks, their distance to the instance, kernel weights.

Shared by the ``lime`` family of explainers and by the harness's agnostic fidelity, so that
both weigh a neighbourhood identically.

All-zero rows. The cosine distance to an all-zero mask is 0/0. scikit-learn's
``pairwise_distances(..., metric="cosine")`` (what lime uses) treats zero-norm rows as having
similarity 0, i.e. distance 1 -- the largest distance a non-negative binary mask can have,
giving kernel weight ``exp(-1 / (2 w^2))`` (3.4e-4 at w = 0.25). The same value is set
explicitly for zero rows (so it cannot become NaN whatever the backend), and round-off below 0
is clipped.

Precision. Masks are float32 (they multiply float32 inputs), but distances and kernel weights are
computed from a float64 copy: in float32 the cosine distance carries a round-off of ~1e-7,
which moves LIME's ridge weights by ~5e-9 away from the ``lime`` package's (whose masks are
integers, converted to float64 by scikit-learn).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from sklearn.metrics import pairwise_distances


def sample_masks(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Bernoulli(0.5) masks with the all-ones row (the instance itself) first.

    Returns
    -------
    np.ndarray, shape (n, d), float32 in {0, 1}
    """
    z = rng.binomial(1, 0.5, size=(n, d)).astype(np.float32)
    z[0] = 1.0
    return z


def cosine_to_ones(z: np.ndarray) -> np.ndarray:
    """Cosine distance of every row of ``z`` to its first (all-ones) row.

    Parameters
    ----------
    z : np.ndarray, shape (n, d)

    Returns
    -------
    np.ndarray, shape (n,), float64 in [0, 1]; all-zero rows get 1 (see the module notes).
        Computed in float64 whatever the dtype of ``z``.
    """
    z = np.asarray(z, dtype=np.float64)
    dist = pairwise_distances(z, z[:1], metric="cosine").ravel()
    dist[~z.any(axis=1)] = 1.0
    return np.clip(dist, 0.0, None)


def lime_kernel(width: float) -> Callable[[np.ndarray], np.ndarray]:
    """LIME's exponential kernel ``d -> sqrt(exp(-d^2 / width^2))``."""

    def kernel(d: np.ndarray) -> np.ndarray:
        return np.sqrt(np.exp(-(np.asarray(d) ** 2) / width**2))

    return kernel


def kernel_weights(z: np.ndarray, width: float = 0.25) -> np.ndarray:
    """Kernel weight ``(n,)`` of every mask of ``z`` ``(n, d)`` by its distance to row 0."""
    return lime_kernel(width)(cosine_to_ones(z))
