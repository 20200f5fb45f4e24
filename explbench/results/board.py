"""Leaderboards: finished runs of one protocol configuration → one board, ranked by paired tests.

Rules (also printed in every board):

- Runs are grouped by their protocol configuration (:mod:`explbench.results.compat`); runs whose
  configuration differs are refused with the differing keys, never merged.
- When several runs hold the same explainer, the **newest** run (``finished_at`` in its
  provenance) supplies all of that explainer's numbers.
- Ranks come from paired tests of the headline, FR(3) per attack generator pooled over
  directions (:mod:`explbench.results.ranking`): McNemar or the paired cluster bootstrap,
  Holm-adjusted over all pairs; rank = 1 + the number of explainers significantly better. The
  ``rank`` column is that of the first attack generator of the suite; every other attack
  generator has its own ``rank G`` column. Oracles are shown, never ranked.
- Values are point estimates with the 95 % intervals of metrics.csv (Wilson for rates, cluster
  bootstrap for means); "n too small" where the run had too few clusters for an honest interval.

This module renders; :mod:`explbench.store.runs` loads runs, :mod:`explbench.results.compat` decides which
runs are comparable and :mod:`explbench.results.ranking` ranks.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from explbench.results.compat import IncompatibleRuns, check_compatible, protocol_config
from explbench.results.ranking import ALPHA, HEADLINE_K, Ranking, rank_runs
from explbench.store.runs import ALL, NotARun, Run, attack_generators, localised_generators, newest_sources
from explbench.stats.bootstrap import bootstrap_ci

#: arrows shown after a column title, by metric direction
from explbench.core.seeding import seed_for
from explbench.results.pairing import match
from explbench.results.power_text import power_text
ARROWS = {"higher": "↑", "lower": "↓", "none": ""}

__all__ = ["ARROWS", "Board", "IncompatibleRuns", "NotARun", "build", "fmt", "make_board"]


# --------------------------------------------------------------------------- formatting


def fmt(value: float | None, lo: float | None = None, hi: float | None = None, digits: int = 2,
        interval: bool = True) -> str:
    """``0.52 [0.31, 0.70]``; ``0.52 (n too small)`` without an interval; "–" for no value.

    Parameters
    ----------
    value, lo, hi : float
        Point estimate and 95 % interval; NaN bounds mean the run had too few clusters.
    digits : int
    interval : bool
        False for quantities shown without an interval (counts, costs).

    Notes
    -----
    A zero-width interval is never printed: an interval whose bounds agree at the printed
    precision is shown as the bare value followed by "(no interval)" (costs: the bare value,
    since a constant cost has no uncertainty).
    """
    if value is None or not np.isfinite(float(value)):
        return "–"
    s = f"{float(value):.{digits}f}"
    if not interval:
        return s
    if lo is None or hi is None or not (np.isfinite(float(lo)) and np.isfinite(float(hi))):
        return f"{s} (n too small)"
    a, b = f"{float(lo):.{digits}f}", f"{float(hi):.{digits}f}"
    if a == b:
        return f"{s} (no interval)"
    return f"{s} [{a}, {b}]"


def _cost_fmt(values: np.ndarray, digits: int, key: tuple) -> tuple[str, float, float, float]:
    """A cost column: mean with a percentile bootstrap interval; the bare mean when constant."""
    if values.size == 0:
        return "–", math.nan, math.nan, math.nan
    mean = float(values.mean())
    if values.size < 2 or np.ptp(values) == 0:
        return fmt(mean, digits=digits, interval=False), mean, math.nan, math.nan
    rng = np.random.default_rng(seed_for("leaderboard", *key, base=0))
    lo, hi = bootstrap_ci(values, rng, n_boot=1000)
    text = fmt(mean, lo, hi, digits=digits)
    if not text.endswith("]"):  # bounds equal at the printed precision: show the bare mean
        text = fmt(mean, digits=digits, interval=False)
    return text, mean, lo, hi


def _arrows() -> dict[str, str]:
    """Column-title prefix → arrow, from the metrics' declared directions."""
    from explbench.metrics import metric_info

    info = metric_info()
    d = dict(zip(info["name"], info["direction"]))
    return {"FR(": ARROWS[d.get("flip-rate", "higher")],
            "pos-flip": ARROWS[d.get("positive-flip-rate", "higher")],
            "rec@": ARROWS[d.get("recovery", "higher")],
            "fid-AUC": ARROWS[d.get("fidelity-auc", "higher")],
            "agn-fid-AUC": ARROWS[d.get("agnostic-fidelity-auc", "higher")],
            "failed": ARROWS[d.get("failure-rate", "lower")],
            "queries": ARROWS[d.get("queries", "lower")],
            "s/expl": ARROWS[d.get("seconds", "lower")]}


