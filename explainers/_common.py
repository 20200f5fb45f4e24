"""Helpers shared by the shipped explainers (not part of the public API).

Everything random is derived from the ``rng`` argument of ``Explainer.explain``. Libraries
that draw from a *global* generator (shap from ``np.random``, captum from ``torch``'s default
generator and ``np.random``) run inside :func:`local_seed`, which seeds both global generators
from ``rng`` and restores their previous state afterwards, so an explanation is a function of
its seed and leaves no trace on the caller's random state.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from scipy.special import ndtr
from scipy.stats import norm

from explbench.api.seeding import draw_seed, local_seed  # noqa: F401 - the explainers' import
from explbench.core import content as baselines


def as_input(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A detached float32 CPU copy of ``x`` (explainers must never modify their input).

    Parameters
    ----------
    x : tensor or array, shape domain_shape

    Returns
    -------
    torch.Tensor, shape domain_shape, float32
    """
    return torch.as_tensor(x).detach().to("cpu", torch.float32).clone()


def content_baseline(content: str, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """The baseline ``b`` (shape of ``x``, float32) that replaces removed segments.

    Parameters
    ----------
    content : str
        A content type of :mod:`explbench.core.content` ("zero", "min", "mean", "noise").
    x : torch.Tensor, shape domain_shape
    rng : numpy.random.Generator
        Used only by random content types (``noise``).
    """
    return baselines.get(content)(x, rng).to(torch.float32)


def sized(n: int, budget: int | None, extra: int = 0, what: str = "samples") -> int:
    """``n`` reduced so that ``n + extra`` queries fit ``budget``.

    Raises
    ------
    ValueError
        When the budget cannot hold even one sample plus the fixed ``extra`` queries.
    """
    if budget is None:
        return int(n)
    m = min(int(n), int(budget) - extra)
    if m < 1:
        raise ValueError(
            f"a query budget of {budget} is too small: this explainer needs {extra} fixed "
            f"queries plus at least one of its {what}"
        )
    return m


@contextlib.contextmanager
def quiet_logger(name: str, level: int = logging.WARNING) -> Iterator[None]:
    """Raise the level of logger ``name`` to at least ``level`` for the duration."""
    logger = logging.getLogger(name)
    old = logger.level
    logger.setLevel(max(level, old))
    try:
        yield
    finally:
        logger.setLevel(old)


def spread(weights: np.ndarray, components: "object") -> np.ndarray:
    """Spread one weight per component uniformly over its cells (divided by its area).

    Parameters
    ----------
    weights : np.ndarray, shape (k,)
    components : Segmentation with k segments

    Returns
    -------
    np.ndarray, shape domain_shape, float64
        ``sum_j weights[j] * M_j / |M_j|``; projecting it with ``reduce="sum"`` onto another
        segmentation distributes each component's weight by overlapping area.
    """
    masks = components.masks.reshape(components.d, -1).double()
    area = masks.sum(dim=1).clamp_min(1.0)
    w = torch.as_tensor(np.asarray(weights, dtype=np.float64)) / area
    return (w @ masks).reshape(components.shape).numpy()


# --------------------------------------------------------------------------- adaptive sampling

#: the value of ``n_samples`` that asks a sampling explainer to choose its own sample size
AUTO = "auto"


def check_sampling(owner: str, n_samples: object, max_samples: object, first_samples: object,
                   growth: object, confidence: object) -> None:
    """Refuse sampling settings that cannot work, naming the parameter and the fix.

    Raises
    ------
    ValueError
    """
    def positive_int(v: object) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1

    if n_samples != AUTO and not positive_int(n_samples):
        raise ValueError(f"{owner}: n_samples must be a positive integer or \"auto\", got {n_samples!r}")
    if not positive_int(max_samples):
        raise ValueError(f"{owner}: max_samples must be a positive integer, got {max_samples!r}")
    if not positive_int(first_samples) or first_samples < 16:
        raise ValueError(f"{owner}: first_samples must be an integer of at least 16 (the first round "
                         f"of n_samples = \"auto\"), got {first_samples!r}")
    if not isinstance(growth, (int, float)) or isinstance(growth, bool) or not growth > 1.0:
        raise ValueError(f"{owner}: growth (how much each round of n_samples = \"auto\" grows the "
                         f"sample) must be a number above 1, e.g. 2, got {growth!r}")
    if not isinstance(confidence, (int, float)) or isinstance(confidence, bool) or not 0.0 < confidence < 1.0:
        raise ValueError(f"{owner}: confidence must be between 0 and 1 (exclusive), e.g. 0.95, "
                         f"got {confidence!r}")


@dataclass(frozen=True)
class AutoSampling:
    """How ``n_samples = "auto"`` grows its sample and when it stops.

    Rounds. The sample grows through :meth:`schedule` -- ``first``, ``first * growth``, ...,
    up to ``N = min(max_samples, what the budget allows)`` -- and after each round the
    explainer fits its usual estimator on *every* sample drawn so far.

    Stopping (:func:`settle`). The top-k set T (the k largest weights, k =
    ``ExplainContext.headline_k``) is what is settled. Each pair ``i`` in T, ``j`` outside, is
    separated by ``r = (w_i - w_j) / se(w_i - w_j)`` standard errors (the estimator's sandwich
    covariance). :func:`swap_bound` turns ``r`` into a bound on the probability that a pair
    this far apart after ``n`` samples is the other way round in the answer the rounds aim at,
    whatever the true weights: for nested rounds (LIME: each round adds samples to the last)
    that answer is the fit on all ``N`` samples, i.e. ``n_samples = N``; for rounds that are
    fresh samples (KernelSHAP reruns shap) it is the population's order. The set can change
    only if some pair swaps, so the sum of the bounds over the ``k (d - k)`` pairs bounds the
    chance of a different set (pairs far apart add nothing), and the rounds stop at the first
    look where that sum is at most :meth:`level`, ``1 - confidence``.

    The level holds *per look*: it is not divided by the number of looks. Bonferroni over the
    ~17 looks of the default schedule (``(1 - confidence) / looks``, what earlier versions did)
    stopped only at ``p_change <= 0.003``. Replayed on the masks and model answers of 64
    svd-synth cases of the paper suite (LIME, the first 8192 masks of each case's seed;
    ``scripts/adaptive_replay.py``, which runs :func:`explainers.lime.sample_adaptively`), that
    rule used 2740 queries on average for 100 % agreement of the top-3 set with
    ``n_samples = 8192``; the per-look level at ``confidence = 0.97`` (the default of the
    nested-round explainers) used 1746 for 98.4 % (one case of 64 differs), at 0.95 1525 for
    96.9 %. The bound is conservative in two other ways -- the least favourable true
    difference, the union over pairs -- and nested looks are strongly dependent, which is why
    the per-look level lands near its nominal agreement. It is weakest on a near tie of the
    k-th and (k+1)-th weights, where each look is another chance to stop on a lucky gap. For a
    bound over the whole sequence, pass ``confidence = 1 - (1 - c) / looks``.

    Attributes
    ----------
    max_samples : int
    first : int
        Samples of the first round.
    growth : float
        Factor by which each round grows the total sample.
    confidence : float
        At each look, by the bound above, the probability that the top-k set returned is that
        of all ``N`` samples (nested rounds) or of the population (fresh rounds).
    """

    max_samples: int = 8192
    first: int = 256
    growth: float = 1.25
    confidence: float = 0.97

    def schedule(self, cap: int) -> list[int]:
        """Total sample sizes at each look, strictly increasing, ending at ``min(max_samples, cap)``.

        Raises
        ------
        ValueError
            When ``cap`` < 1.
        """
        last = min(int(self.max_samples), int(cap))
        if last < 1:
            raise ValueError(f"no sample fits: the cap is {cap}")
        sizes, n = [], min(int(self.first), last)
        while True:
            sizes.append(n)
            if n >= last:
                return sizes
            n = min(last, max(n + 1, int(math.ceil(n * self.growth))))

    def level(self) -> float:
        """The bound on the chance of a different set at which a look stops the rounds."""
        return 1.0 - float(self.confidence)


#: standard-normal grid of :func:`swap_bound`'s integral (step 0.05 from the threshold up)
_Z = np.arange(0.0, 8.0, 0.05)


def swap_bound(r: np.ndarray, fraction: float = 0.0) -> np.ndarray:
    """Bound on the chance that a pair now ``r`` standard errors apart ends up reversed.

    A difference estimated from ``n`` of ``N`` nested samples is ``a = g + s Z1`` (``g`` the
    true difference, ``s`` its standard error); the estimate from all ``N`` is
    ``f a + (1 - f) b``, ``f = n / N``, with ``b`` from the ``N - n`` samples still to come,
    independent of ``a``. The bound is ``sup_g P(a >= r s and f a + (1 - f) b < 0)``, the
    chance that a pair that looks this separated is the other way round at ``N`` under the
    least favourable true difference. In units of ``s`` the final estimate is ``g + sqrt(f) V``
    with ``corr(Z1, V) = sqrt(f)``, so for ``mu = g / s`` it is
    ``int_{r - mu}^inf phi(z) Phi((-mu / sqrt(f) - sqrt(f) z) / sqrt(1 - f)) dz``, integrated
    on a grid (a left sum over a decreasing integrand, on the safe side) and maximised over
    ``mu`` on a grid of ``[-(r + 4), r]``, beyond which it is negligible (separations of 9 or
    more count as 0). ``fraction = 0`` (nothing shared
    with the answer: the population's order) gives ``Phi(-r)``; ``fraction = 1`` gives 0.

    Parameters
    ----------
    r : np.ndarray, any shape
        Separations in standard errors (``inf`` for an exact one).
    fraction : float
        ``n / N``, in [0, 1].

    Returns
    -------
    np.ndarray, the shape of ``r``, in [0, 1]
    """
    r = np.asarray(r, dtype=np.float64)
    f = float(np.clip(fraction, 0.0, 1.0))
    out = np.where(np.isnan(r) | (r <= 0), 1.0, 0.0)
    live = np.isfinite(r) & (r > 0) & (r < 9.0)  # beyond 9 the bound is below 1e-18: 0
    if f >= 1.0 or not live.any():
        return out
    if f == 0.0:
        out[live] = norm.sf(r[live])
        return out
    x = r[live][:, None, None]  # (m, 1, 1)
    mu = -(x + 4.0) + np.linspace(0.0, 1.0, 97)[None, :, None] * (2.0 * x + 4.0)  # (m, 97, 1): [-(r+4), r]
    z = (x - mu) + _Z[None, None, :]  # Z1 from the threshold up
    inner = ndtr((-mu / math.sqrt(f) - math.sqrt(f) * z) / math.sqrt(1.0 - f))
    val = (np.exp(-0.5 * z * z) * inner).sum(axis=2) * ((_Z[1] - _Z[0]) / math.sqrt(2.0 * math.pi))
    out[live] = np.minimum(1.0, val.max(axis=1))
    return out


@dataclass(frozen=True)
class Settling:
    """Whether a top-k set is settled.

    Attributes
    ----------
    settled : bool
    p_change : float
        The bound on the chance of a different top-k set (:func:`swap_bound` summed over pairs).
    margin : float
        The smallest separation ``(w_i - w_j) / se(w_i - w_j)`` over the pairs that count
        (``inf`` when no pair counts).
    top : tuple of int
        The top-k set, largest weight first.
    """

    settled: bool
    p_change: float
    margin: float
    top: tuple[int, ...]


def settle(weights: np.ndarray, cov: np.ndarray, k: int, alpha: float,
           projection: np.ndarray | None = None, fraction: float = 0.0) -> Settling:
    """Is the top-k set of ``projection @ weights`` settled (see :class:`AutoSampling`)?

    Parameters
    ----------
    weights : np.ndarray, shape (p,)
        The estimator's coefficients.
    cov : np.ndarray, shape (p, p)
        Their covariance.
    k : int
        Size of the top set.
    alpha : float
        Settled when the bound on the chance of a different set is at most this.
    projection : np.ndarray, shape (d, p), optional
        Linear map from the coefficients to the weights that are ranked (default identity).
        Two ranked weights with identical rows are tied by construction and exempt: no sample
        can order them (the harness breaks such ties).
    fraction : float
        ``n / N`` for nested rounds aiming at the fit on ``N`` samples; 0 for the population.

    Returns
    -------
    Settling
    """
    b = np.asarray(weights, dtype=np.float64)
    c = np.asarray(cov, dtype=np.float64)
    P = np.eye(len(b)) if projection is None else np.asarray(projection, dtype=np.float64)
    w, S = P @ b, P @ c @ P.T
    d = len(w)
    order = np.argsort(-w, kind="stable")
    top = tuple(int(i) for i in order[: min(k, d)])
    if k >= d:
        return Settling(True, 0.0, math.inf, top)
    inside, outside = order[:k], order[k:]
    gap = w[inside][:, None] - w[outside][None, :]
    var = (np.diag(S)[inside][:, None] + np.diag(S)[outside][None, :]
           - 2.0 * S[np.ix_(inside, outside)])
    scale = max(1.0, float(np.abs(P).max()))
    same = np.abs(P[inside][:, None, :] - P[outside][None, :, :]).max(axis=2) <= 1e-12 * scale
    sd = np.sqrt(np.clip(var, 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(sd > 0, gap / np.where(sd > 0, sd, 1.0), np.where(gap > 0, np.inf, 0.0))
    ratio = np.where(same, np.inf, ratio)
    p_change = float(swap_bound(ratio, fraction).sum())
    return Settling(p_change <= alpha, p_change, float(ratio.min()), top)


def ridge_covariance(z: np.ndarray, y: np.ndarray, sample_weight: np.ndarray, coef: np.ndarray,
                     intercept: float, alpha: float, clusters: np.ndarray | None = None) -> np.ndarray:
    """Sandwich covariance of weighted ridge coefficients (LIME's surrogate).

    The fit minimises ``sum_i s_i (y_i - c - z_i b)^2 + alpha |b|^2`` with an unpenalised
    intercept ``c``; on the s-weighted centred design ``Z`` its estimating equation is
    ``Z' S (y - c - Z b) - alpha b = 0``. Its misspecification-robust covariance is
    ``A^-1 B A^-1`` with ``A = Z' S Z + alpha I`` and ``B`` the sum over independent units
    (rows, or the pairs of an antithetic sample) of ``g g'``, ``g = sum over the unit's rows of
    s_i r_i Z_i``, times the small-sample factor ``G / (G - p - 1)`` for ``G`` units. The
    residuals ``r`` are those of the fit itself, so no model of the noise is assumed: the
    spread comes from which masks happened to be drawn.

    Parameters
    ----------
    z : np.ndarray, shape (n, p)
    y : np.ndarray, shape (n,)
    sample_weight : np.ndarray, shape (n,)
    coef : np.ndarray, shape (p,)
    intercept : float
    alpha : float
        Ridge penalty.
    clusters : np.ndarray, shape (n,), optional
        Independent unit of each row (default: every row its own).

    Returns
    -------
    np.ndarray, shape (p, p), float64
    """
    Z = np.asarray(z, dtype=np.float64)
    s = np.asarray(sample_weight, dtype=np.float64)
    r = np.asarray(y, dtype=np.float64) - float(intercept) - Z @ np.asarray(coef, dtype=np.float64)
    Zc, A = ridge_system(Z, s, alpha)
    return _sandwich(A, (s * r)[:, None] * Zc, clusters)


def ridge_system(z: np.ndarray, sample_weight: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """The s-weighted centred design ``Zc`` (n, p) and ``A = Zc' S Zc + alpha I`` (p, p) of a
    weighted ridge fit with an unpenalised intercept: its weights solve ``A b = Zc' S y``."""
    Z = np.asarray(z, dtype=np.float64)
    s = np.asarray(sample_weight, dtype=np.float64)
    Zc = Z - (s @ Z) / s.sum()
    return Zc, Zc.T @ (s[:, None] * Zc) + float(alpha) * np.eye(Z.shape[1])


def _sandwich(A: np.ndarray, scores: np.ndarray, clusters: np.ndarray | None) -> np.ndarray:
    """``A^-1 B A^-1`` with ``B = f * sum_g (sum of scores of g)(...)'`` (see :func:`ridge_covariance`)."""
    if clusters is not None:
        _, inverse = np.unique(np.asarray(clusters), return_inverse=True)
        g = np.zeros((int(inverse.max()) + 1 if len(inverse) else 0, scores.shape[1]))
        np.add.at(g, inverse, scores)
    else:
        g = scores
    units, p = g.shape
    B = g.T @ g * (units / max(1, units - p - 1))
    Ainv = np.linalg.pinv(A)
    return Ainv @ B @ Ainv.T
