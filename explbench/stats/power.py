"""Power of the paired comparison the ranks use, stated before a run starts.

Two explainers run on the same ``n`` cases are compared on the headline flip rate FR(k) by
McNemar's test (:func:`explbench.stats.tests.mcnemar`: exact binomial test on the discordant pairs
below 25 of them, chi-square with continuity correction above). Its power depends on ``n`` and
on the two *discordant* probabilities:

- ``p10``: the share of cases on which explainer A flips the decision and B does not;
- ``p01``: the share on which B flips and A does not.

Their difference ``p10 - p01`` is the difference of the two flip rates; their sum, the
*discordance*, is the share of cases on which the two explainers disagree. Before a run, the
discordance is unknown and is assumed (default 0.4: e.g. flip rates 0.6 and 0.3 that are
independent given the case disagree on 0.6 * 0.7 + 0.3 * 0.4 = 0.54 of cases; strongly
correlated explainers disagree less). The *minimum detectable difference* (MDD) is the
smallest ``p10 - p01`` that the test detects with the stated power at that discordance.

Power is computed exactly, by enumerating the number of discordant pairs and how they split,
with the very p-value function the ranks use (:func:`explbench.stats.tests.mcnemar_pvalue`), for
one comparison at level ``alpha``. A Holm correction over many pairs lowers it; the figure is
the best case for one pair. Cases are taken as independent (one case per cluster).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import stats as _sps

from explbench.api.metric import HEADLINE_K
from explbench.stats.tests import mcnemar_pvalue

__all__ = ["mcnemar_power", "minimum_detectable_difference", "describe"]

#: bisection stops when the bracket around the MDD is this narrow
_MDD_TOL = 1e-4


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")


def _check_n(n: int) -> int:
    if isinstance(n, bool) or int(n) != n or n < 0:
        raise ValueError(f"n (number of paired cases) must be an integer >= 0, got {n!r}")
    return int(n)


@lru_cache(maxsize=128)
def _critical_counts(n: int, alpha: float) -> np.ndarray:
    """For ``d = 0..n`` discordant pairs: the largest smaller count the test rejects at, or -1.

    McNemar's p-value depends on the split only through ``min(b01, b10)`` and grows with it,
    so the test rejects exactly when ``min(b01, b10) <= c[d]``.
    """
    d = np.arange(n + 1)[:, None]
    m = np.arange(n // 2 + 1)[None, :]
    valid = m <= d // 2
    p = mcnemar_pvalue(np.where(valid, m, 0), np.where(valid, d - m, 0))
    reject = valid & (p <= alpha)
    return reject.sum(axis=1) - 1


def mcnemar_power(n: int, p10: float, p01: float, alpha: float = 0.05) -> float:
    """Exact power of McNemar's two-sided test (as :func:`explbench.stats.tests.mcnemar` runs it).

    Parameters
    ----------
    n : int
        Number of paired cases.
    p10, p01 : float
        Probability that a case is discordant in favour of A (A flips, B does not) and of B;
        ``p10 + p01 <= 1``.
    alpha : float
        Level of the test.

    Returns
    -------
    float
        ``P(p <= alpha)``, enumerating ``D ~ Bin(n, p10 + p01)`` discordant pairs and their
        split ``b10 | D ~ Bin(D, p10 / (p10 + p01))``. 0 when there can be no discordant pair.
    """
    n = _check_n(n)
    _check_alpha(alpha)
    if not (0.0 <= p10 <= 1.0 and 0.0 <= p01 <= 1.0 and p10 + p01 <= 1.0 + 1e-12):
        raise ValueError(f"need p10, p01 >= 0 with p10 + p01 <= 1, got {p10!r}, {p01!r}")
    q = min(1.0, p10 + p01)
    if n == 0 or q == 0.0:
        return 0.0
    crit = _critical_counts(n, float(alpha))
    d = np.arange(n + 1)
    r = p10 / q
    lower = _sps.binom.cdf(crit, d, r)  # b10 <= c (0 where c = -1)
    upper = _sps.binom.sf(d - crit - 1, d, r)  # b10 >= d - c (0 where c = -1)
    per_d = np.where(crit >= 0, np.minimum(1.0, lower + upper), 0.0)
    return float(np.clip(np.dot(_sps.binom.pmf(d, n, q), per_d), 0.0, 1.0))


def minimum_detectable_difference(
    n: int, discordance: float = 0.4, alpha: float = 0.05, power: float = 0.8
) -> float | None:
    """Smallest paired difference ``p10 - p01`` McNemar's test detects with ``power``.

    Parameters
    ----------
    n : int
        Number of paired cases.
    discordance : float
        Assumed ``p10 + p01``, the share of cases on which the two explainers disagree.
    alpha : float
        Level of the test.
    power : float
        Required power, in (0, 1).

    Returns
    -------
    float or None
        The MDD in [0, discordance], to within 1e-4 (rounded up: the power at the returned
        value is at least ``power``); None when even ``p01 = 0`` (every disagreement in
        favour of one explainer) is not detected with that power.
    """
    n = _check_n(n)
    _check_alpha(alpha)
    if not 0.0 < discordance <= 1.0:
        raise ValueError(f"discordance must lie in (0, 1], got {discordance!r}")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must lie in (0, 1), got {power!r}")

    def achieved(delta: float) -> float:
        return mcnemar_power(n, (discordance + delta) / 2.0, (discordance - delta) / 2.0, alpha)

    if achieved(discordance) < power:
        return None
    lo, hi = 0.0, discordance  # power rises with delta (the split moves away from 1/2)
    if achieved(lo) >= power:
        return 0.0
    while hi - lo > _MDD_TOL:
        mid = (lo + hi) / 2.0
        if achieved(mid) >= power:
            hi = mid
        else:
            lo = mid
    return hi


def describe(
    n_by_generator: dict[str, int],
    discordance: float = 0.4,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    k: int | None = None,
) -> str:
    """One line stating the minimum detectable difference in FR(k) of every attack generator.

    Parameters
    ----------
    n_by_generator : dict of str to int
        Paired cases per attack generator (every explainer runs on the same cases).
    discordance : float
        Assumed share of cases on which two explainers disagree.
    alpha, power : float
        Level and power of the test.
    k : int, optional
        The k of the headline FR(k); :data:`explbench.api.metric.HEADLINE_K` when omitted.

    Returns
    -------
    str
        E.g. ``"minimum detectable difference in FR(3), 80 % power, alpha 0.05, discordance
        0.4: cw-spectrogram n = 32: 0.31; cw-waveform n = 32: 0.31"``; a generator whose ``n``
        is too small for any difference reads ``"n = 8: not detectable"``.
    """
    if k is None:
        k = HEADLINE_K
    head = (
        f"minimum detectable difference in FR({k}), {100 * power:g} % power, alpha {alpha:g}, "
        f"discordance {discordance:g}: "
    )
    parts = []
    for name in sorted(n_by_generator):
        n = n_by_generator[name]
        mdd = minimum_detectable_difference(n, discordance, alpha, power)
        parts.append(f"{name} n = {n}: " + ("not detectable" if mdd is None else f"{mdd:.2f}"))
    return head + ("; ".join(parts) if parts else "no attack generator")
