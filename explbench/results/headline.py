"""The board's headline table, its merged rows and its forest-plot rows: pure table building.

Everything here reads the numbers a board already has — each explainer's rows of metrics.csv
(and timing.csv for seconds, which metrics.csv leaves out so that it stays byte-identical under
every executor) and the pairwise tests of its :class:`~explbench.results.ranking.Ranking` — and
returns formatted tables; nothing is recomputed from records, nothing is written.

- :func:`headline_table`: one row per explainer with the rank interval(s), FR(3) per attack
  generator, rec@3 on the first localised generator, 'beats random' per attack generator, the
  failure rate, queries and seconds per explanation.
- :func:`signature` and :func:`merge_groups`: explainers whose every value of metrics.csv (and
  every verdict and cost the board shows) is the same are one group; :func:`merge_rows` shows
  a group as one row named ``"a = b = c"``.
- :func:`forest_rows`: the rows of one attack generator's forest plot.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pandas as pd

from explbench.api.metric import HEADLINE_K
from explbench.results.forest import ForestRow
from explbench.results.ranking import ALPHA, RANDOM, Ranking
from explbench.store.runs import ALL

__all__ = [
    "ARROWS",
    "arrows",
    "cell",
    "failed_text",
    "fmt",
    "forest_rows",
    "headline_caption",
    "headline_table",
    "mean_queries",
    "mean_seconds",
    "merge_groups",
    "merge_rows",
    "merged_label",
    "metric_row",
    "rules",
    "signature",
    "with_arrow",
]

#: arrows shown after a column title, by metric direction
ARROWS = {"higher": "↑", "lower": "↓", "none": ""}

#: the k of the headline's recovery column
REC_K = 3


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
    precision is shown as the bare value followed by "(no interval)".
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


def arrows() -> dict[str, str]:
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


def with_arrow(title: str, by_prefix: Mapping[str, str]) -> str:
    """``title`` followed by the arrow of its longest matching prefix, if any."""
    for prefix in sorted(by_prefix, key=len, reverse=True):
        if title.startswith(prefix) and by_prefix[prefix]:
            return f"{title} {by_prefix[prefix]}"
    return title


def metric_row(m: pd.DataFrame, explainer: str, generator: str, metric: str, k: int | None,
               direction: str = ALL) -> pd.Series | None:
    """The metrics-table row of one (explainer, generator, direction, metric, k), or None."""
    sel = m[(m["explainer"] == explainer) & (m["generator"] == generator) & (m["metric"] == metric)
            & (m["direction"] == direction)]
    sel = sel[sel["k"].isna()] if k is None else sel[sel["k"] == k]
    return None if sel.empty else sel.iloc[0]


def cell(m: pd.DataFrame, explainer: str, generator: str, metric: str, k: int | None,
         direction: str = ALL) -> str:
    """One value of metrics.csv with its interval, as the board prints it."""
    r = metric_row(m, explainer, generator, metric, k, direction)
    return "–" if r is None else fmt(r["value"], r["ci_low"], r["ci_high"])


# --------------------------------------------------------------------------- pooled costs


def _pooled(m: pd.DataFrame, explainer: str, metric: str) -> tuple[float, float]:
    """(sum of value × n, sum of n) over the explainer's generators, both directions pooled.

    metrics.csv holds costs and failures per generator; the n-weighted mean of the per-generator
    means is the mean over all of the explainer's explanations.
    """
    sel = m[(m["explainer"] == explainer) & (m["metric"] == metric) & (m["direction"] == ALL)
            & m["k"].isna()]
    sel = sel[np.isfinite(pd.to_numeric(sel["value"], errors="coerce"))]
    n = pd.to_numeric(sel["n"], errors="coerce").fillna(0).to_numpy(dtype=float)
    v = pd.to_numeric(sel["value"], errors="coerce").to_numpy(dtype=float)
    return float((v * n).sum()), float(n.sum())


def failed_text(m: pd.DataFrame, explainer: str) -> str:
    """``"0.02 (5/243)"``: failed explanations / all of the explainer's, from ``failure-rate``."""
    total_failed, total = _pooled(m, explainer, "failure-rate")
    if total <= 0:
        return "–"
    failed = round(total_failed)
    return f"{failed / total:.2f} ({failed}/{round(total)})"


