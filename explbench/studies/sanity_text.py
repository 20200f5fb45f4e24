"""The model-randomisation check in words: verdicts per explainer and the text the command prints."""

from __future__ import annotations

import math
import pandas as pd
from explbench.studies.sanity_result import MOVED_BELOW, NONE, SanityResult, min_clusters


def _json_rows(df: pd.DataFrame) -> list[dict]:
    out = []
    for row in df.to_dict(orient="records"):
        out.append({k: (None if isinstance(v, float) and not math.isfinite(v) else
                        (v.item() if hasattr(v, "item") else v)) for k, v in row.items()})
    return out


def _fmt(v: float) -> str:
    return "—" if not math.isfinite(v) else f"{v:+.2f}".replace("+", " ")


def _interval_text(row: pd.Series) -> str:
    if row["n"] == 0:
        return "no case"
    if math.isfinite(row["ci_low"]) and math.isfinite(row["ci_high"]):
        return f"[{_fmt(row['ci_low']).strip()}, {_fmt(row['ci_high']).strip()}]"
    if row["n_clusters"] < min_clusters():
        return "n too small"
    return "all cases equal" if row["constant"] else "no interval"


def verdict(rows: pd.DataFrame, name: str, needs_model: bool) -> str:
    """One plain sentence on how ``name``'s ranking reacted to full randomisation.

    The rule: at full randomisation the ranking *moves* when rho's interval lies below
    :data:`MOVED_BELOW`, *keeps* its ranking when the interval lies above it; without an
    interval the mean is read the same way and the sentence says that no interval backs it.
    """
    sub = rows[rows.explainer == name].sort_values("depth")
    first, last = sub.iloc[0], sub.iloc[-1]
    moved = f"rho {_fmt(first.rho).strip()} ({NONE}) -> {_fmt(last.rho).strip()} (all {int(last.depth)} layers)"
    if not needs_model:
        return (f"{name}: needs no model (no query): {moved}; a reference, not a verdict — its "
                f"ranking cannot depend on the weights")
    if last.n == 0:
        return f"{name}: no case could be scored at full randomisation"
    moves = (f"falls below {MOVED_BELOW} — its ranking depends on the model")
    keeps = (f"stays above {MOVED_BELOW} — much of its ranking survives without the trained model: "
             f"it explains the input more than the model")
    lo, hi = last.ci_low, last.ci_high
    if math.isfinite(lo) and math.isfinite(hi):
        if hi < MOVED_BELOW:
            return f"{name}: {moved}; {moves} (passes)"
        if lo > MOVED_BELOW:
            return f"{name}: {moved}; {keeps} (fails)"
        return f"{name}: {moved}; the interval straddles {MOVED_BELOW}: undecided at this n (raise --n)"
    why = (f"{int(last.n_clusters)} clusters, intervals need {min_clusters()}"
           if last.n_clusters < min_clusters() else "no interval")
    return f"{name}: {moved}; by its mean it {moves if last.rho < MOVED_BELOW else keeps} — not backed " \
           f"by an interval ({why})"


def to_text(result: SanityResult) -> str:
    """The randomisation table, what it means, and one verdict per explainer."""
    rows = result.rows
    n_layers = len(result.layers)
    lines = [
        "Model randomisation (Adebayo et al., 2018): Spearman rho between each explainer's segment "
        "weights under the trained model and under the model with its top layers re-initialised "
        f"(cumulative from the output); mean over {result.config.get('n_cases')} cases, 95 % "
        f"interval by {result.config.get('interval')}.",
        "",
    ]
    head = f"{'explainer':<22} {'randomised (cumulative)':<30} {'rho':>6}  {'95 % interval':<16} {'n':>3}"
    lines += [head, "-" * len(head)]
    for name in rows.explainer.drop_duplicates():
        sub = rows[rows.explainer == name].sort_values("depth")
        tag = name + ("" if result.needs_model.get(name, True) else " *")
        for i, (_, r) in enumerate(sub.iterrows()):
            if r.depth == 0:
                what = "none (trained, fresh seed)"
            else:
                what = f"+ {r.randomised}" + (f" (all {n_layers})" if r.depth == n_layers else "")
            lines.append(f"{(tag if i == 0 else ''):<22} {what:<30} {_fmt(r.rho):>6}  "
                         f"{_interval_text(r):<16} {int(r.n):>3}")
    if not all(result.needs_model.values()):
        lines.append("* needs no model: its explanations made no model query")
    lines += [
        "",
        "How to read it: rho = 1 means the ranking of segments did not change, 0 that it is "
        "unrelated to the trained model's. The 'none' row re-explains the trained model with a "
        "fresh seed: the explainer's own noise. An explainer whose ranking does not move as the "
        "layers are randomised — rho near 1 at full randomisation — explains the input, not the "
        "model. References: random should give rho ≈ 0 and oracle-norm rho = 1 at every depth "
        "(neither uses the model). Rule of thumb used below: at full randomisation the ranking "
        f"depends on the model when rho's interval lies below {MOVED_BELOW} (passes) and survives "
        f"without it when the interval lies above {MOVED_BELOW} (fails).",
        "",
    ]
    lines += [verdict(rows, name, result.needs_model.get(name, True))
              for name in rows.explainer.drop_duplicates()]
    if result.notes:
        lines += [""] + [f"note: {n}" for n in result.notes]
    return "\n".join(lines) + "\n"
