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

import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from explbench.results.compat import IncompatibleRuns, check_compatible, protocol_config, show
from explbench.results.ranking import ALPHA, HEADLINE_K, Ranking, rank_runs
from explbench.store.runs import (ALL, NotARun, Run, attack_generators, localised_generators,
                            n_clusters, newest_sources, power_discordance)
from explbench.stats.intervals import bootstrap_ci, seed_for

#: arrows shown after a column title, by metric direction
ARROWS = {"higher": "↑", "lower": "↓", "none": ""}
#: output formats of :func:`write`, by file suffix
FORMATS = ("md", "csv", "html")

__all__ = ["ARROWS", "Board", "FORMATS", "IncompatibleRuns", "NotARun", "build", "fmt",
           "heatmap_html", "make_board", "to_html", "to_html_table", "to_md", "write"]


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


def power_text(board: Board) -> str:
    """The minimum detectable difference per attack generator, with n and n_clusters."""
    from explbench.stats import power

    ref = board.reference
    disc = power_discordance(ref)
    sizes = {g: n_clusters(ref, g) for g in board.generators}
    counts = "; ".join(f"{g}: n = {n}, n_clusters = {c}" for g, (n, c) in sizes.items())
    if not sizes:
        return "No attack generator: no power statement."
    units = {g: (c if c < n else n) for g, (n, c) in sizes.items() if n}
    line = power.describe(units, discordance=disc) if units else "no cases"
    note = ""
    if any(c < n for n, c in sizes.values()):
        note = (" Where cases share clusters, the figure is for the n_clusters independent units, "
                "a conservative stand-in.")
    def strictest(m: int) -> str:  # the MDD per generator when m tests share alpha
        out = []
        for g, n in sorted(units.items()):
            mdd = power.minimum_detectable_difference(n, disc, alpha=ALPHA / m)
            out.append(f"{g}: {'not detectable' if mdd is None else f'{mdd:.2f}'}")
        return "; ".join(out)

    pairs = max((len(r.tests) for r in board.rankings.values()), default=0)
    if pairs > 1 and units:
        note += (f" That is for one pair at alpha {ALPHA:g}; Holm over the {pairs} pairs tests the "
                 f"strictest pair at alpha {ALPHA:g}/{pairs}, where it is {strictest(pairs)}.")
        versus = max((len(r.vs_random) for r in board.rankings.values()), default=0)
        if versus > 1:
            note += (f" 'beats random' tests {versus} explainers against random, the strictest at "
                     f"alpha {ALPHA:g}/{versus}: {strictest(versus)}.")
    return f"Power: {line}. Cases: {counts}.{note}"


def unpaired_text(board: Board) -> str | None:
    """A sentence naming the explainers compared unpaired (different cases), if any."""
    pairs = sorted({p for r in board.rankings.values() for p in r.unpaired_pairs()})
    if not pairs:
        return None
    named = "; ".join(f"{a} vs {b}" for a, b in pairs)
    return (f"Compared UNPAIRED (their runs have different cases, e.g. another seed; a weaker "
            f"test): {named}.")


def untested_text(board: Board) -> str | None:
    """A sentence counting the pairs no test could be made for (too few clusters), if any."""
    from explbench.stats.intervals import MIN_CLUSTERS

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
                                                          board.reference.provenance),
            "runs": used, "rule": rule_text(board), "power": power_text(board),
            "unpaired": unpaired_text(board), "untested": untested_text(board)}


# --------------------------------------------------------------------------- Markdown


def _md_cell(value: object) -> str:
    """A Markdown table cell: pipes, backslashes and line breaks escaped, HTML neutralised."""
    s = str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return html.escape(s, quote=False)


