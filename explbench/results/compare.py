"""Compare two runs explainer by explainer, paired on shared cases where possible.

Cases are shared when both runs hold their content hash (:mod:`explbench.results.pairing`),
whatever their ids, seeds or cache keys: the same ``case_id`` in runs with different seeds, or
on a machine whose arithmetic differs, names a different case. On shared cases the comparison
is paired:

- flips (FR(3), positive-weight flip): the exact McNemar test when every case is its own
  cluster, else the paired cluster bootstrap (:func:`explbench.results.ranking.paired_flip_test`);
  a failed explanation counts as no flip;
- recovery (a failed explanation recovers nothing), the explainer's own fidelity score, the
  harness's agnostic fidelity and queries: the paired cluster bootstrap of the mean difference.

Generators without shared cases are compared unpaired — flips from the records (Fisher's exact
test, or a z-test on effective sample sizes when cases share clusters), other metrics from the
two runs' aggregate values and intervals (normal approximation) — and every such sentence says
so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
from scipy.stats import norm

from explbench.stats.bootstrap import bootstrap_ci, paired_cluster_bootstrap
from explbench.results.compat import config_differences
from explbench.results.pairing import CaseMatch, join, match
from explbench.metrics.records import has_truth, segment_set
from explbench.metrics.localisation import hits
from explbench.metrics.veracity import flips_at
from explbench.results.ranking import HEADLINE_K, paired_flip_test, unpaired_flip_test
from explbench.store.runs import Run, load_run
from explbench.core.seeding import seed_for

ALPHA = 0.05
#: generator label of comparisons pooled over every generator (queries)
ALL_CASES = "all"
#: metric key → (title, direction, decimals)
METRICS = {
    "flip-rate": (f"FR({HEADLINE_K})", "higher", 2),
    "positive-flip-rate": ("positive-weight flip rate", "higher", 2),
    "recovery": ("recovery@{k}", "higher", 2),
    "fidelity": ("mean own fidelity score on k = 1 cases", "higher", 2),
    "agnostic-fidelity": ("mean agnostic fidelity on k = 1 cases", "higher", 2),
    "fidelity-auc": ("own-fidelity-vs-correctness AUC", "higher", 2),
    "queries": ("queries per explanation", "lower", 1),
}
COLUMNS = ["explainer", "generator", "metric", "k", "paired", "n", "n_clusters", "value_a",
           "value_b", "diff", "ci_low", "ci_high", "p", "test", "verdict", "sentence"]


@dataclass
class Comparison:
    """The outcome of :func:`compare`: a table, one sentence per row, and notes.

    Unpacks as ``table, sentences = compare(a, b)``.
    """

    table: pd.DataFrame
    sentences: list[str]
    notes: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator:
        return iter((self.table, self.sentences))

    def text(self) -> str:
        """Notes, then the sentences grouped by explainer, for the terminal."""
        return "\n".join([*self.notes, "", *self.sentences]).strip() + "\n"


# --------------------------------------------------------------------------- formatting


def _p(p: float) -> str:
    if p is None or math.isnan(p):
        return "p not available"
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}" if p < 0.1 else f"p = {p:.2f}"


def _verdict(diff: float, p: float, direction: str, significant: bool) -> str:
    if not significant or math.isnan(diff) or diff == 0:
        return f"no clear difference ({_p(p)}"
    a_higher = diff > 0
    if direction == "none":
        return f"A is {'higher' if a_higher else 'lower'}, {_p(p)}"
    a_better = a_higher == (direction == "higher")
    return f"{'A' if a_better else 'B'} is better, {_p(p)}"


def sentence(explainer: str, title: str, generator: str, va: float, vb: float, diff: float,
             lo: float, hi: float, p: float, test: str, n: str, direction: str, digits: int,
             alpha: float = ALPHA) -> tuple[str, str]:
    """One plain sentence (and its verdict) for one metric of one explainer."""
    d = digits
    ci = "95 % CI not available" if math.isnan(lo) or math.isnan(hi) else f"95 % CI [{lo:.{d}f}, {hi:.{d}f}]"
    verdict = _verdict(diff, p, direction, not math.isnan(p) and p < alpha)
    where = "across all cases" if generator == ALL_CASES else f"on {generator}"
    tail = f"; {test}, {n})" if verdict.startswith("no clear") else f" ({test}, {n})"
    text = (f"{explainer}: {title} {where} is {va:.{d}f} in A vs {vb:.{d}f} in B "
            f"(difference {diff:+.{d}f}, {ci}); {verdict}{tail}.")
    return text, verdict.split(" (")[0].split(",")[0]


def _row(explainer: str, generator: str, metric: str, k: int | None, paired: bool, n: int,
         n_clusters: int, va: float, vb: float, diff: float, lo: float, hi: float, p: float,
         test: str, n_text: str | None = None) -> dict:
    title, direction, digits = METRICS[metric]
    title = title.format(k=k)
    if paired:
        where = f"n = {n} paired cases" + (f" in {n_clusters} clusters" if n_clusters < n else "")
    else:
        where = f"n = {n_text or n}, different cases in A and B"
    text, verdict = sentence(explainer, title, generator, va, vb, diff, lo, hi, p, test, where,
                             direction, digits)
    return {"explainer": explainer, "generator": generator, "metric": metric, "k": k,
            "paired": paired, "n": n, "n_clusters": n_clusters, "value_a": va, "value_b": vb,
            "diff": diff, "ci_low": lo, "ci_high": hi, "p": p, "test": test, "verdict": verdict,
            "sentence": text}


# --------------------------------------------------------------------------- per-case values


def shared_generators(a: Run, b: Run) -> tuple[list[str], list[str], list[CaseMatch]]:
    """(generators whose runs share cases by content, generators in both that share none, and
    every shared generator's :class:`~explbench.results.pairing.CaseMatch`)."""
    same, differ, matches = [], [], []
    for g in sorted(set(a.cases) & set(b.cases)):
        m = match(a.records, b.records, g, same_run=a.folder == b.folder)
        matches.append(m)
        (same if m.paired else differ).append(g)
    return same, differ, matches


def _ok(rows: pd.DataFrame) -> np.ndarray:
    return (rows["status"] == "ok").to_numpy(dtype=bool)


def flips(rows: pd.DataFrame, k: int = HEADLINE_K) -> np.ndarray:
    """``(n,)`` bool: label flipped at k (False for a failed explanation;
    :func:`explbench.metrics.veracity.flips_at`, the metrics' own definition)."""
    return flips_at(rows, k)


def positive_flips(rows: pd.DataFrame) -> np.ndarray:
    """``(n,)`` bool: flipped with δ on the positive-weight segments (False when failed)."""
    cells = rows["flip_positive"] if "flip_positive" in rows.columns else [False] * len(rows)
    return np.array([bool(o) and bool(c) for o, c in zip(_ok(rows), cells)], dtype=bool)


def signed(rows: pd.DataFrame) -> bool:
    """False when the records mark the explainer's weights as never negative."""
    if "signed" not in rows.columns:
        return True
    return not any(isinstance(v, (bool, np.bool_)) and not v for v in rows["signed"])


def recovery_shares(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per case (k = |S*|, expected share of S* in the top-k); ties by their expectation and 0
    for a failed explanation. Shapes (n,), (n,)."""
    ks, shares = [], []
    weights = rows["weights"] if "weights" in rows.columns else [None] * len(rows)
    for w, t, ok in zip(weights, rows["true_segments"], _ok(rows)):
        truth = segment_set(t)
        pmf = hits(w, truth, len(truth), bool(ok))
        ks.append(len(truth))
        shares.append(float(pmf @ np.arange(pmf.size)) / len(truth))
    return np.asarray(ks, dtype=int), np.asarray(shares, dtype=float)


def _column(rows: pd.DataFrame, name: str) -> np.ndarray:
    if name not in rows.columns:
        return np.full(len(rows), np.nan)
    v = pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype=float)
    return np.where(_ok(rows), v, np.nan)


# --------------------------------------------------------------------------- paired


def _paired_flip(e: str, g: str, metric: str, k: int | None, a: np.ndarray, b: np.ndarray,
                 clusters: np.ndarray) -> dict:
    rng = np.random.default_rng(seed_for("compare", e, g, metric, k, base=0))
    t = paired_flip_test(a, b, clusters, rng)
    return _row(e, g, metric, k, True, a.size, int(np.unique(clusters).size), float(a.mean()),
                float(b.mean()), float(t["diff"]), float(t["ci_low"]), float(t["ci_high"]),
                float(t["p"]), str(t["test"]))


def _paired_mean(e: str, g: str, metric: str, k: int | None, a: np.ndarray, b: np.ndarray,
                 clusters: np.ndarray) -> dict:
    keep = np.isfinite(a) & np.isfinite(b)
    a, b, clusters = a[keep], b[keep], clusters[keep]
    rng = np.random.default_rng(seed_for("compare", e, g, metric, k, base=0))
    nan = math.nan
    boot = paired_cluster_bootstrap(a, b, clusters, rng) if a.size else \
        {"diff": nan, "ci_low": nan, "ci_high": nan, "p": nan}
    va = float(a.mean()) if a.size else nan
    vb = float(b.mean()) if b.size else nan
    diff = float(a.mean() - b.mean()) if a.size else nan
    return _row(e, g, metric, k, True, a.size, int(np.unique(clusters).size), va, vb, diff,
                float(boot["ci_low"]), float(boot["ci_high"]), float(boot["p"]),
                "paired cluster bootstrap")


def paired_rows(explainer: str, generator: str, ra: pd.DataFrame, rb: pd.DataFrame,
                same_run: bool = False) -> list[dict]:
    """Paired comparisons of one explainer on one generator's shared cases (same content hash).

    Parameters
    ----------
    ra, rb : DataFrame
        Records (ok and failed) of the explainer on the generator in runs A and B.
    same_run : bool
        A and B are one run (cases matched by id).
    """
    j = join(ra, rb, same_run)
    if j.empty:
        return []
    A = j[[c for c in j.columns if c.endswith("_a")]].rename(columns=lambda c: c[:-2])
    B = j[[c for c in j.columns if c.endswith("_b")]].rename(columns=lambda c: c[:-2])
    A["case_id"] = B["case_id"] = j["case_id"]
    clusters = A["cluster"].astype(str).to_numpy()
    truth = np.array([has_truth(v) for v in A["true_segments"]]) if "true_segments" in A else \
        np.zeros(len(A), dtype=bool)
    out = []
    adv = ~truth
    if adv.any():
        out.append(_paired_flip(explainer, generator, "flip-rate", HEADLINE_K, flips(A[adv]),
                                flips(B[adv]), clusters[adv]))
        if signed(A[adv]) and signed(B[adv]):
            out.append(_paired_flip(explainer, generator, "positive-flip-rate", None,
                                    positive_flips(A[adv]), positive_flips(B[adv]), clusters[adv]))
    if truth.any():
        la, lb_ = A[truth], B[truth]
        cl = clusters[truth]
        ks, sa = recovery_shares(la)
        _, sb = recovery_shares(lb_)
        for k in sorted(set(ks)):
            sel = ks == k
            out.append(_paired_mean(explainer, generator, "recovery", int(k), sa[sel], sb[sel], cl[sel]))
        one = ks == 1
        if one.any():
            for metric, col in (("fidelity", "score"), ("agnostic-fidelity", "agnostic_score")):
                fa, fb = _column(la[one], col), _column(lb_[one], col)
                if np.isfinite(fa).any() and np.isfinite(fb).any():
                    out.append(_paired_mean(explainer, generator, metric, 1, fa, fb, cl[one]))
    return out


def paired_queries(explainer: str, ra: pd.DataFrame, rb: pd.DataFrame, same_run: bool = False) -> list[dict]:
    """Queries per successful explanation over every shared case, paired."""
    j = join(ra, rb, same_run)
    if j.empty:
        return []
    qa = np.where(j["status_a"] == "ok", pd.to_numeric(j["queries_a"], errors="coerce"), np.nan) \
        if "queries_a" in j else np.full(len(j), np.nan)
    qb = np.where(j["status_b"] == "ok", pd.to_numeric(j["queries_b"], errors="coerce"), np.nan) \
        if "queries_b" in j else np.full(len(j), np.nan)
    return [_paired_mean(explainer, ALL_CASES, "queries", None, qa.astype(float), qb.astype(float),
                         j["cluster_a"].astype(str).to_numpy())]


# --------------------------------------------------------------------------- unpaired


def _agg(run: Run, e: str, g: str, metric: str, k: int | None) -> pd.Series | None:
    m = run.metrics
    sel = m[(m["explainer"] == e) & (m["generator"] == g) & (m["metric"] == metric)
            & (m["direction"] == "all")]
    sel = sel[sel["k"].isna()] if k is None else sel[sel["k"] == k]
    return None if sel.empty or pd.isna(sel.iloc[0]["value"]) else sel.iloc[0]


def _n_clusters_of(row: pd.Series) -> int:
    v = row.get("n_clusters") if hasattr(row, "get") else None
    return int(v) if v is not None and pd.notna(v) else int(row["n"])


def unpaired_rows(explainer: str, generator: str, a: Run, b: Run) -> list[dict]:
    """Unpaired comparisons of one explainer on one generator whose cases differ.

    Flips are tested from the records (:func:`explbench.results.ranking.unpaired_flip_test`); recovery
    and the fidelity AUC from the two runs' aggregate values: the standard error of each is
    taken as (ci_high - ci_low) / (2 · 1.96), the difference gets ``diff ± 1.96 · sqrt(se_a² +
    se_b²)`` and a two-sided normal p-value.
    """
    out = []
    ra = a.records[(a.records["explainer"] == explainer) & (a.records["generator"] == generator)]
    rb = b.records[(b.records["explainer"] == explainer) & (b.records["generator"] == generator)]
    adv_a = ra[[not has_truth(v) for v in ra.get("true_segments", [None] * len(ra))]]
    adv_b = rb[[not has_truth(v) for v in rb.get("true_segments", [None] * len(rb))]]
    if len(adv_a) and len(adv_b):
        for metric, k, fn in (("flip-rate", HEADLINE_K, flips), ("positive-flip-rate", None, positive_flips)):
            if metric == "positive-flip-rate" and not (signed(adv_a) and signed(adv_b)):
                continue
            fa, fb = fn(adv_a), fn(adv_b)
            ca, cb = adv_a["cluster"].astype(str).to_numpy(), adv_b["cluster"].astype(str).to_numpy()
            t = unpaired_flip_test(fa, ca, fb, cb)
            nca, ncb = int(np.unique(ca).size), int(np.unique(cb).size)
            out.append(_row(explainer, generator, metric, k, False, min(fa.size, fb.size),
                            min(nca, ncb), float(fa.mean()), float(fb.mean()), float(t["diff"]),
                            float(t["ci_low"]), float(t["ci_high"]), float(t["p"]), str(t["test"]),
                            n_text=f"{fa.size} vs {fb.size}"))
    for metric, k in (("recovery", 1), ("recovery", 3), ("recovery", 5), ("fidelity-auc", 1)):
        xa, xb = _agg(a, explainer, generator, metric, k), _agg(b, explainer, generator, metric, k)
        if xa is None or xb is None:
            continue
        out.append(_unpaired(explainer, generator, metric, k,
                             (xa["value"], xa["ci_low"], xa["ci_high"], int(xa["n"]), _n_clusters_of(xa)),
                             (xb["value"], xb["ci_low"], xb["ci_high"], int(xb["n"]), _n_clusters_of(xb))))
    return out


def _unpaired(explainer: str, generator: str, metric: str, k: int | None,
              a: tuple[float, float, float, int, int], b: tuple[float, float, float, int, int]) -> dict:
    """One unpaired row from (value, ci_low, ci_high, n, n_clusters) of each run."""
    ses = [((hi - lo) / (2 * 1.96)) if pd.notna(lo) and pd.notna(hi) else math.nan
           for _, lo, hi, _, _ in (a, b)]
    se = math.hypot(*ses)
    diff = float(a[0] - b[0])
    if se > 0:
        p = float(2 * norm.sf(abs(diff) / se))
    else:
        p = 1.0 if diff == 0 else math.nan
    lo, hi = (diff - 1.96 * se, diff + 1.96 * se) if se > 0 else (math.nan, math.nan)
    return _row(explainer, generator, metric, k, False, int(min(a[3], b[3])), int(min(a[4], b[4])),
                float(a[0]), float(b[0]), diff, lo, hi, p, "unpaired, normal approximation",
                n_text=f"{int(a[3])} vs {int(b[3])}")


def unpaired_queries(explainer: str, a: Run, b: Run) -> list[dict]:
    """Queries per explanation over every case of each run, unpaired."""
    vals = []
    for run in (a, b):
        q = run.costs(explainer, "queries")
        if q.size == 0:
            return []
        rng = np.random.default_rng(seed_for("compare", explainer, "queries", run.run_id, base=0))
        lo, hi = bootstrap_ci(q, rng)
        vals.append((float(q.mean()), lo, hi, int(q.size), int(q.size)))
    return [_unpaired(explainer, ALL_CASES, "queries", None, vals[0], vals[1])]


# --------------------------------------------------------------------------- entry point


def compare(run_a: str | Path | Run, run_b: str | Path | Run) -> Comparison:
    """Compare every explainer the two runs share, metric by metric.

    Parameters
    ----------
    run_a, run_b : run folder or loaded :class:`explbench.store.runs.Run`
        "A" and "B" in the sentences.

    Returns
    -------
    Comparison
        ``table`` (columns :data:`COLUMNS`), ``sentences`` (one per row) and ``notes`` (which
        run is A and B, whether cases are shared, protocol differences).

    Raises
    ------
    ValueError
        When the runs share no explainer or no generator.
    """
    a = run_a if isinstance(run_a, Run) else load_run(run_a)
    b = run_b if isinstance(run_b, Run) else load_run(run_b)
    explainers = sorted(set(a.explainers) & set(b.explainers))
    if not explainers:
        raise ValueError(f"runs {a.run_id} and {b.run_id} share no explainer "
                         f"(A: {', '.join(a.explainers)}; B: {', '.join(b.explainers)})")
    same, differ, matches = shared_generators(a, b)
    if not same and not differ:
        raise ValueError(f"runs {a.run_id} and {b.run_id} share no generator")
    one = a.folder == b.folder
    notes = [f"A = {a.run_id} ({a.folder})", f"B = {b.run_id} ({b.folder})"]
    if same:
        notes.append(f"paired on the cases with the same content in: {', '.join(same)}")
    if differ:
        notes.append(f"no case has the same content in both runs for: {', '.join(differ)} "
                     f"(e.g. another seed); those are compared UNPAIRED, a weaker comparison")
    notes += [m.reason() for m in matches if m.reason()]
    diffs = config_differences(a, b)
    if diffs:
        notes.append("the runs' protocol configurations differ: " + "; ".join(diffs))
    only = sorted(set(a.explainers) ^ set(b.explainers))
    if only:
        notes.append(f"in one run only (not compared): {', '.join(only)}")
    rows: list[dict] = []
    for e in explainers:
        ra_e = a.records[a.records["explainer"] == e]
        rb_e = b.records[b.records["explainer"] == e]
        for g in same:
            rows.extend(paired_rows(e, g, ra_e[ra_e["generator"] == g], rb_e[rb_e["generator"] == g], one))
        for g in differ:
            rows.extend(unpaired_rows(e, g, a, b))
        if same:
            rows.extend(paired_queries(e, ra_e[ra_e["generator"].isin(same)],
                                       rb_e[rb_e["generator"].isin(same)], one))
        else:
            rows.extend(unpaired_queries(e, a, b))
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["k"] = table["k"].astype("Int64")
    return Comparison(table, list(table["sentence"]), notes)
