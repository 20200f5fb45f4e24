"""LIME's neighbourhood: random binary masks, their distance to the instance, kernel weights.

Shared by the ``lime`` family of explainers and by the harness's agnostic fidelity, so that
both weigh a neighbourhood identically.

Masks are drawn all at once (:func:`sample_masks`) or in rounds (:class:`MaskStream`, for
``n_samples = "auto"``); both give the same rows from the same generator, independent
Bernoulli(0.5) masks or antithetic pairs (a mask and its complement).

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


def sample_masks(rng: np.random.Generator, n: int, d: int, paired: bool = False) -> np.ndarray:
    """Bernoulli(0.5) masks with the all-ones row (the instance itself) first.

    Parameters
    ----------
    rng : numpy.random.Generator
    n, d : int
        Rows (masks) and columns (components).
    paired : bool
        Antithetic masks: row 1 is all zeros, and from row 2 on every mask ``u`` is followed by
        its complement ``1 - u`` (see :class:`MaskStream`).

    Returns
    -------
    np.ndarray, shape (n, d), float32 in {0, 1}
        With ``paired=False`` exactly ``rng.binomial(1, 0.5, (n, d))`` with row 0 set to ones.
    """
    return MaskStream(rng, d, paired).take(n)


class MaskStream:
    """LIME's neighbourhood drawn in rounds: ``take(a)`` then ``take(b)`` gives the same rows
    as one ``sample_masks(rng, a + b, d, paired)``.

    Independent masks (``paired=False``) are ``rng.binomial(1, 0.5, (m, d))`` rows, row 0 set
    to ones (numpy's binomial consumes its bit stream row by row, so chunked draws equal one
    draw). Antithetic masks (``paired=True``): rows 0 and 1 are all ones and all zeros, then
    pairs ``u, 1 - u`` with ``u`` ~ Bernoulli(0.5)^d; every row is still marginally
    Bernoulli(0.5), and row ``i`` belongs to pair ``i // 2`` (:meth:`pairs`).

    Parameters
    ----------
    rng : numpy.random.Generator
        Consumed as rows are taken (``d`` draws per independent row, per pair when paired).
    d : int
        Columns (components).
    paired : bool
    """

    def __init__(self, rng: np.random.Generator, d: int, paired: bool = False) -> None:
        if d < 1:
            raise ValueError(f"a neighbourhood needs at least one component, got d = {d}")
        self.rng, self.d, self.paired = rng, int(d), bool(paired)
        self.taken = 0
        self._spare: np.ndarray | None = None  # second half of a pair cut by the last take

    def take(self, m: int) -> np.ndarray:
        """The next ``m`` rows, shape (m, d), float32 in {0, 1}."""
        m = int(m)
        if m < 0:
            raise ValueError(f"cannot take {m} masks")
        if not self.paired:
            z = self.rng.binomial(1, 0.5, size=(m, self.d)).astype(np.float32)
            if self.taken == 0 and m > 0:
                z[0] = 1.0
        else:
            rows: list[np.ndarray] = []
            if self._spare is not None and m > 0:
                rows.append(self._spare)
                self._spare = None
            head = min(max(0, 2 - self.taken - len(rows)), m - len(rows))
            for i in range(head):  # the instance and its complement
                rows.append(np.full((1, self.d), 1.0 if self.taken + i == 0 else 0.0, np.float32))
            left = m - sum(len(r) for r in rows)
            if left > 0:
                u = self.rng.binomial(1, 0.5, size=((left + 1) // 2, self.d)).astype(np.float32)
                both = np.empty((2 * len(u), self.d), np.float32)
                both[0::2], both[1::2] = u, 1.0 - u
                rows.append(both[:left])
                if len(both) > left:
                    self._spare = both[left:]
            z = np.concatenate(rows) if rows else np.empty((0, self.d), np.float32)
        self.taken += m
        return z

    def pairs(self, n: int) -> np.ndarray:
        """Cluster id of each of the first ``n`` rows, shape (n,), int64: the pair a row belongs
        to when paired, its own index otherwise (the independent units of the sample)."""
        i = np.arange(int(n), dtype=np.int64)
        return i // 2 if self.paired else i


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
