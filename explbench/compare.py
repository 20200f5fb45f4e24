"""Compare two runs explainer by explainer, paired on shared cases where possible.

Cases are shared only when both runs generated them from the same content-addressed cache key
(``cases.json``): the same ``case_id`` in runs with different seeds names a different case.
On shared cases the comparison is paired — McNemar's test for the flip booleans (FR(3),
positive-weight flip) and a paired bootstrap for recovery fractions, fidelity scores and
queries. Generators without shared cases are compared unpaired from the two runs' aggregate
values and bootstrap intervals (normal approximation), and every such sentence says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
from scipy.stats import norm

from explbench.leaderboard import HEADLINE_K, Run, config_differences, load_run
from explbench.metrics.base import has_truth
from explbench.metrics.fidelity import fidelity_table
from explbench.metrics.localisation import recovered
from explbench.stats import bootstrap_ci, mcnemar, paired_bootstrap, seed_for
from explbench.store import RunStore

ALPHA = 0.05
#: generator label of comparisons pooled over every generator (queries)
ALL_CASES = "all"
#: metric key → (title, direction, decimals)
METRICS = {
    "flip-rate": (f"FR({HEADLINE_K})", "higher", 2),
    "positive-flip-rate": ("positive-weight flip rate", "higher", 2),
    "recovery": ("recovery@{k}", "higher", 2),
    "fidelity": ("mean fidelity of k = 1 explanations", "higher", 2),
    "fidelity-auc": ("fidelity-vs-correctness AUC", "higher", 2),
    "queries": ("queries per explanation", "lower", 1),
}
COLUMNS = ["explainer", "generator", "metric", "k", "paired", "n", "value_a", "value_b", "diff",
           "ci_low", "ci_high", "p", "test", "verdict", "sentence"]


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
    ci = "95 % CI not available" if math.isnan(lo) else f"95 % CI [{lo:.{d}f}, {hi:.{d}f}]"
    verdict = _verdict(diff, p, direction, not math.isnan(p) and p < alpha)
    where = "across all cases" if generator == ALL_CASES else f"on {generator}"
    tail = f"; {test}, {n})" if verdict.startswith("no clear") else f" ({test}, {n})"
    text = (f"{explainer}: {title} {where} is {va:.{d}f} in A vs {vb:.{d}f} in B "
            f"(difference {diff:+.{d}f}, {ci}); {verdict}{tail}.")
    return text, verdict.split(" (")[0].split(",")[0]


# --------------------------------------------------------------------------- paired


def _records(run: Run) -> pd.DataFrame:
    recs = pd.DataFrame(RunStore(run.folder).records())
    if recs.empty:
        return recs
    return recs[recs["status"] == "ok"]


def shared_generators(a: Run, b: Run) -> tuple[list[str], list[str]]:
    """(generators whose cases are the same in both runs, generators in both whose cases differ)."""
    same, differ = [], []
    for g in sorted(set(a.cases) & set(b.cases)):
        ka, kb = a.cases[g].get("cache_key"), b.cases[g].get("cache_key")
        (same if ka is not None and ka == kb else differ).append(g)
    return same, differ


def _row(explainer: str, generator: str, metric: str, k: int | None, paired: bool, n: int,
         va: float, vb: float, diff: float, lo: float, hi: float, p: float, test: str,
         n_text: str | None = None) -> dict:
    title, direction, digits = METRICS[metric]
    title = title.format(k=k)
    where = f"n = {n} paired cases" if paired else f"n = {n_text or n}, different cases in A and B"
    text, verdict = sentence(explainer, title, generator, va, vb, diff, lo, hi, p, test, where,
                             direction, digits)
    return {"explainer": explainer, "generator": generator, "metric": metric, "k": k,
            "paired": paired, "n": n, "value_a": va, "value_b": vb, "diff": diff, "ci_low": lo,
            "ci_high": hi, "p": p, "test": test, "verdict": verdict, "sentence": text}


def _paired_bool(e: str, g: str, metric: str, k: int | None, a: np.ndarray, b: np.ndarray) -> dict:
    rng = np.random.default_rng(seed_for("compare", e, g, metric, k, base=0))
    boot = paired_bootstrap(a.astype(float), b.astype(float), rng)
    test = mcnemar(a, b)
    return _row(e, g, metric, k, True, a.size, float(a.mean()), float(b.mean()), boot["diff"],
                boot["ci_low"], boot["ci_high"], test["p"], "McNemar")


def _paired_mean(e: str, g: str, metric: str, k: int | None, a: np.ndarray, b: np.ndarray) -> dict:
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    rng = np.random.default_rng(seed_for("compare", e, g, metric, k, base=0))
    boot = paired_bootstrap(a, b, rng)
    va = float(a.mean()) if a.size else math.nan
    vb = float(b.mean()) if b.size else math.nan
    return _row(e, g, metric, k, True, a.size, va, vb, boot["diff"], boot["ci_low"],
                boot["ci_high"], boot["p"], "paired bootstrap")


def _flip3(cells: pd.Series) -> np.ndarray:
    return np.array([bool(v[HEADLINE_K - 1]) if len(v) >= HEADLINE_K else False for v in cells])


def paired_rows(explainer: str, generator: str, ra: pd.DataFrame, rb: pd.DataFrame) -> list[dict]:
    """Paired comparisons of one explainer on one generator's shared cases.

    Parameters
    ----------
    ra, rb : DataFrame
        Successful records of the explainer on the generator in runs A and B.
    """
    j = ra.merge(rb, on="case_id", suffixes=("_a", "_b"))
    if j.empty:
        return []
    truth = np.array([has_truth(v) for v in j["true_segments_a"]])
    out = []
    adv = j[~truth]
    if not adv.empty:
        out.append(_paired_bool(explainer, generator, "flip-rate", HEADLINE_K,
                                _flip3(adv["flip_at_k_a"]), _flip3(adv["flip_at_k_b"])))
        out.append(_paired_bool(explainer, generator, "positive-flip-rate", None,
                                adv["flip_positive_a"].to_numpy(bool),
                                adv["flip_positive_b"].to_numpy(bool)))
    loc = j[truth]
    if not loc.empty:
        hits_a = np.array([recovered(w, t) for w, t in zip(loc["weights_a"], loc["true_segments_a"])])
        hits_b = np.array([recovered(w, t) for w, t in zip(loc["weights_b"], loc["true_segments_b"])])
        for k in sorted(set(hits_a[:, 1])):
            sel = hits_a[:, 1] == k
            out.append(_paired_mean(explainer, generator, "recovery", int(k),
                                    hits_a[sel, 0] / k, hits_b[sel, 0] / k))
        cols = ["status", "true_segments", "weights", "score", "agnostic_score"]
        fa = fidelity_table(loc[[f"{c}_a" for c in cols]].set_axis(cols, axis=1))
        fb = fidelity_table(loc[[f"{c}_b" for c in cols]].set_axis(cols, axis=1))
        if not fa.empty:
            out.append(_paired_mean(explainer, generator, "fidelity", 1,
                                    fa["fidelity"].to_numpy(float), fb["fidelity"].to_numpy(float)))
    return out


def paired_queries(explainer: str, ra: pd.DataFrame, rb: pd.DataFrame) -> list[dict]:
    """Queries per explanation over every shared case (all paired generators), paired."""
    j = ra.merge(rb, on="case_id", suffixes=("_a", "_b"))
    if j.empty:
        return []
    return [_paired_mean(explainer, ALL_CASES, "queries", None,
                         pd.to_numeric(j["queries_a"]).to_numpy(float),
                         pd.to_numeric(j["queries_b"]).to_numpy(float))]


# --------------------------------------------------------------------------- unpaired


def _agg(run: Run, e: str, g: str, metric: str, k: int | None) -> pd.Series | None:
    m = run.metrics
    sel = m[(m["explainer"] == e) & (m["generator"] == g) & (m["metric"] == metric)
            & (m["direction"] == "all")]
    sel = sel[sel["k"].isna()] if k is None else sel[sel["k"] == k]
    return None if sel.empty or pd.isna(sel.iloc[0]["value"]) else sel.iloc[0]


def unpaired_rows(explainer: str, generator: str, a: Run, b: Run) -> list[dict]:
    """Unpaired comparisons from the runs' aggregate values and 95 % intervals.

    The standard error of each run is taken as (ci_high - ci_low) / (2 · 1.96); the difference
    gets ``diff ± 1.96 · sqrt(se_a² + se_b²)`` and a two-sided normal p-value.
    """
    out = []
    wanted = [("flip-rate", HEADLINE_K), ("positive-flip-rate", None), ("recovery", 1),
              ("recovery", 3), ("recovery", 5), ("fidelity-auc", 1)]
    for metric, k in wanted:
        ra, rb = _agg(a, explainer, generator, metric, k), _agg(b, explainer, generator, metric, k)
        if ra is None or rb is None:
            continue
        out.append(_unpaired(explainer, generator, metric, k, (ra.value, ra.ci_low, ra.ci_high, ra.n),
                             (rb.value, rb.ci_low, rb.ci_high, rb.n)))
    return out


def _unpaired(explainer: str, generator: str, metric: str, k: int | None,
              a: tuple[float, float, float, int], b: tuple[float, float, float, int]) -> dict:
    """One unpaired row from (value, ci_low, ci_high, n) of each run."""
    se = math.hypot(*(((hi - lo) / (2 * 1.96)) if pd.notna(lo) else math.nan for _, lo, hi, _ in (a, b)))
    diff = float(a[0] - b[0])
    if se > 0:
        p = float(2 * norm.sf(abs(diff) / se))
    else:
        p = 1.0 if diff == 0 else (0.0 if not math.isnan(se) else math.nan)
    lo, hi = (diff - 1.96 * se, diff + 1.96 * se) if not math.isnan(se) else (math.nan, math.nan)
    return _row(explainer, generator, metric, k, False, int(min(a[3], b[3])), float(a[0]),
                float(b[0]), diff, lo, hi, p, "unpaired, normal approximation",
                n_text=f"{int(a[3])} vs {int(b[3])}")


def unpaired_queries(explainer: str, a: Run, b: Run) -> list[dict]:
    """Queries per explanation over every case of each run, unpaired."""
    vals = []
    for run in (a, b):
        q = run.queries.get(explainer)
        if q is None or q.size == 0:
            return []
        rng = np.random.default_rng(seed_for("compare", explainer, "queries", run.run_id, base=0))
        lo, hi = bootstrap_ci(q, rng)
        vals.append((float(q.mean()), lo, hi, int(q.size)))
    return [_unpaired(explainer, ALL_CASES, "queries", None, vals[0], vals[1])]


# --------------------------------------------------------------------------- entry point


def compare(run_a: str | Path | Run, run_b: str | Path | Run) -> Comparison:
    """Compare every explainer the two runs share, metric by metric.

    Parameters
    ----------
    run_a, run_b : run folder or loaded :class:`Run`
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
    same, differ = shared_generators(a, b)
    if not same and not differ:
        raise ValueError(f"runs {a.run_id} and {b.run_id} share no generator")
    notes = [f"A = {a.run_id} ({a.folder})", f"B = {b.run_id} ({b.folder})"]
    if same:
        notes.append(f"paired on the shared cases of: {', '.join(same)} (same case cache keys)")
    if differ:
        notes.append(f"the cases differ (different case cache keys, e.g. another seed) for: "
                     f"{', '.join(differ)}; those are compared UNPAIRED from each run's aggregate "
                     f"values and intervals, a weaker comparison")
    diffs = config_differences(a, b)
    if diffs:
        notes.append("the runs' protocol configurations differ: " + "; ".join(diffs))
    only = sorted(set(a.explainers) ^ set(b.explainers))
    if only:
        notes.append(f"in one run only (not compared): {', '.join(only)}")
    rows: list[dict] = []
    ra_all = _records(a) if same else pd.DataFrame()
    rb_all = _records(b) if same else pd.DataFrame()
    for e in explainers:
        for g in same:
            ra = ra_all[(ra_all["explainer"] == e) & (ra_all["generator"] == g)]
            rb = rb_all[(rb_all["explainer"] == e) & (rb_all["generator"] == g)]
            rows.extend(paired_rows(e, g, ra, rb))
        for g in differ:
            rows.extend(unpaired_rows(e, g, a, b))
        if same:
            rows.extend(paired_queries(e, ra_all[(ra_all["explainer"] == e) & ra_all["generator"].isin(same)],
                                       rb_all[(rb_all["explainer"] == e) & rb_all["generator"].isin(same)]))
        else:
            rows.extend(unpaired_queries(e, a, b))
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["k"] = table["k"].astype("Int64")
    return Comparison(table, list(table["sentence"]), notes)