def mean_queries(m: pd.DataFrame, explainer: str) -> float:
    """Mean model queries per successful explanation over all generators (NaN if none)."""
    s, n = _pooled(m, explainer, "queries")
    return s / n if n > 0 else math.nan


def mean_seconds(m: pd.DataFrame, timing: pd.DataFrame, explainer: str) -> float:
    """Mean seconds per successful explanation over all generators (NaN if none).

    From metrics.csv's ``seconds`` rows when it has them, else from timing.csv (``seconds_mean``
    weighted by ``n`` per generator), where a run keeps its wall-clock times.
    """
    s, n = _pooled(m, explainer, "seconds")
    if n > 0:
        return s / n
    if timing is None or timing.empty or not {"explainer", "seconds_mean", "n"} <= set(timing.columns):
        return math.nan
    sel = timing[timing["explainer"] == explainer]
    w = pd.to_numeric(sel["n"], errors="coerce").fillna(0).to_numpy(dtype=float)
    v = pd.to_numeric(sel["seconds_mean"], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(v)
    return float((v[ok] * w[ok]).sum() / w[ok].sum()) if w[ok].sum() > 0 else math.nan


def _seconds_text(sec: float) -> str:
    """``0.378``; two significant digits below 0.01 s (``0.00031``), so that no mean reads 0."""
    if not np.isfinite(sec):
        return "–"
    if sec >= 0.01 or sec <= 0:
        return f"{sec:.3f}"
    return f"{sec:.{1 - math.floor(math.log10(sec))}f}"


def _queries_text(q: float) -> str:
    if not np.isfinite(q):
        return "–"
    return f"{q:.0f}" if q == round(q) or q >= 100 else f"{q:.1f}"


# --------------------------------------------------------------------------- the headline


def headline_table(order: Sequence[str], metrics: pd.DataFrame, timing: pd.DataFrame,
                   rankings: Mapping[str, Ranking], ranks: Mapping[str, Mapping[str, str]],
                   localised: str | None) -> pd.DataFrame:
    """The headline: one row per explainer, formatted strings.

    Parameters
    ----------
    order : sequence of str
        The explainers, in the order of the rows.
    metrics : DataFrame
        Each explainer's rows of metrics.csv (from the run that supplies it).
    timing : DataFrame
        Each explainer's rows of timing.csv (may be empty).
    rankings : mapping
        Attack generator (headline first) → its Ranking ('beats random').
    ranks : mapping
        Attack generator → explainer → rank text (``"1"``, ``"2–5"``, ``"oracle"``, ``"–"``).
    localised : str or None
        The localised generator whose rec@3 is shown (none: no rec column).

    Returns
    -------
    DataFrame
        Columns ``rank`` (``rank G`` per attack generator when there are several),
        ``explainer``, ``FR(3) G ↑`` per attack generator, ``rec@3 L ↑``, ``beats random``
        (``beats random G``), ``failed ↓``, ``queries ↓``, ``s/expl ↓``.
    """
    gens = list(rankings)
    several = len(gens) > 1
    rows = []
    for e in order:
        out: dict[str, str] = {}
        for g in gens:
            out[f"rank {g}" if several else "rank"] = ranks.get(g, {}).get(e, "–")
        out["explainer"] = e
        for g in gens:
            out[f"FR({HEADLINE_K}) {g}"] = cell(metrics, e, g, "flip-rate", HEADLINE_K)
        if localised is not None:
            out[f"rec@{REC_K} {localised}"] = cell(metrics, e, localised, "recovery", REC_K)
        for g in gens:
            out[f"beats random {g}" if several else "beats random"] = rankings[g].beats_random(e)
        out["failed"] = failed_text(metrics, e)
        out["queries"] = _queries_text(mean_queries(metrics, e))
        out["s/expl"] = _seconds_text(mean_seconds(metrics, timing, e))
        rows.append(out)
    table = pd.DataFrame(rows)
    by_prefix = arrows()
    return table.rename(columns={c: with_arrow(c, by_prefix) for c in table.columns})


# --------------------------------------------------------------------------- texts


def rules(generators: Sequence[str], merged: bool) -> str:
    """How ranks and values are made, for a board of these attack generators (headline first);
    ``merged``: whether the board has merged rows."""
    g = generators[0] if generators else "(no attack generator)"
    others = ", ".join(generators[1:])
    merged = (" Rows named 'a = b' stand for explainers that are identical: every value of "
              "metrics.csv on the board's generators (point estimate, n and n_clusters of every "
              "generator, direction, metric and k) is exactly the same, and so are their rank "
              "intervals, pairwise verdicts, failures, queries and seconds; they are shown once "
              "(the CSV keeps every row). The intervals shown are the first name's: a bootstrap "
              "interval is resampled under each explainer's own name, so an identical twin's can "
              "differ in the last digits." if merged else "")
    return (f"Rank by FR({HEADLINE_K}) on {g}, both directions pooled, from paired tests: every pair "
            f"of explainers is compared on the cases both explained (exact McNemar test when every "
            f"case is its own cluster, else a paired cluster bootstrap; a failed explanation counts "
            f"as no flip) and the p-values of all pairs are Holm-adjusted. With m ranked "
            f"explainers, an explainer's rank interval runs from 1 + the number of explainers "
            f"significantly better (adjusted p below {ALPHA}) to m − the number significantly worse: "
            f"'1' means first for certain, '2–5' any rank from 2 to 5 agrees with the tests. "
            f"'better than' lists the explainers it beats that way. "
            f"'beats random' asks one question of every explainer, so it is its own family: each "
            f"explainer against random, on the same paired test, Holm-adjusted over those tests "
            f"only (adjusted p below {ALPHA})."
            + (f" Each further attack generator ({others}) has its own 'rank G' column, made the "
               f"same way." if others else "")
            + " Oracles (they see the perturbation) are shown, never ranked and never counted. "
            "Values are point estimate [95 % interval] from metrics.csv: Clopper-Pearson for rates, a "
            "cluster bootstrap for means and AUCs; 'n too small' where there were too few clusters "
            "for an honest interval; '–' where the value does not exist (e.g. no such cases, or "
            "positive-weight flips of an explainer whose weights are never negative). ↑ higher is "
            "better, ↓ lower is better. 'failed' = failed explanations / all of the explainer's "
            "explanations; 'n' / 'n_clusters' = cases / clusters (songs) behind the headline."
            + merged)


def headline_caption(generators: Sequence[str], localised: Sequence[str], merged: bool) -> str:
    """The caption of the headline table (``localised``: the localised generators, the first
    is the one of rec@3)."""
    gens = ", ".join(generators) or "(no attack generator)"
    loc = list(localised)
    rec = (f" rec@3: mean share of the 3 true segments among the explainer's top 3 on {loc[0]}."
           if loc else "")
    merged = (" A row named 'a = b' stands for identical explainers (see Details)."
              if merged else "")
    return (f"Rank: the rank interval on each attack generator ({gens}) from the paired tests of "
            f"FR({HEADLINE_K}) — from 1 + the number of explainers significantly better to m − "
            f"the number significantly worse ('2–5': any rank from 2 to 5 agrees with the tests); "
            f"oracles are shown, never ranked. FR({HEADLINE_K}): label-flip rate with the "
            f"perturbation on the explainer's top-3 segments, both directions pooled, with its "
            f"95 % interval.{rec} beats random: significantly more flips than random (Holm over "
            f"the explainers). failed: failed / all explanations; queries and s/expl: mean model "
            f"queries and seconds per successful explanation, over all generators. Every other "
            f"column is in the details below.{merged}")


# --------------------------------------------------------------------------- identical rows


def _num(x: object) -> str:
    """An exact, hashable text of a number (NaN and missing as "nan")."""
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "nan"
    return "nan" if math.isnan(v) else repr(v)


def signature(metrics: pd.DataFrame, explainer: str, generators: Sequence[str]) -> tuple:
    """Every value of the explainer in metrics.csv on ``generators``, exactly, as one key.

    One entry per (generator, direction, metric, k): the point estimate, n and n_clusters,
    compared exactly. Interval bounds are left out: a bootstrap interval is resampled from a
    stream seeded by the explainer's own name, so identical explanations get intervals that
    differ in the last digits.
    """
    sel = metrics[(metrics["explainer"] == explainer) & metrics["generator"].isin(list(generators))]
    n_cl = sel["n_clusters"] if "n_clusters" in sel.columns else pd.Series(math.nan, index=sel.index)
    return tuple(sorted((str(g), str(d), str(mt), _num(k), _num(v), _num(n), _num(c))
                        for g, d, mt, k, v, n, c in zip(sel["generator"], sel["direction"],
                                                        sel["metric"], sel["k"], sel["value"],
                                                        sel["n"], n_cl)))


def merge_groups(order: Sequence[str], keys: Mapping[str, Hashable]) -> list[list[str]]:
    """Explainers with equal keys, grouped, in the order of their first member.

    Parameters
    ----------
    order : sequence of str
        Every explainer, in row order.
    keys : mapping
        Explainer → what must agree for two rows to be one (e.g. its :func:`signature` with its
        verdicts and costs). An explainer without a key (e.g. no values at all) is never merged.

    Returns
    -------
    list of list of str
        Every explainer exactly once; groups of one for explainers that have no twin.
    """
    groups: dict[Hashable, list[str]] = {}
    out: list[list[str]] = []
    for e in order:
        k = keys.get(e)
        if k is None or k == ():
            out.append([e])
            continue
        if k not in groups:
            groups[k] = []
            out.append(groups[k])
        groups[k].append(e)
    return out


def merged_label(group: Sequence[str]) -> str:
    """``"saliency = saliency[mean_abs] = saliency[mean_pos]"``."""
    return " = ".join(group)


def merge_rows(table: pd.DataFrame, groups: Sequence[Sequence[str]],
               column: str = "explainer") -> pd.DataFrame:
    """One row per group: the first member's row, named :func:`merged_label` of the group.

    Rows of explainers not in any group are kept as they are; the row order is the table's.
    """
    if table.empty:
        return table
    first = {g[0]: merged_label(g) for g in groups}
    dropped = {e for g in groups for e in g[1:]}
    keep = table[~table[column].isin(dropped)].copy()
    keep[column] = keep[column].map(lambda e: first.get(e, e))
    return keep.reset_index(drop=True)


# --------------------------------------------------------------------------- forest rows


def forest_rows(metrics: pd.DataFrame, groups: Sequence[Sequence[str]], generator: str,
                oracles: set[str]) -> list[ForestRow]:
    """The rows of one attack generator's forest plot: FR(3) with its 95 % interval.

    One row per group (merged explainers share a row, named as on the board); ``random`` is
    the floor, oracles are ceilings. Groups without an FR(3) value on ``generator`` are left out.
    """
    rows = []
    for group in groups:
        e = group[0]
        r = metric_row(metrics, e, generator, "flip-rate", HEADLINE_K)
        if r is None:
            continue
        kind = "ceiling" if e in oracles else "floor" if RANDOM in group else "explainer"
        lo, hi = float(r["ci_low"]), float(r["ci_high"])
        rows.append(ForestRow(merged_label(group), float(r["value"]), lo, hi, kind))
    return rows