def _with_arrow(title: str, arrows: dict[str, str]) -> str:
    for prefix in sorted(arrows, key=len, reverse=True):
        if title.startswith(prefix) and arrows[prefix]:
            return f"{title} {arrows[prefix]}"
    return title


def metric_row(m: pd.DataFrame, explainer: str, generator: str, metric: str, k: int | None,
               direction: str = ALL) -> pd.Series | None:
    """The metrics-table row of one (explainer, generator, direction, metric, k), or None."""
    sel = m[(m["explainer"] == explainer) & (m["generator"] == generator) & (m["metric"] == metric)
            & (m["direction"] == direction)]
    sel = sel[sel["k"].isna()] if k is None else sel[sel["k"] == k]
    return None if sel.empty else sel.iloc[0]


def _cell(m: pd.DataFrame, explainer: str, generator: str, metric: str, k: int | None,
          direction: str = ALL) -> str:
    r = metric_row(m, explainer, generator, metric, k, direction)
    return "–" if r is None else fmt(r["value"], r["ci_low"], r["ci_high"])


# --------------------------------------------------------------------------- the board


@dataclass
class Board:
    """A leaderboard, computed once and rendered to Markdown, CSV or HTML.

    Attributes
    ----------
    runs : list of Run
        The compatible runs it is built from (oldest first).
    reference : Run
        The run whose protocol configuration the board shows.
    sources : dict
        Explainer → the run that supplies its numbers.
    generators : list of str
        Attack generators, headline first.
    rankings : dict
        Attack generator → :class:`explbench.results.ranking.Ranking`.
    table : DataFrame
        One row per explainer, formatted strings.
    numeric : DataFrame
        The board's numbers in tidy form (what ``<stem>.csv`` holds).
    """

    runs: list[Run]
    reference: Run
    sources: dict[str, Run]
    generators: list[str]
    rankings: dict[str, Ranking]
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    numeric: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def task(self) -> str:
        return self.reference.task

    @property
    def headline(self) -> Ranking | None:
        return self.rankings[self.generators[0]] if self.generators else None

    def pairs(self) -> pd.DataFrame:
        """Every pairwise test of every attack generator (what ``<stem>-pairs.csv`` holds)."""
        frames = [r.table() for r in self.rankings.values()]
        frames = [f for f in frames if not f.empty]
        if not frames:
            return Ranking("", {}).table()
        return pd.concat(frames, ignore_index=True)

    def label(self, explainer: str) -> str:
        h = self.headline
        if h is None:
            return "oracle" if explainer in self._oracles() else "–"
        return h.label(explainer)

    def _oracles(self) -> set[str]:
        return {e for e, r in self.sources.items() if e in r.oracles}

    def stem(self) -> str:
        """``<task>`` for the default suite, ``<task>-<suite>`` for any other."""
        suite = str(self.reference.suite.get("name", "default"))
        stem = self.task if suite == "default" else f"{self.task}-{suite}"
        return re.sub(r"[^A-Za-z0-9._-]+", "_", stem)


def _better_text(ranking: Ranking, e: str) -> str:
    if ranking.rank(e) is None:
        return "–"
    beaten = ranking.better_than(e)
    unpaired = {b for a, b in ranking.unpaired_pairs() if a == e} | \
               {a for a, b in ranking.unpaired_pairs() if b == e}
    if not beaten:
        return "none"
    return ", ".join(f"{b} (unpaired)" if b in unpaired else b for b in beaten)


