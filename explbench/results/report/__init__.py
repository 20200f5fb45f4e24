"""HTML report of one run: one self-contained file with plots and listenable explanations.

``write_report(run_dir)`` writes ``<run>/report.html``: the run header and provenance, the power
statement with n and n_clusters, the run's leaderboard, the pairwise tests as heat maps, the
model-randomisation check (when ``sanity.csv`` exists), FR(k) curves beside the reference
selectors (paper Fig. 2), recovery histograms (Fig. 3), fidelity of correct vs wrong
explanations (Fig. 4), the attack statistics, how to read the numbers, and per-case views with
audio. Cases come from the run folder (``cases/<key>.npz``) first, then the case cache; figures
are inline PNGs and audio inline 16-bit WAV, so the file opens offline and loads nothing from
the network.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import pandas as pd

from explbench.results import board as lb
from explbench.results.compat import identity_of
from explbench.results import render
from explbench.results.report import figures
from explbench.results.report.cases import shown_explainers, views
from explbench.results.report.encode import png_uri
from explbench.results.report.page import data_table, definitions, figure, note, page, section
from explbench.store.runs import Run, attack_generators, load_run, localised_generators, n_clusters

__all__ = ["write_report"]

#: the columns of sanity.csv
SANITY_COLUMNS = ("explainer", "layer", "rho", "ci_low", "ci_high", "n")
#: attack statistics shown as columns, when a generator reports them
STAT_KEYS = ("n_requested", "n_cases", "excerpts_drawn", "attempted", "succeeded", "success_rate",
             "recheck_failed", "not_confined", "parents", "mean_amplitude", "attack_seconds",
             "seconds")


def _task(suite: dict) -> tuple[object | None, str | None]:
    """The run's task object (to render explanations to sound), or a note why not."""
    from explbench.api import registry

    try:
        cls = registry.tasks.get(suite["task"])
        return cls(**dict(suite.get("task_params") or {})), None
    except Exception as exc:  # the report must still be written
        return None, (f"the task {suite.get('task')!r} could not be loaded ({exc}); explanations "
                      f"are not rendered to sound (a task from a plug-in needs --plugin FILE; the "
                      f"run keeps a copy of its plug-ins in RUN/plugins/)")


def _time_axis(task: object | None, ptask: dict) -> int | None:
    """The domain's time axis: from the task when it loads, else from the run identity."""
    from explbench.api.task import time_axis_of

    source = task if task is not None and getattr(task, "domain_axes", ()) else None
    axes = getattr(source, "domain_axes", None) or ptask.get("domain_axes")
    shape = getattr(source, "domain_shape", None) or ptask.get("domain_shape")
    try:
        return time_axis_of(axes, shape)
    except ValueError:
        return None


def _uri(fig: object) -> str | None:
    return png_uri(fig) if fig is not None else None


def _sizes(run: Run) -> str:
    parts = []
    for g, v in run.cases.items():
        n, c = n_clusters(run, g)
        parts.append(f"{g}: {v.get('n_cases', n)} cases, {c} clusters")
    return "; ".join(parts) or "none"


def sanity_section(run: Run) -> str:
    """The model-randomisation table from ``RUN/sanity.csv``, or how to make it."""
    path = run.folder / "sanity.csv"
    title = "Model-randomisation sanity check"
    if not path.exists():
        return section(title, note(f"This run has no sanity.csv; make it with "
                                   f"'explbench sanity {run.folder}'."))
    try:
        t = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        return section(title, note(f"{path} could not be read: {exc}"))
    missing = [c for c in SANITY_COLUMNS if c not in t.columns]
    if missing:
        return section(title, note(f"{path} lacks the column(s) {', '.join(missing)}"))
    layers = list(dict.fromkeys(t["layer"].astype(str)))
    rows = []
    for e, g in t.groupby("explainer", sort=True):
        row = {"explainer": str(e)}
        for _, r in g.iterrows():
            row[str(r["layer"])] = lb.fmt(r["rho"], r["ci_low"], r["ci_high"])
        row["n"] = str(int(g["n"].max())) if g["n"].notna().any() else "–"
        rows.append(row)
    table = pd.DataFrame(rows, columns=["explainer", *layers, "n"]).fillna("–")
    intro = ("Spearman rank correlation ρ (mean over cases, 95 % interval) between an explainer's "
             "segment weights for the trained model and for the model with its layers "
             "re-initialised, cumulatively from the top (column: the layers re-initialised; 'none' "
             "= none). An explainer that explains the model shows ρ falling towards 0 as layers "
             "are randomised; ρ that stays near 1 means the explanation follows the input, not "
             "the model.")
    return section(title, f'<div class="scroll">{data_table(table)}</div>', intro)


