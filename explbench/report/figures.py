"""The report's summary figures (matplotlib, Agg backend), after the paper's Fig. 2, 3 and 4."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from explbench.metrics.fidelity import fidelity_table  # noqa: E402
from explbench.report.encode import label  # noqa: E402

#: reference selector drawn on every FR(k) panel
NORM_STYLE = {"color": "black", "linestyle": "--", "linewidth": 1.5}
RANDOM_NAMES = ("random",)


def colours(explainers: list[str]) -> dict[str, tuple]:
    """A stable colour per explainer (random is grey)."""
    cmap = plt.get_cmap("tab10")
    out, i = {}, 0
    for e in sorted(explainers):
        if e in RANDOM_NAMES:
            out[e] = (0.5, 0.5, 0.5, 1.0)
        else:
            out[e] = cmap(i % 10)
            i += 1
    return out


def _curve(m: pd.DataFrame, metric: str, generator: str, explainer: str | None) -> pd.DataFrame:
    sel = m[(m["metric"] == metric) & (m["generator"] == generator) & (m["direction"] == "all")]
    if explainer is not None:
        sel = sel[sel["explainer"] == explainer]
    else:  # the reference is the same for every explainer: take the first that has it
        first = sorted(sel["explainer"].unique())[:1]
        sel = sel[sel["explainer"].isin(first)]
    return sel.dropna(subset=["k"]).sort_values("k")


def fr_curves(metrics: pd.DataFrame, generators: list[str], oracles: set[str]) -> plt.Figure | None:
    """FR(k) against k per explainer with 95 % bands, beside the norm reference; one panel per
    attack generator (paper Fig. 2). Oracles are drawn thin."""
    if not generators:
        return None
    expl = sorted(metrics["explainer"].unique())
    col = colours(expl)
    fig, axes = plt.subplots(1, len(generators), figsize=(5.2 * len(generators), 3.8), squeeze=False)
    for ax, g in zip(axes[0], generators):
        ref = _curve(metrics, "flip-rate-norm", g, None)
        if not ref.empty:
            ax.plot(ref["k"], ref["value"], label="norm (top-k by energy of δ)", **NORM_STYLE)
        for e in expl:
            c = _curve(metrics, "flip-rate", g, e)
            if c.empty:
                continue
            k = c["k"].to_numpy(float)
            thin = e in oracles
            ax.plot(k, c["value"], color=col[e], linewidth=1.0 if thin else 2.0,
                    linestyle=":" if e in RANDOM_NAMES else "-",
                    label=label(e) + (" (oracle)" if thin else ""))
            ax.fill_between(k, c["ci_low"].to_numpy(float), c["ci_high"].to_numpy(float),
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
    one row per localised generator, one panel per k, bars per explainer with 95 % intervals."""
    dist = metrics[metrics["metric"].str.startswith("recovery-dist-") & (metrics["direction"] == "all")]
    ks = sorted(int(k) for k in dist["k"].dropna().unique() if int(k) in (1, 3, 5))
    if not generators or not ks:
        return None
    expl = sorted(dist["explainer"].unique())
    col = colours(expl)
    fig, axes = plt.subplots(len(generators), len(ks), figsize=(4.4 * len(ks), 3.3 * len(generators)),
                             squeeze=False)
    width = 0.8 / max(1, len(expl))
    for row, g in zip(axes, generators):
        for ax, k in zip(row, ks):
            for i, e in enumerate(expl):
                sel = dist[(dist["generator"] == g) & (dist["explainer"] == e) & (dist["k"] == k)]
                if sel.empty:
                    continue
                j = sel["metric"].str.rsplit("-", n=1).str[1].astype(int).to_numpy()
                v = sel["value"].to_numpy(float)
                err = np.vstack([v - sel["ci_low"].to_numpy(float), sel["ci_high"].to_numpy(float) - v])
                ax.bar(j - 0.4 + width * (i + 0.5), v, width, color=col[e], label=label(e),
                       yerr=np.clip(np.nan_to_num(err), 0, None), capsize=2, error_kw={"linewidth": 0.8})
            n = dist[(dist["generator"] == g) & (dist["k"] == k)]["n"].max()
            ax.set_title(f"{label(g)}: k = {k} (n = {n})")
            ax.set_xticks(range(k + 1))
            ax.set_xlabel(f"true segments among the top {k}")
            ax.set_ylim(0, 1.05)
            ax.grid(axis="y", alpha=0.3)
        row[0].set_ylabel("share of cases")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def fidelity_plot(records: pd.DataFrame, metrics: pd.DataFrame, generators: list[str]) -> plt.Figure | None:
    """Fidelity of correct vs wrong top-1 explanations on k = 1 cases, per explainer: boxes with
    the individual cases as points, and the AUC in the axis labels (paper Fig. 4)."""
    if records.empty or not generators:
        return None
    panels = []
    for g in generators:
        per = {}
        for e, rows in records[records["generator"] == g].groupby("explainer", sort=True):
            t = fidelity_table(rows)
            t = t[np.isfinite(t["fidelity"].to_numpy(float))]
            if not t.empty:
                per[str(e)] = t
        if per:
            panels.append((g, per))
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(max(5.0, 1.6 * max(len(p) for _, p in panels)) * len(panels), 4.0),
                             squeeze=False)
    rng = np.random.default_rng(0)
    for ax, (g, per) in zip(axes[0], panels):
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
            a = metrics[(metrics["metric"] == "fidelity-auc") & (metrics["generator"] == g)
                        & (metrics["direction"] == "all") & (metrics["explainer"] == e)]
            auc = a["value"].iloc[0] if not a.empty else float("nan")
            ticks.append(f"{label(e)}\nAUC {auc:.2f}" if np.isfinite(auc) else f"{label(e)}\nAUC –")
        ax.set_xticks(range(len(names)), ticks, fontsize=8)
        ax.set_title(f"{label(g)}: k = 1 cases")
        ax.set_ylabel("fidelity (own score, else agnostic R²)")
        ax.scatter([], [], color="tab:green", label="correct top-1")
        ax.scatter([], [], color="tab:red", label="wrong top-1")
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
