"""The report's summary figures (matplotlib, Agg backend), after the paper's Fig. 2, 3 and 4."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from explbench.metrics.fidelity import fidelity_table  # noqa: E402
from explbench.results.report.encode import label  # noqa: E402

#: reference selector drawn on every FR(k) panel
NORM_STYLE = {"color": "black", "linestyle": "--", "linewidth": 1.5}
RANDOM_NAMES = ("random",)


def colours(explainers: list[str]) -> dict[str, tuple]:
    """A stable colour per explainer (random is grey)."""
    real = [e for e in sorted(explainers) if e not in RANDOM_NAMES]
    cmap = plt.get_cmap("tab10" if len(real) <= 10 else "tab20")
    out = {e: (0.5, 0.5, 0.5, 1.0) for e in explainers if e in RANDOM_NAMES}
    for i, e in enumerate(real):
        out[e] = cmap(i % cmap.N)
    return out


def _curve(m: pd.DataFrame, metric: str, generator: str, explainer: str | None) -> pd.DataFrame:
    sel = m[(m["metric"] == metric) & (m["generator"] == generator) & (m["direction"] == "all")]
    if explainer is not None:
        sel = sel[sel["explainer"] == explainer]
    else:  # the reference is the same for every explainer: take the first that has it
        first = sorted(sel["explainer"].unique())[:1]
        sel = sel[sel["explainer"].isin(first)]
    return sel.dropna(subset=["k"]).sort_values("k")


#: reference curves of every FR(k) panel: metric → (label, style)
REFERENCES = {
    "flip-rate-norm": ("norm reference: top-k by energy of δ", NORM_STYLE),
    "flip-rate-absmean": ("reference: top-k by mean |δ|",
                          {"color": "black", "linestyle": "-.", "linewidth": 1.2}),
}


def _same_curve(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether two FR(k) curves agree at every k (an oracle that *is* a reference)."""
    if a.empty or b.empty or len(a) != len(b):
        return False
    ka, kb = a["k"].to_numpy(float), b["k"].to_numpy(float)
    return bool(np.array_equal(ka, kb) and np.allclose(a["value"].to_numpy(float),
                                                       b["value"].to_numpy(float), atol=1e-9))