def to_markdown(table: pd.DataFrame) -> str:
    """A Markdown table with every cell escaped."""
    cols = list(table.columns)
    out = ["| " + " | ".join(_md_cell(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in table.iterrows():
        out.append("| " + " | ".join(_md_cell(r[c]) for c in cols) + " |")
    return "\n".join(out)


def to_md(board: Board) -> str:
    """Markdown: header (task, configuration, runs, power, rule) and the table."""
    info = describe(board)
    cfg = info["config"]
    lines = [f"# Leaderboard: {_md_cell(info['task'])}", "",
             "**Configuration:** " + ", ".join(f"{k} = `{show(v)}`" for k, v in cfg.items()), "",
             "**Runs used** (each explainer's numbers come from the newest run that holds it):", ""]
    for u in info["runs"]:
        cases = ", ".join(f"{g}: {n}" for g, n in u["cases"].items())
        lines.append(f"- `{u['run_id']}`: {_md_cell(', '.join(u['explainers']))} (cases {cases})")
    lines += ["", f"**{info['power']}**", ""]
    for key in ("unpaired", "untested"):
        if info[key]:
            lines += [f"**{_md_cell(info[key])}**", ""]
    lines += [str(info["rule"]), "", to_markdown(board.table), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- HTML


def to_html_table(table: pd.DataFrame) -> str:
    """An HTML ``<table>`` with every cell escaped; oracle rows get ``class="oracle"``."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = []
    for _, r in table.iterrows():
        cls = ' class="oracle"' if str(r.iloc[0]) == "oracle" else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>")
    return f'<table class="leaderboard"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _colour(effect: float, limit: float = 0.5) -> str:
    """Diverging background: blue when the row explainer flips more, red when less."""
    if not np.isfinite(effect):
        return "#f4f4f4"
    t = max(-1.0, min(1.0, effect / limit))
    if t >= 0:
        r, g, b = (int(255 - t * (255 - c)) for c in (49, 130, 189))
    else:
        r, g, b = (int(255 + t * (255 - c)) for c in (222, 45, 38))
    return f"#{r:02x}{g:02x}{b:02x}"


def _p_text(p: float) -> str:
    if not np.isfinite(p):
        return "p –"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


def heatmap_html(ranking: Ranking) -> str:
    """The pairwise matrix of one attack generator as an HTML heat map.

    Cell (row r, column c): the difference FR(r) − FR(c) on the cases both explained (colour:
    blue = r flips more, red = fewer, saturating at ±0.5) and the Holm-adjusted p-value; cells
    whose difference is significant are bold and outlined; "u" marks an unpaired comparison.
    Every name is escaped.
    """
    eff, pad = ranking.matrix()
    if eff.empty:
        return '<p class="note">No explainers to compare.</p>'
    names = list(eff.index)
    head = "".join(f'<th class="col">{html.escape(c)}</th>' for c in names)
    rows = []
    for r in names:
        cells = []
        for c in names:
            if r == c:
                cells.append('<td class="diag"></td>')
                continue
            t = ranking.test(r, c)
            e, p = float(eff.loc[r, c]), float(pad.loc[r, c])
            sig = t is not None and t.significant(ranking.alpha)
            unpaired = t is not None and not t.paired
            style = f"background:{_colour(e)}" + (";outline:2px solid #222;font-weight:700" if sig else "")
            title = html.escape(f"{r} vs {c}: FR difference {e:+.2f}, Holm-adjusted {_p_text(p)}, "
                                f"{t.test if t else ''}, n = {t.n if t else 0}", quote=True)
            eff_text = "–" if not np.isfinite(e) else f"{e:+.2f}"
            cells.append(f'<td style="{style}" title="{title}">{eff_text}<br>'
                         f'<small>{html.escape(_p_text(p))}{" u" if unpaired else ""}</small></td>')
        rows.append(f'<tr><th class="row">{html.escape(r)} ({html.escape(ranking.label(r))})</th>'
                    + "".join(cells) + "</tr>")
    return (f'<table class="heatmap" data-generator="{html.escape(ranking.generator, quote=True)}">'
            f'<thead><tr><th>row − column</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')


HEATMAP_CSS = (".heatmap td,.heatmap th{border:1px solid #ddd;padding:3px 5px;font-size:11px;"
               "text-align:center;min-width:52px}.heatmap th.row{text-align:right;white-space:nowrap}"
               ".heatmap th.col{writing-mode:vertical-rl;transform:rotate(180deg);max-height:160px}"
               ".heatmap td.diag{background:#ccc}")


def heatmap_caption(ranking: Ranking) -> str:
    return (f"Pairwise FR({HEADLINE_K}) on {ranking.generator}: each cell is the row explainer's flip "
            f"rate minus the column explainer's on the cases both explained (blue: the row flips "
            f"more; red: fewer), with the Holm-adjusted p-value of the paired test. Bold outlined "
            f"cells differ significantly (adjusted p < {ranking.alpha}); 'u' marks an unpaired "
            f"comparison (different cases). Rows are ordered by rank, shown in brackets.")


def to_html(board: Board) -> str:
    """A small standalone HTML page (no external resources): header, table, heat maps."""
    info = describe(board)
    e = html.escape
    runs_html = "".join(f"<li><code>{e(u['run_id'])}</code>: {e(', '.join(u['explainers']))}</li>"
                        for u in info["runs"])
    cfg = ", ".join(f"{e(k)} = {e(show(v))}" for k, v in info["config"].items())
    maps = "".join(f"<h2>Pairwise tests: {e(g)}</h2><p>{e(heatmap_caption(r))}</p>{heatmap_html(r)}"
                   for g, r in board.rankings.items())
    unpaired = "".join(f"<p><b>{e(str(info[k]))}</b></p>" for k in ("unpaired", "untested") if info[k])
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
            f"<title>Leaderboard: {e(info['task'])}</title><style>{HEATMAP_CSS}</style></head><body>"
            f"<h1>Leaderboard: {e(info['task'])}</h1><p><b>Configuration:</b> {cfg}</p>"
            f"<ul>{runs_html}</ul><p><b>{e(str(info['power']))}</b></p>{unpaired}"
            f"<p>{e(str(info['rule']))}</p>{to_html_table(board.table)}{maps}</body></html>\n")


# --------------------------------------------------------------------------- files


def render(board: Board, fmt_name: str) -> str:
    """The board as text in one of :data:`FORMATS`."""
    if fmt_name == "md":
        return to_md(board)
    if fmt_name == "csv":
        return board.numeric.to_csv(index=False, float_format="%.6g", lineterminator="\n")
    if fmt_name == "html":
        return to_html(board)
    raise ValueError(f"unknown leaderboard format {fmt_name!r}; choose one of {', '.join(FORMATS)}")


def write(board: Board, out_dir: str | Path = "leaderboards",
          formats: tuple[str, ...] = ("md", "csv")) -> list[Path]:
    """Write the board in the given formats into ``out_dir``, nothing else.

    Files are ``<stem>.md``, ``<stem>.csv`` (with ``<stem>-pairs.csv``, every pairwise test)
    and ``<stem>.html``; ``<stem>`` is the task for the ``default`` suite and
    ``<task>-<suite>`` for any other (a smoke run never overwrites the default board).

    Returns
    -------
    list of Path
        The files written, in the order of ``formats``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = board.stem()
    written = []
    for f in formats:
        path = out / f"{stem}.{f}"
        _atomic_write(path, render(board, f))
        written.append(path)
        if f == "csv":
            pairs = out / f"{stem}-pairs.csv"
            _atomic_write(pairs, board.pairs().to_csv(index=False, float_format="%.6g",
                                                      lineterminator="\n"))
            written.append(pairs)
    return written


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
