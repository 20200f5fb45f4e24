"""Our numbers beside the published ones of the veracity protocol (Praher et al., ISMIR 2021).

The paper reports, for LIME on singing-voice detection, per attack domain and direction:

- Table 1: FR(3), the share of adversarial excerpts whose label flips when only the part of the
  perturbation inside LIME's three most relevant segments is applied;
- Table 2: the flip rate with *all* segments of positive weight, against the same number of
  segments chosen by perturbation energy ("norm");
- Figure 4: LIME's own fidelity score on the k = 1 localised cases, split by whether the top
  segment is the true one (a box plot of the "no voice to voice" direction; no test reported).

:func:`replication` computes the same quantities from a run's records with the harness's own
metrics (so every number carries its n, clusters and 95 % interval) and tests each finding on
the paired cases: LIME against norm on the same excerpts (:func:`explbench.results.ranking.paired_flip_test`),
and fidelity against chance (the AUC's interval against 0.5). :func:`render` writes the
markdown section that sits beside a paper-size board.

The published figures were read from the tables and figures of the paper's code repository
(CPJKU/veracity, ``figs/table1.png``, ``figs/table2.png``, ``figs/figure4.png``); the fidelity
medians are read off a box plot and are approximate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from explbench.results.board import fmt, metric_row
from explbench.metrics import aggregate
from explbench.api.metric import HEADLINE_K
from explbench.results.ranking import paired_flip_test
from explbench.store.runs import Run, attack_generators
from explbench.core.seeding import seed_for

#: the paper's directions under the names of the svd tasks' classes
DIRECTIONS = ("no-voice-to-voice", "voice-to-no-voice")

#: Table 1 (FR(3) of LIME) and Table 2 (positive-weight flip of LIME and of norm), by
#: (attack generator, direction); proportions
PAPER_FLIPS = {
    ("cw-waveform", "no-voice-to-voice"): {"fr3": 0.53, "positive": 0.86, "positive_norm": 0.99},
    ("cw-waveform", "voice-to-no-voice"): {"fr3": 0.21, "positive": 0.49, "positive_norm": 0.74},
    ("cw-spectrogram", "no-voice-to-voice"): {"fr3": 0.41, "positive": 0.91, "positive_norm": 0.98},
    ("cw-spectrogram", "voice-to-no-voice"): {"fr3": 0.32, "positive": 0.44, "positive_norm": 0.55},
}

#: Figure 4 (no voice to voice, k = 1): approximate medians of LIME's fidelity, by attack domain
PAPER_FIDELITY = {
    "cw-waveform": {"wrong": 0.68, "correct": 0.71},
    "cw-spectrogram": {"wrong": 0.67, "correct": 0.74},
}

_FLIP_METRICS = ["flip-rate", "flip-rate-norm", "positive-flip-rate", "positive-flip-rate-norm",
                 "positive-count"]
_FIDELITY_METRICS = ["fidelity-auc", "fidelity-median-correct", "fidelity-median-wrong", "correct-rate"]


@dataclass(frozen=True)
class Estimate:
    """A value with its 95 % interval, n and clusters (NaN value: not computable)."""

    value: float
    ci_low: float
    ci_high: float
    n: int
    n_clusters: int

    def covers(self, x: float) -> bool | None:
        """Whether ``x`` lies in the interval (None without one)."""
        if not (math.isfinite(self.ci_low) and math.isfinite(self.ci_high)):
            return None
        return bool(self.ci_low <= x <= self.ci_high)

    def text(self, digits: int = 2) -> str:
        """As the leaderboard prints a value (:func:`explbench.results.board.fmt`)."""
        return fmt(self.value, self.ci_low, self.ci_high, digits)


_NONE = Estimate(math.nan, math.nan, math.nan, 0, 0)


@dataclass(frozen=True)
class Replication:
    """The replication tables of one run and explainer (:func:`replication`).

    Attributes
    ----------
    run_id, explainer : str
    flips : pandas.DataFrame
        One row per (generator, direction): ours and the paper's FR(3), norm's FR(3), the paired
        difference ``FR(3) - FR(3)norm``; ours and the paper's positive-weight flip for the
        explainer and for norm, their paired difference; mean positive count.
    fidelity : pandas.DataFrame
        One row per attack generator the k = 1 localised cases come from: the fidelity AUC as a
        predictor of a correct top-1, the medians of correct and wrong explanations, the numbers of
        each, and the paper's medians.
    """

    run_id: str
    explainer: str
    flips: pd.DataFrame
    fidelity: pd.DataFrame


def parent_generator(case_id: str, attacks: list[str]) -> str | None:
    """The attack generator a localised case was cut from, read from its case id.

    Localised case ids name their parent (``localized-k1/cw-spectrogram/0006``); the first
    path component that is one of ``attacks`` is it.
    """
    for part in str(case_id).split("/"):
        if part in attacks:
            return part
    return None


def _estimate(table: pd.DataFrame, explainer: str, generator: str, direction: str, metric: str,
              k: int | None = None) -> Estimate:
    r = metric_row(table, explainer, generator, metric, k, direction)
    if r is None:
        return _NONE
    return Estimate(float(r["value"]), float(r["ci_low"]), float(r["ci_high"]), int(r["n"]), int(r["n_clusters"]))


def _paired(rows: pd.DataFrame, a: np.ndarray, b: np.ndarray, seed: int, *key: str) -> dict:
    rng = np.random.default_rng(seed_for("replication", *key, base=seed))
    return paired_flip_test(a, b, rows["cluster"].astype(str).to_numpy(), rng)


def replication(run: Run, explainer: str = "lime", n_boot: int | None = None) -> Replication:
    """Compute the paper's quantities for ``explainer`` on ``run`` (see the module notes).

    Parameters
    ----------
    run : Run
    explainer : str
        The explainer whose numbers stand beside the paper's LIME.
    n_boot : int, optional
        Bootstrap resamples (default: the run's ``n_boot``).

    Returns
    -------
    Replication

    Raises
    ------
    ValueError
        When the run has no records of ``explainer`` on an attack generator.
    """
    seed = run.seed
    n_boot = int(n_boot or run.suite.get("n_boot", 1000))
    records = run.records
    attacks = attack_generators(run)
    mine = records[(records["explainer"] == explainer) & (records["status"] == "ok")]
    on_attacks = mine[mine["generator"].isin(attacks)]
    if on_attacks.empty:
        have = ", ".join(sorted(set(records["explainer"]))) or "none"
        raise ValueError(f"run {run.run_id} has no successful records of {explainer!r} on an attack "
                         f"generator ({', '.join(attacks) or 'none'}); its explainers: {have}")
    table = aggregate(on_attacks, seed, n_boot, metrics=_FLIP_METRICS)
    k = HEADLINE_K
    flips = []
    for g in attacks:
        for d in (*DIRECTIONS, "all"):
            rows = on_attacks[(on_attacks["generator"] == g)
                              & ((on_attacks["direction"] == d) if d != "all" else True)]
            if rows.empty:
                continue
            fr = np.array([bool(v[k - 1]) for v in rows["flip_at_k"]])
            fr_norm = np.array([bool(v[k - 1]) for v in rows["flip_norm_at_k"]])
            pos = rows["flip_positive"].astype(bool).to_numpy()
            pos_norm = rows["flip_norm_positive"].astype(bool).to_numpy()
            t1 = _paired(rows, fr, fr_norm, seed, g, d, "fr3")
            t2 = _paired(rows, pos, pos_norm, seed, g, d, "positive")
            paper = PAPER_FLIPS.get((g, d), {})
            flips.append({
                "generator": g, "direction": d,
                "fr3": _estimate(table, explainer, g, d, "flip-rate", k), "fr3_paper": paper.get("fr3", math.nan),
                "fr3_norm": _estimate(table, explainer, g, d, "flip-rate-norm", k),
                "fr3_diff": Estimate(t1["diff"], t1["ci_low"], t1["ci_high"], len(rows),
                                     int(rows["cluster"].nunique())),
                "fr3_p": t1["p"], "fr3_test": t1["test"],
                "positive": _estimate(table, explainer, g, d, "positive-flip-rate"),
                "positive_paper": paper.get("positive", math.nan),
                "positive_norm": _estimate(table, explainer, g, d, "positive-flip-rate-norm"),
                "positive_norm_paper": paper.get("positive_norm", math.nan),
                "positive_diff": Estimate(t2["diff"], t2["ci_low"], t2["ci_high"], len(rows),
                                          int(rows["cluster"].nunique())),
                "positive_p": t2["p"], "positive_test": t2["test"],
                "positive_count": _estimate(table, explainer, g, d, "positive-count"),
            })
    localised = mine[~mine["generator"].isin(attacks)].copy()
    localised["generator"] = [parent_generator(c, attacks) for c in localised["case_id"]]
    localised = localised[localised["generator"].notna()]
    fidelity = []
    if not localised.empty:
        ftable = aggregate(localised, seed, n_boot, metrics=_FIDELITY_METRICS)
        for g in attacks:
            for d in (*DIRECTIONS, "all"):
                auc = _estimate(ftable, explainer, g, d, "fidelity-auc", 1)
                correct = _estimate(ftable, explainer, g, d, "correct-rate", 1)
                if correct.n == 0:
                    continue
                paper = PAPER_FIDELITY.get(g, {}) if d == DIRECTIONS[0] else {}
                n_correct = int(round(correct.value * correct.n)) if math.isfinite(correct.value) else 0
                fidelity.append({
                    "generator": g, "direction": d, "auc": auc,
                    "median_correct": _estimate(ftable, explainer, g, d, "fidelity-median-correct", 1),
                    "median_wrong": _estimate(ftable, explainer, g, d, "fidelity-median-wrong", 1),
                    "n_correct": n_correct, "n_wrong": correct.n - n_correct,
                    "paper_correct": paper.get("correct", math.nan),
                    "paper_wrong": paper.get("wrong", math.nan),
                })
    return Replication(run.run_id, explainer, pd.DataFrame(flips), pd.DataFrame(fidelity))


def _value(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{x:.2f}"


def _p(p: float) -> str:
    if not math.isfinite(p):
        return "–"
    return f"{p:.2g}" if p >= 1e-4 else "< 1e-4"


def _diff_text(diff: Estimate) -> str:
    """A paired difference; one that is 0 in every pair has no spread to put an interval on."""
    if diff.value == 0 and not math.isfinite(diff.ci_low):
        return "0.00 (every pair agrees)"
    return diff.text()


def _verdict_lower(diff: Estimate, p: float, alpha: float = 0.05) -> str:
    """Whether the paired difference says 'lower than norm', 'not lower' or cannot tell."""
    if not math.isfinite(p) or not math.isfinite(diff.value):
        return "cannot tell"
    if p < alpha and diff.value < 0:
        return "yes: lower"
    if p < alpha and diff.value > 0:
        return "no: higher"
    return "no difference shown"


def render(rep: Replication, alpha: float = 0.05) -> str:
    """The replication section as markdown (values 0..1, 95 % intervals in brackets)."""
    name = rep.explainer
    out = [f"## Against the paper (Praher et al., ISMIR 2021): {name}, run {rep.run_id}", ""]
    out += ["Ours: value [95 % interval] on this run's cases; paired differences and p-values are "
            f"{name} against norm on the same excerpts. The paper's figures are from its Table 1, "
            "Table 2 and Figure 4 (its own model and the Jamendo corpus, 160 excerpts per domain and "
            "direction), so a replication is of the *findings*, not the values.", ""]
    out += ["### Table 1: FR(3), the top-3 segments' share of flips", "",
            f"| domain | direction | n (songs) | {name} FR(3) | paper | in our interval | norm FR(3) "
            f"| {name} − norm | p | {name} below norm? |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rep.flips.to_dict("records"):
        cov = r["fr3"].covers(r["fr3_paper"]) if math.isfinite(r["fr3_paper"]) else None
        out.append(f"| {r['generator']} | {r['direction']} | {r['fr3'].n} ({r['fr3'].n_clusters}) "
                   f"| {r['fr3'].text()} | {_value(r['fr3_paper'])} | {'–' if cov is None else ('yes' if cov else 'no')} "
                   f"| {r['fr3_norm'].text()} | {_diff_text(r['fr3_diff'])} | {_p(r['fr3_p'])} "
                   f"| {_verdict_lower(r['fr3_diff'], r['fr3_p'], alpha)} |")
    out += ["", "### Table 2: flips with every positive-weight segment, against as many chosen by norm", "",
            f"| domain | direction | segments | {name} | paper | norm | paper norm | {name} − norm | p "
            f"| {name} below norm? |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rep.flips.to_dict("records"):
        out.append(f"| {r['generator']} | {r['direction']} | {r['positive_count'].text(1)} "
                   f"| {r['positive'].text()} | {_value(r['positive_paper'])} | {r['positive_norm'].text()} "
                   f"| {_value(r['positive_norm_paper'])} | {_diff_text(r['positive_diff'])} | {_p(r['positive_p'])} "
                   f"| {_verdict_lower(r['positive_diff'], r['positive_p'], alpha)} |")
    out += ["", "### Figure 4: does the explainer's own fidelity tell correct from wrong? (k = 1 localised cases)", "",
            "| cut from | direction | correct / wrong | fidelity AUC | median correct | median wrong "
            "| paper medians (correct / wrong) | AUC differs from 0.5? |",
            "|---|---|---|---|---|---|---|---|"]
    for r in rep.fidelity.to_dict("records"):
        cov = r["auc"].covers(0.5)
        verdict = "cannot tell (too few of a class)" if cov is None else ("no" if cov else "yes")
        paper = (f"~{r['paper_correct']:.2f} / ~{r['paper_wrong']:.2f}"
                 if math.isfinite(r["paper_correct"]) else "–")
        out.append(f"| {r['generator']} | {r['direction']} | {r['n_correct']} / {r['n_wrong']} "
                   f"| {r['auc'].text()} | {r['median_correct'].text()} | {r['median_wrong'].text()} "
                   f"| {paper} | {verdict} |")
    out.append("")
    return "\n".join(out)