def _stat_value(v: object) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return "–" if not math.isfinite(v) else f"{v:.3g}"
    return str(v)


def attack_section(run: Run) -> str:
    """The generators' statistics from cases.json (success rates, iterations, seconds)."""
    if not run.cases:
        return section("Attack statistics", note("This run has no cases.json."))
    present = [k for k in STAT_KEYS if any(k in (v.get("stats") or {}) for v in run.cases.values())]
    rows = []
    for g, v in run.cases.items():
        st = v.get("stats") or {}
        n, c = n_clusters(run, g)
        row = {"generator": g, "cases in records": n, "clusters": c}
        row.update({k: _stat_value(st.get(k)) for k in present})
        row["settings"] = json.dumps(st.get("config", {}), sort_keys=True, default=str)
        row["message"] = str(st.get("message", ""))
        rows.append(row)
    table = pd.DataFrame(rows)
    full = json.dumps({g: v.get("stats") for g, v in run.cases.items()}, indent=1, sort_keys=True,
                      default=str)
    body = (f'<div class="scroll">{data_table(table)}</div><details><summary>every statistic '
            f'(cases.json)</summary><pre>{html.escape(full)}</pre></details>')
    intro = ("How the cases were made: excerpts drawn and attacked, attacks that succeeded (the "
             "label flipped and a re-check on the stored input agreed), and the time taken. Only "
             "successful attacks become cases, so the cases are the excerpts the attack could "
             "flip.")
    return section("Attack statistics", body, intro)


def reading_section(run: Run) -> str:
    """Metric definitions and how to read n, n_clusters, '–', intervals and the oracle."""
    from explbench.metrics import metric_info
    from explbench.stats.clusters import MIN_CLUSTERS

    info = metric_info()
    used = {str(m) for m in run.metrics["metric"].unique()}
    used |= {"recovery-dist" for m in used if m.startswith("recovery-dist-")}
    items = [(str(r["name"]) + {"higher": " (higher is better)", "lower": " (lower is better)"}
              .get(str(r["direction"]), ""), str(r["description"]))
             for _, r in info.iterrows() if r["name"] in used]
    terms = [
        ("n, n_clusters", "n is the number of cases behind a value; n_clusters the number of "
         "independent units among them (for svd-synth: songs). Excerpts of one song share voice, "
         "accompaniment and level, so intervals resample whole clusters; rates use a Clopper-Pearson "
         f"interval on the effective n. With fewer than {MIN_CLUSTERS} clusters a bootstrap "
         "interval is not reported: the value is shown with 'n too small'."),
        ("–", "The value does not exist: no cases of that kind (generator, direction or k), an "
         "explainer that reports no fidelity score of its own, a positive-weight flip of an "
         "explainer whose weights are never negative, an AUC without enough correct and wrong "
         "explanations, or an oracle's rank (oracles are never ranked)."),
        ("Why the oracle can score below LIME", "oracle-norm ranks segments by the energy of the "
         "perturbation δ in them (sum of δ²). The label flips when the model reacts, not where δ "
         "is largest: a segment with little energy can matter more to the model than one with "
         "much, and an explainer that queries the model (LIME, occlusion, gradients) can find "
         "the segments the model is sensitive to. The oracle is a reference that sees δ, not an "
         "upper bound; flip-rate-absmean is a second reference that ranks segments by mean |δ|."),
        ("Ranks", "From paired tests of FR(3) on the same cases, Holm-adjusted over all pairs "
         "(see the heat map); an explainer's rank is 1 + the number of explainers significantly "
         "better. Overlap of two marginal intervals is not a test and ranks nothing."),
        ("failed", "A failed explanation counts as no flip and nothing recovered; 'failed' "
         "shows failed / all explanations of the explainer."),
    ]
    return section("Reading the numbers", definitions(terms) + "<h3>Metrics</h3>" + definitions(items))