def _table(board: Board) -> pd.DataFrame:
    runs0 = board.reference
    directions = sorted({str(d) for r in board.runs for d in r.metrics["direction"].dropna().unique()
                         if d != ALL})
    localised = localised_generators(runs0)
    every = pd.concat([r.metrics for r in board.runs], ignore_index=True)
    rec = every[(every["metric"] == "recovery") & (every["direction"] == ALL)]
    rec_ks = {g: sorted(int(k) for k in rec.loc[rec["generator"] == g, "k"].dropna().unique()
                        if int(k) in (1, 3, 5)) for g in localised}
    rows = []
    for e in sorted(board.sources):
        run = board.sources[e]
        m = run.metrics
        out: dict[str, str] = {"rank": board.label(e), "explainer": e}
        h = board.headline
        out["better than"] = _better_text(h, e) if h else "–"
        out["beats random"] = h.beats_random(e) if h else "–"
        for i, g in enumerate(board.generators):
            if i > 0:
                out[f"rank {g}"] = board.rankings[g].label(e)
            out[f"FR({HEADLINE_K}) {g}"] = _cell(m, e, g, "flip-rate", HEADLINE_K)
            for d in directions:
                out[f"FR({HEADLINE_K}) {g} [{d}]"] = _cell(m, e, g, "flip-rate", HEADLINE_K, d)
            pos = _cell(m, e, g, "positive-flip-rate", None)
            ref = metric_row(m, e, g, "positive-flip-rate-norm", None)
            if pos != "–" and ref is not None:
                pos += f" (norm {fmt(ref['value'], interval=False)})"
            out[f"pos-flip {g}"] = pos
        for g in localised:
            for k in rec_ks[g]:
                out[f"rec@{k} {g}"] = _cell(m, e, g, "recovery", k)
            for title, metric in (("fid-AUC", "fidelity-auc"), ("agn-fid-AUC", "agnostic-fidelity-auc")):
                r = metric_row(m, e, g, metric, 1)
                r = r if r is not None else metric_row(m, e, g, metric, None)
                out[f"{title} {g}"] = "–" if r is None else fmt(r["value"], r["ci_low"], r["ci_high"])
        recs = run.records[run.records["explainer"] == e] if not run.records.empty else run.records
        failed = int((recs["status"] != "ok").sum()) if not recs.empty else 0
        out["failed"] = f"{failed / len(recs):.2f} ({failed}/{len(recs)})" if len(recs) else "–"
        out["queries"] = _cost_fmt(run.costs(e, "queries"), 0, ("queries", e))[0]
        out["s/expl"] = _cost_fmt(run.costs(e, "seconds"), 3, ("seconds", e))[0]
        o = h.outcomes.get(e) if h else None
        out["n"] = str(o.n) if o is not None else "–"
        out["n_clusters"] = str(o.n_clusters) if o is not None else "–"
        out["run"] = run.run_id
        rows.append(out)
    table = pd.DataFrame(rows).fillna("–")
    if table.empty:
        return table

    def order(i: int) -> tuple:
        e = table.loc[i, "explainer"]
        lab = table.loc[i, "rank"]
        h = board.headline
        rate = h.outcomes[e].rate if h and e in h.outcomes else math.nan
        rate = -rate if np.isfinite(rate) else 0.0
        if lab == "oracle":
            return (2, 0, 0.0, e)
        if lab == "–":
            return (1, 0, 0.0, e)
        return (0, int(lab.lstrip("=")), rate, e)

    table = table.loc[sorted(table.index, key=order)].reset_index(drop=True)
    arrows = _arrows()
    return table.rename(columns={c: _with_arrow(c, arrows) for c in table.columns})


def _numeric(board: Board) -> pd.DataFrame:
    """The board's metrics, tidy, from each explainer's source run, plus costs and failures."""
    parts = []
    localised = set(localised_generators(board.reference))
    for e, run in board.sources.items():
        m = run.metrics[run.metrics["explainer"] == e]
        headline_metric = (m["metric"] == "flip-rate") & (m["k"] == HEADLINE_K) \
            & m["generator"].isin(board.generators)
        pooled = m["direction"] == ALL
        other = pooled & (
            (m["metric"].isin(["positive-flip-rate", "positive-flip-rate-norm"])
             & m["generator"].isin(board.generators))
            | (m["metric"].isin(["recovery", "fidelity-auc", "agnostic-fidelity-auc"])
               & m["generator"].isin(localised))
            | (m["metric"] == "failure-rate"))
        sel = m[headline_metric | other].copy()
        sel["run_id"] = run.run_id
        parts.append(sel)
        for what in ("queries", "seconds"):
            v = run.costs(e, what)
            if v.size:
                _, mean, lo, hi = _cost_fmt(v, 3, (what, e))
                parts.append(pd.DataFrame([{"generator": ALL, "direction": ALL, "explainer": e,
                                            "metric": what, "k": pd.NA, "value": mean,
                                            "ci_low": lo, "ci_high": hi, "n": int(v.size),
                                            "run_id": run.run_id}]))
    cols = ["rank", "explainer", "oracle", "run_id", "generator", "direction", "metric", "k",
            "value", "ci_low", "ci_high", "n", "n_clusters"]
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True)
    if "n_clusters" not in out.columns:
        out["n_clusters"] = pd.NA
    out["rank"] = out["explainer"].map(board.label)
    out["oracle"] = out["explainer"].map(lambda e: e in board.sources[e].oracles).astype(bool)
    out["k"] = out["k"].astype("Int64")
    out["n_clusters"] = out["n_clusters"].astype("Int64")
    return out[cols].sort_values(["explainer", "generator", "metric", "direction", "k"],
                                 kind="mergesort").reset_index(drop=True)


