"""Headline numbers of a run as a compact table (terminal, Markdown)."""

from __future__ import annotations

import math

import pandas as pd

from explbench.api.metric import HEADLINE_K

#: shown where a value exists but its sample is too small for an honest interval
TOO_SMALL = "n too small"


def fmt(value: float, lo: float | None = None, hi: float | None = None, digits: int = 2,
        interval: bool = False) -> str:
    """``0.52 [0.31, 0.70]``; "–" for a missing value.

    With ``interval=True`` a value whose interval is NaN reads ``0.52 (n too small)``: the
    aggregator gives no interval where the sample cannot support an honest one.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    s = f"{value:.{digits}f}"
    if lo is not None and hi is not None and not (math.isnan(lo) or math.isnan(hi)):
        s += f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    elif interval:
        s += f" ({TOO_SMALL})"
    return s


def _show(r: pd.Series | None, ci: bool) -> str:
    if r is None:
        return "–"
    return fmt(r.value, r.ci_low, r.ci_high, interval=True) if ci else fmt(r.value)


def _pick(m: pd.DataFrame, generator: str, metric: str, k: int | None) -> pd.Series | None:
    sel = m[(m["generator"] == generator) & (m["metric"] == metric) & (m["direction"] == "all")]
    sel = sel[sel["k"].isna()] if k is None else sel[sel["k"] == k]
    return None if sel.empty else sel.iloc[0]


def headline(metrics: pd.DataFrame, timing: pd.DataFrame | None = None, ci: bool = True) -> pd.DataFrame:
    """One row per explainer: FR(k) at the headline k and positive-weight flips per attack
    generator, recovery at every k the cases have (claimed and necessary cause) and
    fidelity-vs-correctness AUC on localised cases, failure rate, queries and seconds.

    Parameters
    ----------
    metrics : DataFrame in the tidy metrics.csv schema
    timing : DataFrame with columns explainer, generator, seconds_mean (timing.csv), optional
    """
    if metrics.empty:
        return pd.DataFrame(columns=["explainer"])
    m = metrics.copy()
    m["k"] = m["k"].astype("Int64")
    has_cause = set(m.loc[m["metric"] == "recovery", "generator"])
    adversarial = sorted(set(m.loc[m["metric"] == "flip-rate", "generator"]) - has_cause)
    localised = sorted(has_cause)
    ks = {g: sorted(int(k) for k in m.loc[(m["metric"] == "recovery") & (m["generator"] == g), "k"]
                    .dropna().unique()) for g in localised}
    rows = []
    for expl in sorted(m["explainer"].unique()):
        e = m[m["explainer"] == expl]
        row: dict[str, str] = {"explainer": expl}
        for g in adversarial:
            row[f"FR({HEADLINE_K}) {g}"] = _show(_pick(e, g, "flip-rate", HEADLINE_K), ci)
            r = _pick(e, g, "positive-flip-rate", None)
            row[f"pos-flip {g}"] = _show(r, ci) if r is not None else "n/a"
            r = _pick(e, g, "positive-flip-rate-norm", None)
            row[f"pos-flip {g}"] += f" (norm {fmt(r.value)})" if r is not None else ""
        for g in localised:
            for k in ks[g]:
                row[f"rec@{k} {g}"] = _show(_pick(e, g, "recovery", k), ci)
                r = _pick(e, g, "recovery-necessary", k)
                if r is not None:
                    row[f"rec-nec@{k} {g}"] = _show(r, ci)
            for metric, title in (("fidelity-auc", "fid-AUC"), ("agnostic-fidelity-auc", "agn-fid-AUC")):
                r = _pick(e, g, metric, 1)
                if r is not None:
                    row[f"{title} {g}"] = _show(r, ci)
        f = e[(e["metric"] == "failure-rate") & (e["direction"] == "all")]
        row["failed"] = fmt(float((f["value"] * f["n"]).sum() / f["n"].sum())) if not f.empty and f["n"].sum() else "–"
        q = e[(e["metric"] == "queries") & (e["direction"] == "all")]
        row["queries"] = fmt(float(q["value"].mean()), digits=0) if not q.empty else "–"
        if timing is not None and not timing.empty:
            t = timing[timing["explainer"] == expl]
            if not t.empty:
                row["s/expl"] = fmt(float((t["seconds_mean"] * t["n"]).sum() / t["n"].sum()), digits=3)
        rows.append(row)
    return pd.DataFrame(rows).fillna("–")


def to_text(table: pd.DataFrame) -> str:
    """A plain fixed-width table for the terminal."""
    if table.empty or len(table.columns) < 2:
        return "(no results)"
    cols = list(table.columns)
    widths = [max(len(str(c)), *(len(str(v)) for v in table[c])) for c in cols]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(cols, widths)),
             "  ".join("-" * w for w in widths)]
    for _, r in table.iterrows():
        lines.append("  ".join(str(r[c]).ljust(w) for c, w in zip(cols, widths)))
    return "\n".join(lines)


def to_markdown(table: pd.DataFrame) -> str:
    cols = list(table.columns)
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in table.iterrows():
        out.append("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return "\n".join(out)
