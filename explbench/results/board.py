"""Leaderboards: finished runs of one protocol configuration → one board, ranked by paired tests.

Rules (also printed in every board):

- Runs are grouped by their protocol configuration (:mod:`explbench.results.compat`); runs whose
  configuration differs are refused with the differing keys, never merged.
- When several runs hold the same explainer, the **newest** run (``finished_at`` in its
  provenance) supplies all of that explainer's numbers.
- Ranks come from paired tests of FR(3) per attack generator pooled over directions
  (:mod:`explbench.results.ranking`), Holm-adjusted over all pairs, and are shown as rank
  intervals (:mod:`explbench.results.rank_intervals`): from 1 + the number of explainers
  significantly better to m − the number significantly worse. Oracles are shown, never ranked.
- The headline table (:mod:`explbench.results.headline`) comes first; the details hold every
  column. Identical explainers (every value of metrics.csv, verdict and cost) are one row.

This module assembles; :mod:`explbench.store.runs` loads runs, :mod:`explbench.results.compat`
decides which runs are comparable, :mod:`explbench.results.ranking` ranks and
:mod:`explbench.results.render` writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from explbench.core.seeding import seed_for
from explbench.results.compat import IncompatibleRuns, check_compatible, protocol_config
from explbench.results.headline import (ARROWS, arrows, cell, failed_text, fmt, headline_caption,
                                        headline_table, merge_groups, merge_rows, metric_row,
                                        rules, signature, with_arrow)
from explbench.results.pairing import match
from explbench.results.power_text import power_text
from explbench.results.rank_intervals import RankInterval, rank_intervals_of
from explbench.results.ranking import HEADLINE_K, Ranking, rank_runs
from explbench.stats.bootstrap import bootstrap_ci
from explbench.store.run_store import safe_name
from explbench.store.runs import (ALL, NotARun, Run, attack_generators, localised_generators,
                                  newest_sources)

__all__ = ["ARROWS", "Board", "IncompatibleRuns", "NotARun", "build", "fmt", "make_board",
           "metric_row"]


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
    intervals : dict
        Attack generator → explainer → its :class:`~explbench.results.rank_intervals.RankInterval`
        (ranked explainers only).
    groups : list of list of str
        Every explainer once, in row order; a group of several is one merged row (identical).
    headline_table : DataFrame
        The headline, one row per group, formatted strings.
    table : DataFrame
        The details: every column, one row per group, formatted strings.
    numeric : DataFrame
        The board's numbers in tidy form, every explainer (what ``<stem>.csv`` holds).
    """

    runs: list[Run]
    reference: Run
    sources: dict[str, Run]
    generators: list[str]
    rankings: dict[str, Ranking]
    intervals: dict[str, dict[str, RankInterval]] = field(default_factory=dict)
    groups: list[list[str]] = field(default_factory=list)
    headline_table: pd.DataFrame = field(default_factory=pd.DataFrame)
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    numeric: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def task(self) -> str:
        return self.reference.task

    @property
    def headline(self) -> Ranking | None:
        return self.rankings[self.generators[0]] if self.generators else None

    @property
    def localised(self) -> list[str]:
        """Localised generators (known cause), in the reference suite's order."""
        return localised_generators(self.reference)

    @property
    def merged(self) -> list[list[str]]:
        """The groups of two or more identical explainers."""
        return [g for g in self.groups if len(g) > 1]

    def pairs(self) -> pd.DataFrame:
        """Every pairwise test of every attack generator (what ``<stem>-pairs.csv`` holds)."""
        frames = [r.table() for r in self.rankings.values()]
        frames = [f for f in frames if not f.empty]
        if not frames:
            return Ranking("", {}).table()
        return pd.concat(frames, ignore_index=True)

    def oracles(self) -> set[str]:
        """Explainers that see the perturbation (shown, never ranked)."""
        return {e for e, r in self.sources.items() if e in r.oracles}

    def label(self, explainer: str, generator: str | None = None) -> str:
        """The rank interval text (``"1"``, ``"2–5"``), ``"oracle"``, or ``"–"`` (no headline
        value) of an explainer on ``generator`` (default: the headline generator)."""
        g = generator if generator is not None else (self.generators[0] if self.generators else None)
        if explainer in self.oracles():
            return "oracle"
        ri = self.intervals.get(g, {}).get(explainer) if g is not None else None
        return "–" if ri is None else ri.text

    def metrics(self) -> pd.DataFrame:
        """Each explainer's rows of metrics.csv, from the run that supplies it."""
        parts = [r.metrics[r.metrics["explainer"] == e] for e, r in sorted(self.sources.items())]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=["generator", "direction", "explainer", "metric", "k", "value", "ci_low",
                     "ci_high", "n", "n_clusters"])

    def timing(self) -> pd.DataFrame:
        """Each explainer's rows of timing.csv, from the run that supplies it (may be empty)."""
        parts = [r.timing[r.timing["explainer"] == e] for e, r in sorted(self.sources.items())
                 if not r.timing.empty and "explainer" in r.timing.columns]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def stem(self) -> str:
        """``<task>`` for the default suite, ``<task>-<suite>`` for any other."""
        suite = str(self.reference.suite.get("name", "default"))
        stem = self.task if suite == "default" else f"{self.task}-{suite}"
        return safe_name(stem)


def _better_text(ranking: Ranking, e: str) -> str:
    if ranking.rank(e) is None:
        return "–"
    beaten = ranking.better_than(e)
    unpaired = {b for a, b in ranking.unpaired_pairs() if a == e} | \
               {a for a, b in ranking.unpaired_pairs() if b == e}
    if not beaten:
        return "none"
    return ", ".join(f"{b} (unpaired)" if b in unpaired else b for b in beaten)