def fr_curves(metrics: pd.DataFrame, generators: list[str], oracles: set[str]) -> plt.Figure | None:
    """FR(k) against k per explainer with 95 % bands, beside the reference selectors; one panel
    per attack generator (paper Fig. 2).

    An oracle whose curve coincides with a reference (``oracle-norm`` is the norm reference) is
    drawn once, as that reference, whose legend entry names it; any other oracle is drawn thin.
    """
    if not generators:
        return None
    expl = sorted(metrics["explainer"].unique())
    col = colours(expl)
    fig, axes = plt.subplots(1, len(generators), figsize=(5.2 * len(generators), 3.8), squeeze=False)
    for ax, g in zip(axes[0], generators):
        refs = {name: _curve(metrics, name, g, None) for name in REFERENCES}
        merged: dict[str, list[str]] = {name: [] for name in REFERENCES}
        curves = {e: _curve(metrics, "flip-rate", g, e) for e in expl}
        for e in sorted(oracles):
            for name, ref in refs.items():
                if e in curves and _same_curve(curves[e], ref):
                    merged[name].append(e)
                    break
        for name, ref in refs.items():
            if ref.empty:
                continue
            text, style = REFERENCES[name]
            if merged[name]:
                text += f" (= {', '.join(label(e) for e in merged[name])})"
            ax.plot(ref["k"].to_numpy(float), ref["value"].to_numpy(float), label=text, **style)
        drawn_as_reference = {e for names in merged.values() for e in names}
        for e in expl:
            c = curves[e]
            if c.empty or e in drawn_as_reference:
                continue
            k = c["k"].to_numpy(float)
            thin = e in oracles
            ax.plot(k, c["value"].to_numpy(float), color=col[e], linewidth=1.0 if thin else 2.0,
                    linestyle=":" if e in RANDOM_NAMES else "-",
                    label=label(e) + (" (oracle)" if thin else ""))
            lo, hi = c["ci_low"].to_numpy(float), c["ci_high"].to_numpy(float)
            ok = np.isfinite(lo) & np.isfinite(hi)
            if ok.any():
                ax.fill_between(k, np.where(ok, lo, np.nan), np.where(ok, hi, np.nan),
                                color=col[e], alpha=0.15, linewidth=0)
        ax.axvline(3, color="0.8", linewidth=0.8, zorder=0)
        ax.set_title(label(g))
        ax.set_xlabel("k (segments with the perturbation)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("label-flip rate FR(k)")
    axes[0][-1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def recovery_histograms(metrics: pd.DataFrame, generators: list[str]) -> plt.Figure | None:
    """Share of cases recovering exactly j of k true segments, k = 1, 3, 5 (paper Fig. 3);
    one row per localised generator, one panel per k, bars per explainer with 95 % intervals.

    In every panel the bars of the explainers present there are centred on their tick j.
    """
    dist = metrics[metrics["metric"].str.startswith("recovery-dist-") & (metrics["direction"] == "all")]
    ks = sorted(int(k) for k in dist["k"].dropna().unique() if int(k) in (1, 3, 5))
    if not generators or not ks:
        return None
    expl = sorted(dist["explainer"].unique())
    col = colours(expl)
    fig, axes = plt.subplots(len(generators), len(ks), figsize=(4.4 * len(ks), 3.3 * len(generators)),
                             squeeze=False)
    for row, g in zip(axes, generators):
        for ax, k in zip(row, ks):
            panel = dist[(dist["generator"] == g) & (dist["k"] == k)]
            present = [e for e in expl if (panel["explainer"] == e).any()]
            width = 0.8 / max(1, len(present))
            for i, e in enumerate(present):
                sel = panel[panel["explainer"] == e]
                j = sel["metric"].str.rsplit("-", n=1).str[1].astype(int).to_numpy()
                v = sel["value"].to_numpy(float)
                lo, hi = sel["ci_low"].to_numpy(float), sel["ci_high"].to_numpy(float)
                err = np.vstack([np.where(np.isfinite(lo), v - lo, 0.0),
                                 np.where(np.isfinite(hi), hi - v, 0.0)])
                offset = (i - (len(present) - 1) / 2) * width
                ax.bar(j + offset, v, width, align="center", color=col[e], label=label(e),
                       yerr=np.clip(err, 0, None), capsize=2, error_kw={"linewidth": 0.8})
            n = panel["n"].max() if not panel.empty else 0
            nc = panel["n_clusters"].max() if "n_clusters" in panel and not panel.empty else None
            size = f"n = {n}" + (f", {int(nc)} clusters" if nc is not None and pd.notna(nc) else "")
            ax.set_title(f"{label(g)}: k = {k} ({size})")
            ax.set_xticks(range(k + 1))
            ax.set_xlim(-0.6, k + 0.6)
            ax.set_xlabel(f"true segments among the top {k}")
            ax.set_ylim(0, 1.05)
            ax.grid(axis="y", alpha=0.3)
        row[0].set_ylabel("share of cases")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    return fig


#: fidelity sources of the fidelity figure: records column → (label, AUC metric)
FIDELITY_SOURCES = {"score": ("explainer's own fidelity score", "fidelity-auc"),
                    "agnostic_score": ("harness's agnostic fidelity (R²)", "agnostic-fidelity-auc")}


def fidelity_plot(records: pd.DataFrame, metrics: pd.DataFrame, generators: list[str]) -> plt.Figure | None:
    """Fidelity of correct vs wrong top-1 explanations on k = 1 cases, per explainer: boxes with
    the individual cases as points, and the AUC in the axis labels (paper Fig. 4). One row per
    fidelity source (the explainer's own score; the harness's agnostic fidelity), never mixed."""
    if records.empty or not generators:
        return None
    panels = []
    for source, (title, auc_metric) in FIDELITY_SOURCES.items():
        if source not in records.columns:
            continue
        for g in generators:
            per = {}
            for e, rows in records[records["generator"] == g].groupby("explainer", sort=True):
                t = fidelity_table(rows, source)
                t = t[np.isfinite(t["fidelity"].to_numpy(float))]
                if not t.empty:
                    per[str(e)] = t
            if per:
                panels.append((g, title, auc_metric, per))
    if not panels:
        return None
    width = max(5.0, 1.6 * max(len(p[3]) for p in panels))
    fig, axes = plt.subplots(len(panels), 1, figsize=(width, 4.0 * len(panels)), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, (g, title, auc_metric, per) in zip(axes[:, 0], panels):
        names = list(per)
        for i, e in enumerate(names):
            t = per[e]
            for offset, correct, colour in ((-0.2, True, "tab:green"), (0.2, False, "tab:red")):
                v = t.loc[t["correct"] == correct, "fidelity"].to_numpy(float)
                if v.size == 0:
                    continue
                ax.boxplot([v], positions=[i + offset], widths=0.3, showfliers=False,
                           medianprops={"color": colour}, boxprops={"color": colour},
                           whiskerprops={"color": colour}, capprops={"color": colour})
                ax.scatter(i + offset + rng.uniform(-0.07, 0.07, v.size), v, s=10, color=colour,
                           alpha=0.6, zorder=3)
        ticks = []
        for e in names:
            a = metrics[(metrics["metric"] == auc_metric) & (metrics["generator"] == g)
                        & (metrics["direction"] == "all") & (metrics["explainer"] == e)]
            auc = a["value"].iloc[0] if not a.empty else float("nan")
            ticks.append(f"{label(e)}\nAUC {auc:.2f}" if np.isfinite(auc) else f"{label(e)}\nAUC –")
        ax.set_xticks(range(len(names)), ticks, fontsize=8)
        ax.set_xlim(-0.6, len(names) - 0.4)
        ax.set_title(f"{label(g)}: k = 1 cases, {title}")
        ax.set_ylabel("fidelity")
        ax.scatter([], [], color="tab:green", label="correct top-1")
        ax.scatter([], [], color="tab:red", label="wrong top-1")
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
