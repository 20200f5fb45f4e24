"""HTML report of one run: one self-contained file with plots and listenable explanations.

``write_report(run_dir)`` writes ``<run>/report.html``: the run header and provenance, the run's
leaderboard table, FR(k) curves beside the norm reference (paper Fig. 2), recovery histograms
(Fig. 3), fidelity of correct vs wrong explanations (Fig. 4) and per-case views with audio.
Figures are inline PNGs and audio inline 16-bit WAV at the task's sample rate, so the file
opens offline and loads nothing from the network.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from explbench import leaderboard as lb
from explbench.report import figures
from explbench.report.cases import shown_explainers, views
from explbench.report.encode import png_uri
from explbench.report.page import figure, page
from explbench.store import RunStore

__all__ = ["write_report"]


def _task(suite: dict) -> tuple[object | None, str | None]:
    """The run's task object (for sonify and the domain shape), or a note why not."""
    from explbench import registry

    try:
        cls = registry.tasks.get(suite["task"])
        return cls(**dict(suite.get("task_params") or {})), None
    except Exception as exc:  # the report must still be written
        return None, f"the task {suite.get('task')!r} could not be loaded ({exc}); audio " \
                     f"renderings of explanations are left out"


def _uri(fig: object) -> str | None:
    return png_uri(fig) if fig is not None else None


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
    explbench.leaderboard.NotARun
        When ``run_dir`` is not a finished run.
    """
    from explbench.segmentation import from_spec

    run = lb.load_run(run_dir)
    suite = run.suite
    records = pd.DataFrame(RunStore(run.folder).records())
    notes: list[str] = []
    task, why = _task(suite)
    if why:
        notes.append(why)
    m = run.metrics
    attack = lb.attack_generators(run)
    localised = sorted(set(m.loc[m["metric"] == "recovery", "generator"]))

    table = lb.build([run])
    info = lb.describe([run])
    prov = run.provenance
    ptask = prov.get("task", {}) or {}
    header = [("task", f"{run.task} (version {ptask.get('version')}, model {ptask.get('model_hash')})"),
              ("suite", suite.get("name")), ("run id", run.run_id), ("folder", str(run.folder)),
              ("segmentation / content / budget",
               f"{suite.get('segmentation')} / {suite.get('content')} / {suite.get('budget')}"),
              ("explainers", ", ".join(run.explainers)),
              ("cases", ", ".join(f"{g}: {v.get('n_cases')}" for g, v in run.cases.items())),
              ("seed", prov.get("seed", suite.get("seed"))), ("git revision", prov.get("git_revision")),
              ("python / torch", f"{prov.get('python')} / {(prov.get('packages') or {}).get('torch')}")]

    ok = records[records["status"] == "ok"] if not records.empty else records
    figs = [
        figure("Label-flip rate FR(k)", _uri(figures.fr_curves(m, attack, run.oracles)),
               "Share of adversarial cases whose label flips when the perturbation is applied on "
               "the explainer's top-k segments only; dashed: the norm reference (top-k by energy "
               "of the perturbation, an oracle); bands: 95 % bootstrap intervals (paper Fig. 2).",
               "No attack generator with flip rates in this run."),
        figure("Segment recovery", _uri(figures.recovery_histograms(m, localised)),
               "Cases whose cause is exactly k segments: share of cases in which the explainer's "
               "top-k holds j of the k true segments, with 95 % intervals (paper Fig. 3).",
               "No localised cases in this run."),
        figure("Fidelity of correct and wrong explanations",
               _uri(figures.fidelity_plot(ok, m, localised) if not ok.empty else None),
               "k = 1 cases: fidelity of explanations whose top-1 segment is the true one (green) "
               "and of the others (red); AUC = how well fidelity predicts correctness (paper Fig. 4).",
               "No k = 1 localised cases with fidelity scores in this run."),
    ]

    case_views = []
    if not ok.empty:
        shape = tuple(getattr(task, "domain_shape", ()) or ())
        try:
            if not shape:
                raise ValueError("the task's domain shape is unknown")
            segments = from_spec(str(suite.get("segmentation")), shape)  # type: ignore[arg-type]
        except ValueError as exc:
            segments = None
            notes.append(f"per-case views are left out: {exc}")
        if segments is not None:
            shown = shown_explainers(run.explainers, run.oracles, max_explainers)
            rate = int(getattr(task, "sample_rate", 22050))
            case_views, more = views(ok, run.cases, shown, segments, task, rate,
                                     n_localised, n_adversarial)
            notes += more
    failed = int((records["status"] == "failed").sum()) if not records.empty else 0
    if failed:
        notes.append(f"{failed} explanations failed and are not in the figures; see 'error' in "
                     f"records.jsonl")
    html_text = page(title=f"explbench report: {run.run_id}", header=header, provenance=prov,
                     table_html=lb.to_html_table(table), rule=str(info["rule"]), figures=figs,
                     cases=case_views, notes=notes)
    path = Path(out) if out is not None else run.folder / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(html_text, encoding="utf-8")
    tmp.replace(path)
    return path