def make_board(runs: list[Run], reference: Run | None = None) -> Board:
    """Compute the board of compatible runs.

    Raises
    ------
    IncompatibleRuns
        When the runs' protocol configurations differ.
    ValueError
        When ``runs`` is empty.
    """
    if not runs:
        raise ValueError("a leaderboard needs at least one finished run")
    check_compatible(runs, reference)
    ref = reference or runs[0]
    sources = newest_sources(runs)
    gens = attack_generators(ref)
    for r in runs:
        gens += [g for g in attack_generators(r) if g not in gens]
    board = Board(runs=list(runs), reference=ref, sources=sources, generators=gens,
                  rankings=rank_runs(runs, gens))
    board.table = _table(board)
    board.numeric = _numeric(board)
    return board


def build(runs: list[Run], reference: Run | None = None) -> pd.DataFrame:
    """The formatted board table (one row per explainer); see :func:`make_board`."""
    return make_board(runs, reference).table


# --------------------------------------------------------------------------- header


def rule_text(board: Board) -> str:
    """How ranks and values are made (printed under every board)."""
    g = board.generators[0] if board.generators else "(no attack generator)"
    others = ", ".join(board.generators[1:])
    return (f"Rank by FR({HEADLINE_K}) on {g}, both directions pooled, from paired tests: every pair "
            f"of explainers is compared on the cases both explained (exact McNemar test when every "
            f"case is its own cluster, else a paired cluster bootstrap; a failed explanation counts "
            f"as no flip), the p-values of all pairs are Holm-adjusted, and an explainer's rank is "
            f"1 + the number of explainers significantly better (adjusted p < {ALPHA}); shared "
            f"ranks are marked =r. 'better than' lists the explainers it beats that way. "
            f"'beats random' asks one question of every explainer, so it is its own family: each "
            f"explainer against random, on the same paired test, Holm-adjusted over those tests "
            f"only (adjusted p < {ALPHA})."
            + (f" Each further attack generator ({others}) has its own 'rank G' column, made the "
               f"same way." if others else "")
            + " Oracles (they see the perturbation) are shown, never ranked and never counted. "
            "Values are point estimate [95 % interval] from metrics.csv: Wilson for rates, a "
            "cluster bootstrap for means and AUCs; 'n too small' where there were too few clusters "
            "for an honest interval; '–' where the value does not exist (e.g. no such cases, or "
            "positive-weight flips of an explainer whose weights are never negative). ↑ higher is "
            "better, ↓ lower is better. 'failed' = failed explanations / all of the explainer's "
            "explanations; 'n' / 'n_clusters' = cases / clusters (songs) behind the headline.")


def unpaired_text(board: Board) -> str | None:
    """A sentence naming the explainers compared unpaired (no case of the same content), and
    why, if any."""
    pairs = sorted({p for r in board.rankings.values() for p in r.unpaired_pairs()})
    if not pairs:
        return None
    named = "; ".join(f"{a} vs {b}" for a, b in pairs)
    reasons = []
    runs = sorted({id(r): r for r in board.sources.values()}.values(), key=lambda r: str(r.folder))
    for i, a in enumerate(runs):
        for b in runs[i + 1:]:
            for g in sorted(set(a.cases) & set(b.cases)):
                why = match(a.records, b.records, g).reason()
                if why:
                    reasons.append(f"{a.run_id} vs {b.run_id}, {why}")
    return (f"Compared UNPAIRED (their runs share no case of the same content, e.g. another seed; "
            f"a weaker test): {named}." + (" " + ". ".join(reasons) + "." if reasons else ""))


def untested_text(board: Board) -> str | None:
    """A sentence counting the pairs no test could be made for (too few clusters), if any."""
    from explbench.stats.clusters import MIN_CLUSTERS

    parts = []
    for g, r in board.rankings.items():
        bad = [t for t in r.tests if not np.isfinite(t.p)]
        if bad:
            parts.append(f"{len(bad)} of {len(r.tests)} pairs on {g}")
    if not parts:
        return None
    return (f"Not tested: {'; '.join(parts)} (their shared cases come from fewer than "
            f"{MIN_CLUSTERS} clusters, too few for the paired cluster bootstrap); such pairs "
            f"count as no significant difference.")


def describe(board: Board) -> dict[str, object]:
    """Header facts: task, configuration, runs used, rank rule, power, unpaired pairs."""
    used = []
    for r in board.runs:
        expl = sorted(e for e, s in board.sources.items() if s is r)
        if expl:
            used.append({"run_id": r.run_id, "folder": str(r.folder), "explainers": expl,
                         "cases": {g: v.get("n_cases") for g, v in r.cases.items()}})
    return {"task": board.task, "config": protocol_config(board.reference.suite,
                                                          board.reference.provenance,
                                                          board.reference.cases),
            "runs": used, "rule": rule_text(board), "power": power_text(board),
            "unpaired": unpaired_text(board), "untested": untested_text(board)}


# --------------------------------------------------------------------------- Markdown


# --------------------------------------------------------------------------- HTML


# --------------------------------------------------------------------------- files