def _order(board: Board) -> list[str]:
    """Rows: ranked explainers by headline rank interval (best, then worst, then falling FR(3)),
    then explainers without a headline value, then oracles; ties by name."""
    h = board.headline
    oracles = board.oracles()
    first = board.intervals.get(board.generators[0], {}) if board.generators else {}

    def key(e: str) -> tuple:
        if e in oracles:
            return (2, 0, 0, 0.0, e)
        ri = first.get(e)
        if ri is None:
            return (1, 0, 0, 0.0, e)
        rate = h.outcomes[e].rate if h is not None and e in h.outcomes else math.nan
        return (0, ri.best, ri.worst, -rate if np.isfinite(rate) else 0.0, e)

    return sorted(board.sources, key=key)


def _table(board: Board, order: list[str]) -> pd.DataFrame:
    """The details: today's full table (every column), one row per explainer."""
    runs0 = board.reference
    directions = sorted({str(d) for r in board.runs for d in r.metrics["direction"].dropna().unique()
                         if d != ALL})
    localised = localised_generators(runs0)
    every = pd.concat([r.metrics for r in board.runs], ignore_index=True)
    rec = every[(every["metric"] == "recovery") & (every["direction"] == ALL)]
    rec_ks = {g: sorted(int(k) for k in rec.loc[rec["generator"] == g, "k"].dropna().unique()
                        if int(k) in (1, 3, 5)) for g in localised}
    rows = []
    h = board.headline
    for e in order:
        run = board.sources[e]
        m = run.metrics
        out: dict[str, str] = {"rank": board.label(e), "explainer": e}
        out["better than"] = _better_text(h, e) if h else "–"
        out["beats random"] = h.beats_random(e) if h else "–"
        for i, g in enumerate(board.generators):
            if i > 0:
                out[f"rank {g}"] = board.label(e, g)
            out[f"FR({HEADLINE_K}) {g}"] = cell(m, e, g, "flip-rate", HEADLINE_K)
            for d in directions:
                out[f"FR({HEADLINE_K}) {g} [{d}]"] = cell(m, e, g, "flip-rate", HEADLINE_K, d)
            pos = cell(m, e, g, "positive-flip-rate", None)
            ref = metric_row(m, e, g, "positive-flip-rate-norm", None)
            if pos != "–" and ref is not None:
                pos += f" (norm {fmt(ref['value'], interval=False)})"
            out[f"pos-flip {g}"] = pos
        for g in localised:
            for k in rec_ks[g]:
                out[f"rec@{k} {g}"] = cell(m, e, g, "recovery", k)
            for title, metric in (("fid-AUC", "fidelity-auc"), ("agn-fid-AUC", "agnostic-fidelity-auc")):
                r = metric_row(m, e, g, metric, 1)
                r = r if r is not None else metric_row(m, e, g, metric, None)
                out[f"{title} {g}"] = "–" if r is None else fmt(r["value"], r["ci_low"], r["ci_high"])
        out["failed"] = failed_text(m, e)
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
    by_prefix = arrows()
    return table.rename(columns={c: with_arrow(c, by_prefix) for c in table.columns})


def _verdicts(board: Board, e: str) -> tuple:
    """What the board says of ``e`` besides metrics.csv: per attack generator its rank text,
    whom it beats and is beaten by, and 'beats random'; its run."""
    out: list[object] = [board.sources[e].run_id]
    for g, r in board.rankings.items():
        out.append((board.label(e, g), tuple(r.better_than(e)), tuple(r.worse_than(e)),
                    r.beats_random(e)))
    return tuple(out)


def _groups(board: Board, order: list[str], headline: pd.DataFrame) -> list[list[str]]:
    """Explainers whose every value of metrics.csv (point estimates, n, n_clusters), verdicts and
    headline costs agree exactly are one group."""
    gens = list(board.generators) + [g for g in board.localised if g not in board.generators]
    metrics = board.metrics()
    costs = headline.set_index("explainer")[[c for c in headline.columns
                                              if c.startswith(("failed", "queries", "s/expl"))]]
    keys = {}
    for e in order:
        sig = signature(metrics, e, gens)
        keys[e] = (sig, _verdicts(board, e), tuple(costs.loc[e])) if sig else None
    return merge_groups(order, keys)


def _numeric(board: Board) -> pd.DataFrame:
    """The board's metrics, tidy, from each explainer's source run, plus costs and failures."""
    parts = []
    localised = set(board.localised)
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
    board.intervals = {g: rank_intervals_of(r) for g, r in board.rankings.items()}
    order = _order(board)
    ranks = {g: {e: board.label(e, g) for e in order} for g in gens}
    localised = board.localised
    headline = headline_table(order, board.metrics(), board.timing(), board.rankings, ranks,
                              localised[0] if localised else None)
    board.groups = _groups(board, order, headline) if order else []
    board.headline_table = merge_rows(headline, board.groups)
    board.table = merge_rows(_table(board, order), board.groups)
    board.numeric = _numeric(board)
    return board


def build(runs: list[Run], reference: Run | None = None) -> pd.DataFrame:
    """The formatted details table (one row per explainer or merged group); see :func:`make_board`."""
    return make_board(runs, reference).table


# --------------------------------------------------------------------------- header


def rule_text(board: Board) -> str:
    """How ranks and values are made (printed above the details of every board)."""
    return rules(board.generators, bool(board.merged))


def headline_text(board: Board) -> str:
    """The caption of the headline table."""
    return headline_caption(board.generators, board.localised, bool(board.merged))


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
            "runs": used, "rule": rule_text(board), "power": power_text(board.reference, board.generators, board.rankings),
            "unpaired": unpaired_text(board), "untested": untested_text(board)}
