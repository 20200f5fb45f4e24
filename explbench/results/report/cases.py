"""Per-case views: the explained log-mel with top-k segments and the true cause, and audio.

For each chosen case the report shows the modified input (what the explainers explained), each
shown explainer's top-k segments outlined, the true cause overlaid (the exact segments S* of a
localised case; for an adversarial case the top-k segments by energy of δ), and audio players
for the original excerpt, the modified excerpt (when the case has a waveform for it), the true
cause and each explanation rendered back to sound with ``task.sonify``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from explbench.core.cases import Case, load_cases  # noqa: E402
from explbench.metrics.records import has_truth  # noqa: E402
from explbench.results.ranking import HEADLINE_K  # noqa: E402
from explbench.results.report.encode import label, png_uri, wav_uri  # noqa: E402
from explbench.core.segmentation import Segmentation, top_k  # noqa: E402
from explbench.store.provenance import cache_dir  # noqa: E402

EXPLAINER_COLOUR = "cyan"
TRUTH_COLOUR = "lime"
#: how many segments an adversarial case view outlines: the headline k
ADVERSARIAL_K = HEADLINE_K


@dataclass
class CaseView:
    """One case as the report shows it.

    Attributes
    ----------
    case_id, generator : str
    title : str
        Plain-text description (escaped by the page).
    image : str
        PNG data URI of the spectrogram panels.
    audio : list of (str, str)
        (caption, WAV data URI) pairs.
    notes : list of str
        Plain-text remarks (e.g. why a player is missing).
    """

    case_id: str
    generator: str
    title: str
    image: str
    audio: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def select(records: pd.DataFrame, n_localised: int = 4, n_adversarial: int = 2) -> list[str]:
    """Case ids to show: localised k = 1 and k = 3 cases (half each, when there are enough),
    then adversarial cases spread over the attack generators; in record order."""
    ok = records[records["status"] == "ok"].drop_duplicates("case_id")
    size = ok["true_segments"].map(lambda t: len(t) if has_truth(t) else 0)
    picks: list[str] = []
    k1 = list(ok.loc[size == 1, "case_id"])
    k3 = list(ok.loc[size == 3, "case_id"])
    half = n_localised // 2
    picks += k1[:half] + k3[: n_localised - min(half, len(k1))]
    rest = [c for c in k1 + k3 if c not in picks]
    picks += rest[: max(0, n_localised - len(picks))]
    adv = ok[size == 0]
    by_gen = [list(rows["case_id"]) for _, rows in adv.groupby("generator", sort=False)]
    i = 0
    while len(picks) < n_localised + n_adversarial and any(i < len(c) for c in by_gen):
        for ids in by_gen:
            if i < len(ids) and len(picks) < n_localised + n_adversarial:
                picks.append(ids[i])
        i += 1
    return picks


def load_run_cases(cases_json: dict, generators: set[str],
                   run_folder: Path | None = None) -> tuple[dict[str, Case], list[str]]:
    """Cases of ``generators``: from the run folder first (``cases.json``'s ``file``, by default
    ``cases/<key>.npz``), then from the content-addressed cache; notes say what could not be
    found or read.

    Parameters
    ----------
    cases_json : dict
        The run's cases.json (generator → ``cache_key``, ...).
    generators : set of str
    run_folder : Path, optional
        The run folder.
    """
    out: dict[str, Case] = {}
    notes = []
    for g in sorted(generators):
        key = (cases_json.get(g) or {}).get("cache_key")
        if key is None:
            notes.append(f"the run does not record which cases {g} made (no cache key in cases.json)")
            continue
        stored = (cases_json.get(g) or {}).get("file") or f"cases/{key}.npz"
        places = ([run_folder / stored] if run_folder is not None else []) + \
            [cache_dir() / "cases" / f"{key}.npz"]
        path = next((p for p in places if p.exists()), None)
        if path is None:
            notes.append(f"the cases of {g} are neither in the run folder ({places[0]}) nor in the "
                         f"case cache ({places[-1]}), so they have no per-case view; resuming the "
                         f"run ('explbench run --resume RUN') regenerates them")
            continue
        try:
            cases, _ = load_cases(path)
        except Exception as exc:  # a damaged file must not stop the report
            notes.append(f"the cases of {g} could not be read from {path}: {exc}")
            continue
        out.update({c.case_id: c for c in cases})
    return out, notes


def _outline(ax: plt.Axes, segments: Segmentation, chosen: np.ndarray, colour: str, style: str,
             width: float) -> None:
    """Outline each chosen segment (padded so that edges on the border are drawn too)."""
    n_rows, n_cols = segments.shape
    xs, ys = np.arange(-1, n_cols + 1), np.arange(-1, n_rows + 1)
    for s in chosen:
        padded = np.pad(segments.masks[int(s)].numpy(), 1)
        ax.contour(xs, ys, padded, levels=[0.5], colors=[colour], linestyles=[style],
                   linewidths=[width])
    ax.set_xlim(-0.5, n_cols - 0.5)
    ax.set_ylim(-0.5, n_rows - 0.5)


def _panels(case: Case, shown: list[tuple[str, np.ndarray]], truth: np.ndarray, k: int,
            segments: Segmentation, truth_label: str) -> str:
    n = max(1, len(shown))
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), squeeze=False)
    for ax, (name, w) in zip(axes[0], shown or [("(no explanation)", None)]):
        ax.imshow(case.x_mod, origin="lower", aspect="auto", cmap="magma", interpolation="nearest")
        _outline(ax, segments, truth, TRUTH_COLOUR, "--", 2.6)
        if w is not None:
            chosen = top_k(w, k)
            _outline(ax, segments, chosen, EXPLAINER_COLOUR, "-", 1.6)
            hits = len(set(map(int, chosen)) & set(map(int, truth)))
            ax.set_title(f"{label(name)}: {hits}/{k} of the cause", fontsize=9)
        ax.set_xlabel("frame")
    axes[0][0].set_ylabel("mel band")
    handles = [Line2D([], [], color=EXPLAINER_COLOUR, linewidth=1.6, label=f"explainer's top-{k}"),
               Line2D([], [], color=TRUTH_COLOUR, linestyle="--", linewidth=2.6, label=truth_label)]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, bbox_to_anchor=(0.5, -0.06))
    fig.tight_layout()
    return png_uri(fig)


def _sonify(task: object, audio: np.ndarray, segments: Segmentation, chosen: np.ndarray) -> np.ndarray:
    z = np.zeros(segments.d, dtype=np.float32)
    z[np.asarray(chosen, dtype=int)] = 1.0
    mask = segments.mask(z).numpy()
    return task.sonify(audio, mask)  # type: ignore[attr-defined]


def view(case: Case, rows: pd.DataFrame, explainers: list[str], segments: Segmentation,
         task: object | None, sample_rate: int) -> CaseView:
    """The view of one case for the given explainers (rows: the case's ok records)."""
    localised = case.true_segments is not None and len(case.true_segments) > 0
    if localised:
        truth = np.asarray(case.true_segments, dtype=int)
        k = truth.size
        truth_label = f"true cause S* ({k} segment{'s' if k > 1 else ''})"
        title = f"{case.case_id} — localised case, cause in {k} segment(s): " + \
            ", ".join(segments.names[i] for i in truth)
    else:
        k = ADVERSARIAL_K
        truth = top_k(segments.energy(case.delta), k)
        truth_label = f"top-{k} segments by energy of δ (norm)"
        title = f"{case.case_id} — adversarial case ({case.domain} attack); the cause is spread " \
                f"over the input, the norm's top-{k} are shown"
    by_name = {str(r["explainer"]): np.asarray(r["weights"], dtype=float) for _, r in rows.iterrows()}
    shown = [(e, by_name[e]) for e in explainers if e in by_name]
    image = _panels(case, shown, truth, k, segments, truth_label)
    v = CaseView(case.case_id, case.generator, title, image)
    if case.audio is None:
        v.notes.append("this case holds no waveform, so there is nothing to listen to")
        return v
    v.audio.append(("original excerpt", wav_uri(case.audio, sample_rate)))
    if case.audio_mod is not None and case.true_segments is None:
        v.audio.append(("modified excerpt (what the explainers explained)", wav_uri(case.audio_mod, sample_rate)))
    elif task is not None and hasattr(task, "resynthesize"):
        try:
            mod = task.resynthesize(case.audio, case.x_mod)  # type: ignore[attr-defined]
            v.audio.append(("modified excerpt (resynthesized from its log-mel, original phase)",
                            wav_uri(mod, sample_rate)))
        except NotImplementedError:
            v.notes.append(f"the modified input exists only in the {case.domain} domain, so it has no player")
    else:
        v.notes.append(f"the modified input exists only in the {case.domain} domain, so it has no player")
    if task is None:
        v.notes.append("the task could not be loaded, so explanations are not rendered to sound")
        return v
    try:
        if localised:
            v.audio.append((f"true cause: the original, only the {k} cause segment(s) kept",
                            wav_uri(_sonify(task, case.audio, segments, truth), sample_rate)))
        for name, w in shown:
            v.audio.append((f"{name}: the original, only its top-{k} segments kept",
                            wav_uri(_sonify(task, case.audio, segments, top_k(w, k)), sample_rate)))
    except NotImplementedError as exc:
        v.notes.append(f"explanations are not rendered to sound: {exc}")
    return v


def views(records: pd.DataFrame, cases_json: dict, explainers: list[str], segmentation: str,
          task: object | None, sample_rate: int, n_localised: int = 4, n_adversarial: int = 2,
          run_folder: Path | None = None, time_axis: int | None = None) -> tuple[list[CaseView], list[str]]:
    """Views of a handful of cases (see :func:`select`) and notes on anything left out.

    The segmentation is rebuilt from its spec, the shape of the stored cases and ``time_axis``
    (the domain's, as the run recorded it), so the views need no task; the task (when it loads)
    only renders explanations back to sound.
    """
    from explbench.core.segmentation import from_spec

    ids = select(records, n_localised, n_adversarial)
    gens = set(records.loc[records["case_id"].isin(ids), "generator"])
    cases, notes = load_run_cases(cases_json, gens, run_folder)
    out = []
    segments: dict[tuple[int, ...], Segmentation] = {}
    for cid in ids:
        if cid not in cases:
            continue
        case = cases[cid]
        shape = tuple(int(s) for s in np.shape(case.x_mod))
        if shape not in segments:
            try:
                segments[shape] = from_spec(segmentation, shape, time_axis=time_axis)
            except ValueError as exc:
                notes.append(f"case {cid}: the segmentation {segmentation!r} cannot be rebuilt for "
                             f"its shape {shape}: {exc}")
                continue
        rows = records[(records["case_id"] == cid) & (records["status"] == "ok")]
        out.append(view(case, rows, explainers, segments[shape], task, sample_rate))
    return out, notes


def shown_explainers(explainers: list[str], oracles: set[str], limit: int = 3) -> list[str]:
    """Explainers drawn in the case views: real ones first, then random, never oracles."""
    real = [e for e in sorted(explainers) if e not in oracles and e != "random"]
    rest = [e for e in sorted(explainers) if e == "random"]
    return (real + rest)[:limit]


__all__ = ["CaseView", "load_run_cases", "select", "shown_explainers", "view", "views"]