def write_report(run_dir: str | Path, out: str | Path | None = None, n_localised: int = 4,
                 n_adversarial: int = 2, max_explainers: int = 3) -> Path:
    """Write the run's HTML report.

    Parameters
    ----------
    run_dir : path
        A finished run folder.
    out : path, optional
        Output file (default ``<run_dir>/report.html``).
    n_localised, n_adversarial : int
        How many cases get a per-case view.
    max_explainers : int
        How many explainers are drawn and rendered to sound per case (keeps the file small).

    Returns
    -------
    Path of the written file.

    Raises
    ------
    explbench.store.runs.NotARun
        When ``run_dir`` is not a finished run.
    """
    run = load_run(run_dir)
    suite = run.suite
    records = run.records
    notes: list[str] = []
    task, why = _task(suite)
    if why:
        notes.append(why)
    m = run.metrics
    attack = attack_generators(run)
    localised = localised_generators(run)

    board = lb.make_board([run])
    info = lb.describe(board)
    prov = run.provenance
    ptask = identity_of(prov)  # the one run identity: model, domain, sample rate
    header = [("task", f"{run.task} (version {ptask.get('task_version')}, model {ptask.get('model')})"),
              ("suite", suite.get("name")), ("run id", run.run_id), ("folder", str(run.folder)),
              ("segmentation / content / budget",
               f"{suite.get('segmentation')} / {suite.get('content')} / {suite.get('budget')}"),
              ("explainers", ", ".join(run.explainers)),
              ("cases", _sizes(run)),
              ("seed", prov.get("seed", suite.get("seed"))), ("git revision", prov.get("git_revision")),
              ("python / torch", f"{prov.get('python')} / {(prov.get('packages') or {}).get('torch')}")]

    sections = [section("Power and sample size",
                        "".join(note(str(info[k])) for k in ("power", "unpaired", "untested") if info[k]))]
    sections.append(section("Leaderboard of this run",
                            f'<div class="scroll">{render.to_html_table(board.table)}</div>',
                            str(info["rule"])))
    maps = "".join(f"<h3>{html.escape(g)}</h3><p>{html.escape(render.heatmap_caption(r))}</p>"
                   f'<div class="scroll">{render.heatmap_html(r)}</div>'
                   for g, r in board.rankings.items())
    sections.append(section("Pairwise tests (heat map)", maps or note("No attack generator in this run.")))
    sections.append(sanity_section(run))

    ok = records[records["status"] == "ok"] if not records.empty else records
    sections += [
        figure("Label-flip rate FR(k)", _uri(figures.fr_curves(m, attack, run.oracles)),
               "Share of adversarial cases whose label flips when the perturbation is applied on "
               "the explainer's top-k segments only; black: the reference selectors (dashed: top-k "
               "by energy of δ, which is what oracle-norm does; dash-dotted: top-k by mean |δ|); bands: "
               "95 % intervals, left out where there were too few clusters (paper Fig. 2).",
               "No attack generator with flip rates in this run."),
        figure("Segment recovery", _uri(figures.recovery_histograms(m, localised)),
               "Cases whose cause is exactly k segments: share of cases in which the explainer's "
               "top-k holds j of the k true segments (ties scored by their expectation), with 95 % "
               "intervals (paper Fig. 3).",
               "No localised cases in this run."),
        figure("Fidelity of correct and wrong explanations",
               _uri(figures.fidelity_plot(ok, m, localised) if not ok.empty else None),
               "k = 1 cases: fidelity of explanations whose top-1 segment is the true one (green) "
               "and of the others (red); AUC = how well fidelity predicts correctness (paper Fig. 4). "
               "The explainer's own score and the harness's agnostic fidelity are shown apart.",
               "No k = 1 localised cases with fidelity scores in this run."),
        attack_section(run),
        reading_section(run),
    ]

    case_views = []
    if not ok.empty:
        shown = shown_explainers(run.explainers, run.oracles, max_explainers)
        rate = int(getattr(task, "sample_rate", 0) or ptask.get("sample_rate") or 22050)
        case_views, more = views(ok, run.cases, shown, str(suite.get("segmentation", "grid:5x4")),
                                 task, rate, n_localised, n_adversarial, run_folder=run.folder,
                                 time_axis=_time_axis(task, ptask))
        notes += more
    failed = int((records["status"] != "ok").sum()) if not records.empty else 0
    if failed:
        notes.append(f"{failed} explanations failed: they count as no flip and nothing recovered, "
                     f"and are not in the fidelity figure; see 'error' in records.jsonl")
    html_text = page(title=f"explbench report: {run.run_id}", header=header, provenance=prov,
                     sections=sections, cases=case_views, notes=notes)
    path = Path(out) if out is not None else run.folder / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(html_text, encoding="utf-8")
    tmp.replace(path)
    return path
