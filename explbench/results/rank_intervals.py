"""Rank intervals from paired tests on the headline metric.

:mod:`explbench.results.ranking` gives each explainer one rank, 1 + the number of explainers
significantly better than it. The same pairwise verdicts also bound the rank from the other
side: an explainer cannot rank below the explainers it significantly beats. With ``m`` ranked
explainers, an explainer's rank interval is

- ``best  = 1 + (number of explainers significantly better than it)``,
- ``worst = m - (number of explainers significantly worse than it)``,

shown ``"2"`` when both agree and ``"2–4"`` (en dash) otherwise. Since an explainer is never
claimed both better and worse than another, ``best <= worst``. When every significant verdict
is right, each interval contains the explainer's true rank range
``[1 + #truly better, m - #truly worse]``, all explainers at once. Holm's adjustment over all
pairs keeps the chance of a significant verdict on any truly tied pair at most ``alpha``;
verdicts in the wrong direction are rarer still. ``tests/test_rank_intervals.py`` simulates
the simultaneous coverage at the suites' sizes.

Everything here is pure: no global state, no randomness.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass



__all__ = ["RankInterval", "rank_intervals", "rank_intervals_of"]

#: family-wise error rate of the Holm-adjusted pairwise tests (as in the ranking)
ALPHA = 0.05


@dataclass(frozen=True)
class RankInterval:
    """The ranks an explainer can take given the significant pairwise verdicts.

    Attributes
    ----------
    explainer : str
    best : int
        1 + the number of explainers significantly better (the rank the board shows).
    worst : int
        ``m`` − the number of explainers significantly worse, ``m`` the ranked explainers.
    """

    explainer: str
    best: int
    worst: int

    def __post_init__(self) -> None:
        if not 1 <= self.best <= self.worst:
            raise ValueError(f"rank interval of {self.explainer!r} needs 1 <= best <= worst, "
                             f"got best={self.best}, worst={self.worst}")

    @property
    def text(self) -> str:
        """``"1"`` when ``best == worst``, else ``"best–worst"`` with an en dash (``"1–3"``)."""
        return str(self.best) if self.best == self.worst else f"{self.best}\u2013{self.worst}"

    def __contains__(self, rank: object) -> bool:
        return isinstance(rank, int) and self.best <= rank <= self.worst


def _names(explainers: Sequence[str]) -> list[str]:
    """The explainers as a list of distinct strings (TypeError/ValueError otherwise)."""
    if isinstance(explainers, str):
        raise TypeError("explainers must be a sequence of names, not one string")
    names = list(explainers)
    for e in names:
        if not isinstance(e, str) or not e:
            raise ValueError(f"explainer names must be non-empty strings, got {e!r}")
    dupes = sorted(e for e, count in Counter(names).items() if count > 1)
    if dupes:
        raise ValueError(f"explainer names must be distinct, repeated: {dupes}")
    return names


def rank_intervals(explainers: Sequence[str],
                   better: Mapping[tuple[str, str], bool]) -> dict[str, RankInterval]:
    """Rank intervals from the significant pairwise verdicts.

    Parameters
    ----------
    explainers : sequence of str, length m
        The ranked explainers (distinct; oracles left out), in any order.
    better : mapping (str, str) -> bool
        ``better[(a, b)]`` is True when ``a`` is significantly better than ``b``. A pair that
        is missing, or False, is "not significant". Only pairs of ``explainers`` may appear.

    Returns
    -------
    dict str -> RankInterval
        One interval per explainer, in the order of ``explainers``; ``best`` is the rank
        :class:`explbench.results.ranking.Ranking` shows, ``worst`` the lowest rank consistent
        with the verdicts.

    Raises
    ------
    TypeError
        When ``explainers`` is one string rather than a sequence of names.
    ValueError
        On repeated, empty or non-string names, a key that is not a pair of known explainers, an
        explainer claimed better than itself, or a pair claimed better in both directions.
    """
    names = _names(explainers)
    known = set(names)
    n_better = dict.fromkeys(names, 0)  # explainers significantly better than the key
    n_worse = dict.fromkeys(names, 0)  # explainers significantly worse than the key
    claimed: set[tuple[str, str]] = set()
    for key, value in better.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ValueError(f"keys of `better` must be (a, b) pairs, got {key!r}")
        a, b = key
        unknown = [x for x in (a, b) if x not in known]
        if unknown:
            raise ValueError(f"`better` names unknown explainers {unknown} in pair {key!r}; "
                             f"known: {sorted(known)}")
        if not bool(value):
            continue
        if a == b:
            raise ValueError(f"{a!r} cannot be significantly better than itself")
        if (b, a) in claimed:
            raise ValueError(f"pair claimed both ways: {a!r} better than {b!r} and {b!r} "
                             f"better than {a!r}")
        claimed.add((a, b))
        n_worse[a] += 1
        n_better[b] += 1
    m = len(names)
    return {e: RankInterval(e, 1 + n_better[e], m - n_worse[e]) for e in names}


def rank_intervals_of(ranking: object) -> dict[str, RankInterval]:
    """Rank intervals of a board's ranking, from the pairwise tests it already holds.

    Parameters
    ----------
    ranking : explbench.results.ranking.Ranking
        Its ``ranked`` explainers (oracles and explainers without cases left out) and its
        ``tests`` (Holm-adjusted over all pairs of the generator): a pair is significant when
        :meth:`~explbench.results.ranking.PairTest.winner` names one of the two at the
        ranking's ``alpha``.

    Returns
    -------
    dict str -> RankInterval
        Per ranked explainer, sorted by name; ``best`` equals ``ranking.rank(e)``.
    """
    names = list(ranking.ranked)  # type: ignore[attr-defined]
    known = set(names)
    better: dict[tuple[str, str], bool] = {}
    for t in ranking.tests:  # type: ignore[attr-defined]
        w = t.winner(ranking.alpha)  # type: ignore[attr-defined]
        if w is None or not {t.a, t.b} <= known:
            continue
        better[(w, t.b if w == t.a else t.a)] = True
    return rank_intervals(names, better)
