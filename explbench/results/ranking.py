"""Ranks from paired tests on the headline metric, FR(3), per attack generator.

All explainers of a run explain the same cases, so they are compared case by case:

- For every pair of (non-oracle) explainers, the per-case headline outcome — "the label flips
  when δ is applied on the explainer's top-3 segments", both directions pooled, a failed
  explanation counting as no flip — is compared on the cases both explained:
  the exact McNemar test (:func:`explbench.stats.tests.mcnemar`) when every case is its own cluster,
  else the paired cluster bootstrap (:func:`explbench.stats.bootstrap.paired_cluster_bootstrap`), which
  resamples whole clusters (for svd-synth: songs).
- Explainers of different runs are paired on the cases whose content hashes both runs hold
  (:mod:`explbench.results.pairing`); explainers whose runs share no case's content (e.g.
  another seed) are compared *unpaired*: Fisher's exact test on the two flip counts when every case is
  its own cluster, else a two-proportion z-test on Kish effective sample sizes; such pairs are
  flagged.
- The p-values of all pairs (of one attack generator) are adjusted together by Holm's
  step-down method (:func:`explbench.stats.tests.holm`); a pair differs significantly when its
  adjusted p is below ``alpha`` (0.05).
- An explainer's rank is 1 + the number of explainers significantly better than it; several
  explainers can share a rank (shown ``=r``). Oracles (which see δ) are shown, never ranked and
  never counted.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as _sps

from explbench.stats.bootstrap import paired_cluster_bootstrap
from explbench.stats.clusters import effective_n
from explbench.stats.tests import holm, mcnemar
from explbench.core.seeding import seed_for

from explbench.api.metric import HEADLINE_K
from explbench.metrics.veracity import flips_at
from explbench.results.pairing import HASH, aligned

ALPHA = 0.05
#: the explainer every board compares against
RANDOM = "random"


@dataclass(frozen=True)
class Outcomes:
    """Per-case headline outcomes of one explainer on one generator.

    Attributes
    ----------
    explainer, generator : str
    run_id : str
        The run the outcomes come from (its folder, when ranking runs).
    case_ids, clusters : np.ndarray of str, shape (n,)
        Sorted by case id.
    case_hashes : np.ndarray of object, shape (n,)
        Each case's content hash (None where a record carries none); outcomes of two runs are
        paired on equal hashes (:mod:`explbench.results.pairing`).
    flips : np.ndarray of bool, shape (n,)
        Whether the label flipped at the headline k (False for a failed explanation).
    oracle : bool
    """

    explainer: str
    generator: str
    run_id: str
    case_ids: np.ndarray
    clusters: np.ndarray
    flips: np.ndarray
    oracle: bool = False
    case_hashes: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.case_ids.size)

    @property
    def n_clusters(self) -> int:
        return int(np.unique(self.clusters).size)

    @property
    def rate(self) -> float:
        return float(self.flips.mean()) if self.n else math.nan


def outcomes(records: pd.DataFrame, generator: str, *, run_id: str = "",
             k: int = HEADLINE_K) -> dict[str, Outcomes]:
    """Per explainer, the headline outcomes on one generator's cases.

    Parameters
    ----------
    records : DataFrame
        Records as :func:`explbench.store.runs.records_frame` returns them (columns case_id,
        generator, explainer, status, cluster, oracle, flip_at_k).
    generator : str
    run_id : str
        Stored in the outcomes (where they come from).
    k : int
        The headline k.
    """
    if records.empty:
        return {}
    rows = records[records["generator"] == generator]
    out: dict[str, Outcomes] = {}
    for e, sel in rows.groupby("explainer", sort=True):
        sel = sel.sort_values("case_id", kind="mergesort")
        flips = flips_at(sel, k)
        hashes = (sel[HASH].to_numpy(dtype=object) if HASH in sel.columns
                  else np.full(len(sel), None, dtype=object))
        out[str(e)] = Outcomes(str(e), generator, run_id,
                               sel["case_id"].astype(str).to_numpy(),
                               sel["cluster"].astype(str).to_numpy(), flips,
                               bool(sel["oracle"].any()), hashes)
    return out


@dataclass(frozen=True)
class PairTest:
    """One pairwise comparison of the headline: ``diff = FR(a) - FR(b)``.

    Attributes
    ----------
    generator, a, b : str
    paired : bool
        True when computed on the cases both explained; False for different case sets.
    n, n_clusters : int
        Paired cases and their clusters (paired), or the smaller of the two (unpaired).
    rate_a, rate_b : float
        The two flip rates on the compared cases.
    diff, ci_low, ci_high : float
        The difference and its 95 % interval (NaN when none is available).
    p : float
        Two-sided p-value of "no difference" (NaN when the test cannot be made).
    p_holm : float
        ``p`` after Holm's adjustment over all pairs of the generator.
    test : str
        The test used.
    """

    generator: str
    a: str
    b: str
    paired: bool
    n: int
    n_clusters: int
    rate_a: float
    rate_b: float
    diff: float
    ci_low: float
    ci_high: float
    p: float
    p_holm: float
    test: str

    def significant(self, alpha: float = ALPHA) -> bool:
        return bool(np.isfinite(self.p_holm) and self.p_holm < alpha and self.diff != 0)

    def winner(self, alpha: float = ALPHA) -> str | None:
        """The significantly better explainer of the pair (higher flip rate), if any."""
        if not self.significant(alpha):
            return None
        return self.a if self.diff > 0 else self.b


def paired_flip_test(a: np.ndarray, b: np.ndarray, clusters: np.ndarray,
                     rng: np.random.Generator) -> dict[str, float | str]:
    """Paired comparison of two flip vectors on the same cases.

    Parameters
    ----------
    a, b : np.ndarray of bool, shape (n,)
    clusters : np.ndarray, shape (n,)
        Cluster of each case.
    rng : numpy.random.Generator
        For the cluster bootstrap (its interval, and its p-value when clusters repeat).

    Returns
    -------
    dict with ``diff``, ``ci_low``, ``ci_high``, ``p`` and ``test``: exact McNemar
    (:func:`explbench.stats.tests.mcnemar`) when every case is its own cluster, else the paired
    cluster bootstrap's p; the interval always comes from the paired cluster bootstrap.
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    clusters = np.asarray(clusters)
    if a.size == 0:
        nan = math.nan
        return {"diff": nan, "ci_low": nan, "ci_high": nan, "p": nan, "test": "no shared cases"}
    boot = paired_cluster_bootstrap(a.astype(float), b.astype(float), clusters, rng)
    diff = float(a.mean() - b.mean())
    if np.unique(clusters).size == clusters.size:
        p, test = float(mcnemar(a, b)["p"]), "McNemar"
    else:
        p, test = float(boot["p"]), "paired cluster bootstrap"
    return {"diff": diff, "ci_low": float(boot["ci_low"]), "ci_high": float(boot["ci_high"]),
            "p": p, "test": test}


def unpaired_flip_test(a: np.ndarray, clusters_a: np.ndarray, b: np.ndarray,
                       clusters_b: np.ndarray) -> dict[str, float | str]:
    """Unpaired comparison of two flip vectors on different cases.

    Fisher's exact test when every case of both is its own cluster; otherwise a two-sided
    z-test of the two proportions with the pooled rate and Kish effective sample sizes
    (:func:`explbench.stats.clusters.effective_n`). The interval is the normal one on those sizes.

    Parameters
    ----------
    a, b : np.ndarray of bool, shapes (n_a,), (n_b,)
    clusters_a, clusters_b : np.ndarray, same shapes
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.size == 0 or b.size == 0:
        nan = math.nan
        return {"diff": nan, "ci_low": nan, "ci_high": nan, "p": nan, "test": "unpaired, no cases"}
    ra, rb = float(a.mean()), float(b.mean())
    diff = ra - rb
    singletons = (np.unique(clusters_a).size == a.size) and (np.unique(clusters_b).size == b.size)
    if singletons:
        na, nb = float(a.size), float(b.size)
    else:
        na = float(effective_n(a.astype(float), np.asarray(clusters_a)))
        nb = float(effective_n(b.astype(float), np.asarray(clusters_b)))
    se = math.sqrt(ra * (1 - ra) / na + rb * (1 - rb) / nb)
    lo, hi = (diff - 1.96 * se, diff + 1.96 * se) if se > 0 else (math.nan, math.nan)
    if singletons:
        ka, kb = int(a.sum()), int(b.sum())
        table = [[ka, a.size - ka], [kb, b.size - kb]]
        p = float(_sps.fisher_exact(table, alternative="two-sided")[1])
        test = "unpaired, Fisher exact"
    else:
        pooled = (ra * na + rb * nb) / (na + nb)
        se0 = math.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))
        p = 1.0 if se0 == 0 else float(2 * _sps.norm.sf(abs(diff) / se0))
        test = "unpaired, z-test on effective n"
    return {"diff": diff, "ci_low": lo, "ci_high": hi, "p": min(1.0, p), "test": test}


def _hashes(o: Outcomes) -> np.ndarray:
    return o.case_hashes if o.case_hashes is not None else np.full(o.n, None, dtype=object)


def compare_pair(x: Outcomes, y: Outcomes, seed: int = 0) -> dict[str, object]:
    """The test of one pair before Holm's adjustment (fields of :class:`PairTest` but ``p_holm``).

    Paired on the cases both explained: within one run by case id, across runs on equal
    content hashes; unpaired when two runs share no case's content.
    """
    lo, hi = sorted((x.explainer, y.explainer))
    rng = np.random.default_rng(seed_for("ranking", x.generator, lo, hi, base=seed))
    if x.run_id == y.run_id:
        _, ix, iy = np.intersect1d(x.case_ids, y.case_ids, assume_unique=True, return_indices=True)
    else:
        ix, iy = aligned(x.case_ids, _hashes(x), y.case_ids, _hashes(y))
    same_cases = ix.size > 0
    if same_cases:
        fa, fb, cl = x.flips[ix], y.flips[iy], x.clusters[ix]
        t = paired_flip_test(fa, fb, cl, rng)
        n, nc = int(ix.size), int(np.unique(cl).size)
        ra = float(fa.mean()) if n else math.nan
        rb = float(fb.mean()) if n else math.nan
    else:
        t = unpaired_flip_test(x.flips, x.clusters, y.flips, y.clusters)
        n, nc = min(x.n, y.n), min(x.n_clusters, y.n_clusters)
        ra, rb = x.rate, y.rate
    return {"generator": x.generator, "a": x.explainer, "b": y.explainer, "paired": same_cases,
            "n": n, "n_clusters": nc, "rate_a": ra, "rate_b": rb, **t}


@dataclass
class Ranking:
    """The ranking of one attack generator.

    Attributes
    ----------
    generator : str
    outcomes : dict
        Per explainer (oracles included) its :class:`Outcomes`.
    tests : list of PairTest
        Every pair of ranked explainers, ``a < b`` alphabetically.
    alpha : float
    vs_random : dict
        Explainer → its pair test against ``random`` with ``p_holm`` adjusted over the family
        "each explainer against random" alone (the board's 'beats random'), not over all pairs.
    """

    generator: str
    outcomes: dict[str, Outcomes]
    tests: list[PairTest] = field(default_factory=list)
    alpha: float = ALPHA
    vs_random: dict[str, PairTest] = field(default_factory=dict)

    @property
    def ranked(self) -> list[str]:
        """Explainers that take part (not oracles, with at least one case), sorted."""
        return sorted(e for e, o in self.outcomes.items() if not o.oracle and o.n > 0)

    def test(self, a: str, b: str) -> PairTest | None:
        for t in self.tests:
            if {t.a, t.b} == {a, b}:
                return t
        return None

    def better_than(self, e: str) -> list[str]:
        """Explainers that ``e`` is significantly better than, by falling flip rate."""
        beaten = [t.b if t.a == e else t.a for t in self.tests if e in (t.a, t.b) and t.winner(self.alpha) == e]
        return sorted(beaten, key=lambda o: (-self.outcomes[o].rate, o))

    def worse_than(self, e: str) -> list[str]:
        """Explainers significantly better than ``e``."""
        return sorted(t.winner(self.alpha) for t in self.tests  # type: ignore[type-var]
                      if e in (t.a, t.b) and t.winner(self.alpha) not in (None, e))

    def rank(self, e: str) -> int | None:
        """1 + the number of explainers significantly better; None for oracles and the absent."""
        if e not in self.ranked:
            return None
        return 1 + len(self.worse_than(e))

    def label(self, e: str) -> str:
        """``"1"``, ``"=2"`` (shared), ``"oracle"`` or ``"–"`` (no headline value)."""
        o = self.outcomes.get(e)
        if o is not None and o.oracle:
            return "oracle"
        r = self.rank(e)
        if r is None:
            return "–"
        shared = sum(1 for x in self.ranked if self.rank(x) == r) > 1
        return f"={r}" if shared else str(r)

    def beats_random(self, e: str) -> str:
        """``"yes"``, ``"no"``, or ``"–"`` (for random itself, oracles and when random is absent).

        The question "is it better than chance?" is asked of every explainer, so its tests are
        one family: each explainer against random, Holm-adjusted over those tests only
        (:attr:`vs_random`). Ranks and 'better than' use the family of all pairs.
        """
        t = self.vs_random.get(e)
        if e == RANDOM or t is None:
            return "–"
        return "yes" if t.winner(self.alpha) == e else "no"

    def unpaired_pairs(self) -> list[tuple[str, str]]:
        return [(t.a, t.b) for t in self.tests if not t.paired]

    def matrix(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(effect, Holm-adjusted p): square tables over the ranked explainers, ordered by rank
        then flip rate; ``effect.loc[r, c]`` = FR(r) − FR(c) on their compared cases."""
        order = sorted(self.ranked, key=lambda e: (self.rank(e), -self.outcomes[e].rate, e))
        eff = pd.DataFrame(np.nan, index=order, columns=order)
        pad = pd.DataFrame(np.nan, index=order, columns=order)
        for t in self.tests:
            eff.loc[t.a, t.b], eff.loc[t.b, t.a] = t.diff, -t.diff
            pad.loc[t.a, t.b] = pad.loc[t.b, t.a] = t.p_holm
        return eff, pad

    def table(self) -> pd.DataFrame:
        """Every pair as a tidy table (what the leaderboard CSV and the report use)."""
        cols = ["generator", "a", "b", "paired", "n", "n_clusters", "rate_a", "rate_b", "diff",
                "ci_low", "ci_high", "p", "p_holm", "test", "better"]
        rows = [{**{c: getattr(t, c) for c in cols[:-1]}, "better": t.winner(self.alpha) or ""}
                for t in self.tests]
        return pd.DataFrame(rows, columns=cols)


def rank(outcomes_by_explainer: Mapping[str, Outcomes], generator: str, *, alpha: float = ALPHA,
         seed: int = 0) -> Ranking:
    """Pairwise tests, Holm's adjustment and ranks for one attack generator.

    Parameters
    ----------
    outcomes_by_explainer : mapping
        Explainer → :class:`Outcomes` on ``generator`` (oracles included; they are left out
        of the tests).
    generator : str
    alpha : float
        Family-wise error rate of the Holm-adjusted tests.
    seed : int
        Base seed of the cluster bootstraps (each pair draws from its own stream).
    """
    result = Ranking(generator, dict(outcomes_by_explainer), alpha=alpha)
    names = result.ranked
    raw = [compare_pair(result.outcomes[a], result.outcomes[b], seed)
           for a, b in itertools.combinations(names, 2)]
    if raw:
        adjusted = np.asarray(holm([float(r["p"]) for r in raw]), dtype=float)
        result.tests = [PairTest(p_holm=float(q), **r) for r, q in zip(raw, adjusted)]  # type: ignore[arg-type]
    against = [r for r in raw if RANDOM in (r["a"], r["b"])]
    if against:
        adjusted = holm([float(r["p"]) for r in against])
        for r, q in zip(against, adjusted):
            other = r["b"] if r["a"] == RANDOM else r["a"]
            result.vs_random[other] = PairTest(p_holm=float(q), **r)  # type: ignore[arg-type]
    return result


def rank_runs(runs: list, generators: list[str], *, alpha: float = ALPHA,
              k: int = HEADLINE_K) -> dict[str, Ranking]:
    """Rankings per attack generator of explainers taken from their newest run.

    Parameters
    ----------
    runs : list of explbench.store.runs.Run
    generators : list of str
        Attack generators, headline first.
    """
    from explbench.store.runs import newest_sources

    sources = newest_sources(runs)
    by_run: dict[int, tuple[object, list[str]]] = {}
    for e, r in sources.items():
        by_run.setdefault(id(r), (r, []))[1].append(e)
    seed = min((r.seed for r in runs), default=0)
    out = {}
    for g in generators:
        merged: dict[str, Outcomes] = {}
        for r, names in by_run.values():
            got = outcomes(r.records, g, run_id=str(r.folder), k=k)
            merged.update({e: o for e, o in got.items() if e in names})
        out[g] = rank(merged, g, alpha=alpha, seed=seed)
    return out


__all__ = ["ALPHA", "HEADLINE_K", "Outcomes", "PairTest", "RANDOM", "Ranking", "compare_pair",
           "outcomes", "paired_flip_test", "rank", "rank_runs", "unpaired_flip_test"]
