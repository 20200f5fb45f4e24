"""Leaderboards: finished runs of one protocol configuration → one table with 95 % intervals.

Rules (also printed in every Markdown leaderboard):

- Runs are grouped by their *protocol configuration* (:func:`protocol_config`): task, task
  version, model hash and data version (from provenance.json), segmentation, content type,
  budget, split, agnostic-fidelity sample count, the generators' settings, and the settings of
  every explainer the runs share (e.g. lime's ``n_samples``). Runs whose configuration differs
  are refused with the differing keys; they are never merged.
- When several runs hold the same explainer, the **newest** run (the one whose metrics.csv was
  written last) supplies all of that explainer's numbers.
- The rank is by the headline, FR(3) on the first attack generator pooled over directions:
  an explainer's rank is 1 + the number of explainers whose 95 % interval lies entirely above
  its own. Explainers whose intervals overlap can therefore share a rank, marked ``=r``.
- Oracles (records with ``oracle`` true, e.g. ``oracle-norm``) are shown but never ranked.
"""

from __future__ import annotations

import html
import json
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from explbench.stats import bootstrap_ci, seed_for
from explbench.store import RunStore
from explbench.summary import fmt, headline, to_markdown

#: arrows shown after a column title, by metric direction
ARROWS = {"higher": "↑", "lower": "↓", "none": ""}
HEADLINE_K = 3


class IncompatibleRuns(ValueError):
    """Runs with different protocol configurations cannot share a leaderboard."""


class NotARun(FileNotFoundError):
    """A folder that is not a (finished) run folder."""


def _finished_at(provenance: dict, folder: Path) -> float:
    """When the run finished (UNIX seconds): ``provenance["finished_at"]`` when recorded, else the
    modification time of its metrics.csv (meaningless for runs copied or checked out by git)."""
    stamp = provenance.get("finished_at")
    if stamp:
        from datetime import datetime

        try:
            return datetime.fromisoformat(stamp).timestamp()
        except ValueError:
            pass
    return (folder / "metrics.csv").stat().st_mtime


@dataclass
class Run:
    """A finished run folder, loaded.

    Attributes
    ----------
    folder : Path
    run_id : str
    suite : dict
        The resolved suite (``config.json["suite"]``).
    provenance : dict
    cases : dict
        ``cases.json``: per generator its cache key and case count.
    metrics : DataFrame
        metrics.csv.
    timing : DataFrame
        timing.csv (may be empty).
    finished : float
        Modification time of metrics.csv (what "newest" means).
    oracles : set of str
        Explainers whose records are flagged ``oracle``.
    seconds, queries : dict
        Per explainer, seconds and model queries of its successful explanations (records).
    """

    folder: Path
    run_id: str
    suite: dict
    provenance: dict
    cases: dict
    metrics: pd.DataFrame
    timing: pd.DataFrame
    finished: float
    oracles: set[str] = field(default_factory=set)
    seconds: dict[str, np.ndarray] = field(default_factory=dict)
    queries: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return str(self.suite.get("task"))

    @property
    def explainers(self) -> list[str]:
        return sorted(self.metrics["explainer"].dropna().unique())


# --------------------------------------------------------------------------- loading


def load_run(folder: str | Path) -> Run:
    """Load one run folder.

    Raises
    ------
    NotARun
        When the folder has no config.json (not a run) or no metrics.csv (not finished; the
        message says how to resume it).
    """
    folder = Path(folder)
    store = RunStore(folder)
    if not folder.is_dir():
        raise NotARun(f"{folder} does not exist or is not a folder")
    if not store.exists():
        raise NotARun(f"{folder} is not a run folder (no config.json); pass a folder written by "
                      f"'explbench run', or a folder that contains such run folders")
    if not (folder / "metrics.csv").exists():
        raise NotARun(f"{folder} is a run that has not finished (no metrics.csv); continue it with "
                      f"'explbench run --resume {folder}'")
    config = store.config()
    prov = store.read_json("provenance.json") if (folder / "provenance.json").exists() else {}
    cases = store.read_json("cases.json") if (folder / "cases.json").exists() else {}
    metrics = store.metrics()
    timing_path = folder / "timing.csv"
    try:
        timing = pd.read_csv(timing_path) if timing_path.exists() else pd.DataFrame()
    except pd.errors.EmptyDataError:
        timing = pd.DataFrame()
    oracles: set[str] = set()
    costs: dict[str, dict[str, list[float]]] = {"seconds": {}, "queries": {}}
    for r in store.records():
        if r.get("oracle"):
            oracles.add(str(r["explainer"]))
        if r.get("status") != "ok":
            continue
        for name, per in costs.items():
            if r.get(name) is not None:
                per.setdefault(str(r["explainer"]), []).append(float(r[name]))
    return Run(folder=folder, run_id=str(config.get("run_id", folder.name)),
               suite=config.get("suite", {}), provenance=prov, cases=cases, metrics=metrics,
               timing=timing, finished=_finished_at(prov, folder), oracles=oracles,
               seconds={k: np.asarray(v) for k, v in costs["seconds"].items()},
               queries={k: np.asarray(v) for k, v in costs["queries"].items()})


def _run_folders(root: Path) -> list[Path]:
    if (root / "config.json").exists():
        return [root]
    return sorted(p.parent for p in root.rglob("config.json") if not p.parent.name.startswith("."))


def collect(paths: str | Path | list[str | Path], task: str | None = None) -> list[Run]:
    """Finished runs in ``paths`` (run folders, or roots such as ``runs/`` searched recursively).

    Parameters
    ----------
    paths : path or list of paths
        A folder given directly that is not a finished run raises :class:`NotARun`; unfinished
        runs found while searching a root are skipped with a warning naming how to resume them.
    task : str, optional
        Keep only runs of this task.

    Returns
    -------
    list of Run
        Oldest first.

    Raises
    ------
    NotARun
        For a bad folder given directly, or when no finished run (of ``task``) is found.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    runs: list[Run] = []
    for p in map(Path, paths):
        if not p.exists():
            raise NotARun(f"{p} does not exist")
        if (p / "config.json").exists():
            runs.append(load_run(p))
            continue
        found = _run_folders(p)
        if not found:
            raise NotARun(f"{p} is not a run folder and contains no run folders (no config.json)")
        for f in found:
            try:
                runs.append(load_run(f))
            except NotARun as exc:
                warnings.warn(f"skipped: {exc}", stacklevel=2)
    if task is not None:
        runs = [r for r in runs if r.task == task]
    if not runs:
        where = ", ".join(str(p) for p in paths)
        raise NotARun(f"no finished runs{f' of task {task!r}' if task else ''} found in {where}")
    return sorted(runs, key=lambda r: (r.finished, r.run_id))


# --------------------------------------------------------------------------- configuration


def protocol_config(run: Run) -> dict[str, object]:
    """The flat protocol configuration of a run (dotted keys → values).

    Explainer settings appear as ``explainer.NAME.PARAM`` for every explainer of the run.
    """
    from explbench.suite import SuiteConfig

    suite = run.suite
    try:
        key = SuiteConfig.from_dict(suite).protocol_key()
    except TypeError:  # a suite written by another version: use what is there
        key = {k: suite.get(k) for k in ("task", "segmentation", "content", "budget", "split")}
        key["generators"] = suite.get("generators", {})
    task = run.provenance.get("task", {}) or {}
    flat: dict[str, object] = {k: v for k, v in key.items() if k != "generators"}
    flat["task_version"] = task.get("version")
    flat["model_hash"] = task.get("model_hash")
    flat["data_version"] = task.get("data_version")
    flat["agnostic_samples"] = suite.get("agnostic_samples")
    for g, params in (key.get("generators") or {}).items():
        for p, v in sorted(params.items()):
            flat[f"generator.{g}.{p}"] = v
        if not params:
            flat[f"generator.{g}"] = "{}"
    params = suite.get("explainer_params", {}) or {}
    for e in suite.get("explainers", []) or []:
        for p, v in sorted((params.get(e) or {}).items()):
            flat[f"explainer.{e}.{p}"] = v
    return flat


def _show(v: object) -> str:
    return json.dumps(v) if isinstance(v, (list, dict)) else ("(unset)" if v is None else str(v))


def config_differences(a: Run, b: Run) -> list[str]:
    """``"key: value-in-a vs value-in-b"`` for every protocol key on which two runs differ.

    Explainer settings are compared only for explainers both runs hold.
    """
    ca, cb = protocol_config(a), protocol_config(b)
    shared_expl = set(a.suite.get("explainers", [])) & set(b.suite.get("explainers", []))
    out = []
    for key in sorted(set(ca) | set(cb)):
        if key.startswith("explainer."):
            name = key.split(".")[1]
            if name not in shared_expl:
                continue
        va, vb = ca.get(key), cb.get(key)
        if va != vb:
            out.append(f"{key}: {_show(va)} vs {_show(vb)}")
    return out


def check_compatible(runs: list[Run], reference: Run | None = None) -> None:
    """Refuse runs whose protocol configuration differs from ``reference`` (default the first).

    Raises
    ------
    IncompatibleRuns
        Naming each refused run and exactly which keys differ, with both values.
    """
    if not runs:
        return
    ref = reference or runs[0]
    problems = []
    for r in runs:
        diff = config_differences(ref, r)
        if diff:
            problems.append(f"run {r.run_id} ({r.folder}) differs from {ref.run_id} ({ref.folder}): "
                            + "; ".join(diff))
    if problems:
        raise IncompatibleRuns(
            "runs with a different protocol configuration cannot share a leaderboard:\n  "
            + "\n  ".join(problems)
            + "\nchoose the runs with --runs, or the reference with --config-of RUN")


# --------------------------------------------------------------------------- the table


def attack_generators(run: Run) -> list[str]:
    """Generators with flip rates but no known cause, in the suite's order."""
    m = run.metrics
    flips = set(m.loc[m["metric"] == "flip-rate", "generator"])
    localised = set(m.loc[m["metric"] == "recovery", "generator"])
    adv = flips - localised
    order = [g for g in run.suite.get("generators", {}) if g in adv]
    return order + sorted(adv - set(order))


def newest_sources(runs: list[Run]) -> dict[str, Run]:
    """For every explainer, the newest run that holds it."""
    out: dict[str, Run] = {}
    for r in sorted(runs, key=lambda r: (r.finished, r.run_id)):
        for e in r.explainers:
            out[e] = r
    return out


def _arrow_titles() -> dict[str, str]:
    """Column-title prefix → arrow, from the metrics' declared directions."""
    from explbench.metrics import metric_info

    info = dict(zip(metric_info()["name"], metric_info()["direction"]))
    return {"FR(": ARROWS[info.get("flip-rate", "higher")],
            "pos-flip": ARROWS[info.get("positive-flip-rate", "higher")],
            "rec@": ARROWS[info.get("recovery", "higher")],
            "fid-AUC": ARROWS[info.get("fidelity-auc", "higher")],
            "queries": ARROWS[info.get("queries", "lower")],
            "s/expl": ARROWS[info.get("seconds", "lower")]}


def _with_arrow(title: str, arrows: dict[str, str]) -> str:
    for prefix, arrow in arrows.items():
        if title.startswith(prefix) and arrow:
            return f"{title} {arrow}"
    return title


def _value(m: pd.DataFrame, explainer: str, generator: str, metric: str, k: int | None,
           direction: str = "all") -> pd.Series | None:
    sel = m[(m["explainer"] == explainer) & (m["generator"] == generator) & (m["metric"] == metric)
            & (m["direction"] == direction)]
    sel = sel[sel["k"].isna()] if k is None else sel[sel["k"] == k]
    return None if sel.empty else sel.iloc[0]


def _cost(run: Run, explainer: str, what: str = "seconds") -> tuple[float, float, float, int]:
    """Mean cost per explanation over all generators with a bootstrap interval, and n."""
    s = getattr(run, what).get(explainer)
    if s is None or s.size == 0:
        return (math.nan, math.nan, math.nan, 0)
    rng = np.random.default_rng(seed_for("leaderboard", what, explainer, base=0))
    lo, hi = bootstrap_ci(s, rng, n_boot=1000)
    return (float(s.mean()), lo, hi, int(s.size))


def headline_values(runs: list[Run]) -> pd.DataFrame:
    """Per explainer: the headline value, interval and n, oracle flag and source run.

    Returns
    -------
    DataFrame with columns explainer, run_id, oracle, generator, value, ci_low, ci_high, n
    """
    sources = newest_sources(runs)
    rows = []
    for e, run in sorted(sources.items()):
        gens = attack_generators(runs[0]) or attack_generators(run)
        g = gens[0] if gens else None
        r = _value(run.metrics, e, g, "flip-rate", HEADLINE_K) if g else None
        rows.append({"explainer": e, "run_id": run.run_id, "oracle": e in run.oracles,
                     "generator": g,
                     "value": math.nan if r is None else float(r.value),
                     "ci_low": math.nan if r is None else float(r.ci_low),
                     "ci_high": math.nan if r is None else float(r.ci_high),
                     "n": 0 if r is None else int(r.n)})
    return pd.DataFrame(rows, columns=["explainer", "run_id", "oracle", "generator", "value",
                                       "ci_low", "ci_high", "n"])


def ranks(values: pd.DataFrame, higher_is_better: bool = True) -> dict[str, str]:
    """Rank labels from headline values with intervals.

    An explainer's rank is 1 + the number of (non-oracle) explainers whose interval lies
    entirely on the better side of its own (touching intervals overlap). Shared ranks are
    marked ``=r``; oracles get ``"oracle"``; explainers without a headline value ``"–"``.

    Parameters
    ----------
    values : DataFrame with columns explainer, oracle, value, ci_low, ci_high
    """
    out: dict[str, str] = {}
    ranked = values[~values["oracle"].astype(bool) & values["value"].notna()]
    lo = ranked["ci_low"].fillna(ranked["value"]).to_numpy(dtype=float)
    hi = ranked["ci_high"].fillna(ranked["value"]).to_numpy(dtype=float)
    if higher_is_better:
        better = lo[None, :] > hi[:, None]  # better[i, j]: j's interval is above i's
    else:
        better = hi[None, :] < lo[:, None]
    numbers = 1 + better.sum(axis=1)
    for name, num in zip(ranked["explainer"], numbers):
        shared = int((numbers == num).sum()) > 1
        out[str(name)] = f"={num}" if shared else str(num)
    for _, r in values.iterrows():
        if r["explainer"] not in out:
            out[str(r["explainer"])] = "oracle" if r["oracle"] else "–"
    return out


def _combined(runs: list[Run]) -> tuple[pd.DataFrame, pd.DataFrame]:
    sources = newest_sources(runs)
    metrics = pd.concat([r.metrics[r.metrics["explainer"] == e] for e, r in sources.items()],
                        ignore_index=True)
    timing = [r.timing[r.timing["explainer"] == e] for e, r in sources.items()
              if not r.timing.empty and "explainer" in r.timing]
    return metrics, (pd.concat(timing, ignore_index=True) if timing else pd.DataFrame())


def build(runs: list[Run], reference: Run | None = None) -> pd.DataFrame:
    """The leaderboard: one row per explainer, headline metrics with 95 % intervals.

    Columns: ``rank``, ``explainer``, then per attack generator FR(3) pooled and per direction
    and the positive-weight flip rate (with the norm selection beside it); per localised
    generator recovery@1/3/5 and fidelity-vs-correctness AUC; queries and seconds per
    explanation; ``n`` (cases of the headline) and ``run`` (source run). Titles carry ↑/↓.
    Rows: ranked explainers by rank then headline value, then unranked, then oracles.

    Raises
    ------
    IncompatibleRuns
        When the runs' protocol configurations differ.
    """
    if not runs:
        return pd.DataFrame()
    check_compatible(runs, reference)
    metrics, timing = _combined(runs)
    sources = newest_sources(runs)
    base = headline(metrics, timing if not timing.empty else None)
    hv = headline_values(runs).set_index("explainer")
    rank = ranks(hv.reset_index())
    gens = attack_generators(runs[0])
    directions = sorted(d for d in metrics["direction"].dropna().unique() if d != "all")
    rows = []
    for _, row in base.iterrows():
        e = row["explainer"]
        run = sources[e]
        out: dict[str, str] = {"rank": rank.get(e, "–"), "explainer": e}
        for col in base.columns[1:]:
            if col in ("queries", "s/expl"):
                continue
            out[col] = row[col]
            for g in gens:
                if col == f"FR({HEADLINE_K}) {g}":
                    for d in directions:
                        r = _value(metrics, e, g, "flip-rate", HEADLINE_K, d)
                        out[f"FR({HEADLINE_K}) {g} [{d}]"] = "–" if r is None else fmt(r.value, r.ci_low, r.ci_high)
        q, lo, hi, _ = _cost(run, e, "queries")
        out["queries"] = fmt(q, lo, hi, digits=0)
        s, lo, hi, _ = _cost(run, e, "seconds")
        out["s/expl"] = fmt(s, lo, hi, digits=3)
        out["n"] = str(int(hv.loc[e, "n"])) if e in hv.index else "–"
        out["run"] = run.run_id
        rows.append(out)
    table = pd.DataFrame(rows).fillna("–")

    def order(r: pd.Series) -> tuple:
        label = r["rank"]
        v = hv.loc[r["explainer"], "value"] if r["explainer"] in hv.index else math.nan
        if label == "oracle":
            return (2, 0, r["explainer"])
        if label == "–":
            return (1, 0, r["explainer"])
        return (0, int(label.lstrip("=")), -v, r["explainer"])

    table = table.loc[sorted(table.index, key=lambda i: order(table.loc[i]))].reset_index(drop=True)
    arrows = _arrow_titles()
    return table.rename(columns={c: _with_arrow(c, arrows) for c in table.columns})


def build_numeric(runs: list[Run], reference: Run | None = None) -> pd.DataFrame:
    """The leaderboard's numbers in tidy form (what the CSV holds).

    Returns
    -------
    DataFrame with columns rank, explainer, oracle, run_id, generator, direction, metric, k,
    value, ci_low, ci_high, n — the headline-table metrics of every explainer from its source run.
    """
    check_compatible(runs, reference)
    metrics, _ = _combined(runs)
    hv = headline_values(runs)
    rank = ranks(hv)
    oracle = dict(zip(hv["explainer"], hv["oracle"]))
    source = dict(zip(hv["explainer"], hv["run_id"]))
    wanted = (((metrics["metric"] == "flip-rate") & (metrics["k"] == HEADLINE_K))
              | metrics["metric"].isin(["positive-flip-rate", "positive-flip-rate-norm"])
              | (metrics["metric"].isin(["recovery"]) & (metrics["direction"] == "all"))
              | ((metrics["metric"] == "fidelity-auc") & (metrics["direction"] == "all")))
    m = metrics[wanted].copy()
    m = m[(m["direction"] == "all") | (m["metric"] == "flip-rate")]
    secs = []
    for e, run in newest_sources(runs).items():
        for what in ("queries", "seconds"):
            s, lo, hi, n = _cost(run, e, what)
            if n:
                secs.append({"generator": "all", "direction": "all", "explainer": e, "metric": what,
                             "k": pd.NA, "value": s, "ci_low": lo, "ci_high": hi, "n": n})
    if secs:
        m = pd.concat([m, pd.DataFrame(secs)], ignore_index=True)
    m["rank"] = m["explainer"].map(rank)
    m["oracle"] = m["explainer"].map(oracle).fillna(False).astype(bool)
    m["run_id"] = m["explainer"].map(source)
    cols = ["rank", "explainer", "oracle", "run_id", "generator", "direction", "metric", "k",
            "value", "ci_low", "ci_high", "n"]
    m["k"] = m["k"].astype("Int64")
    return m[cols].sort_values(["explainer", "generator", "metric", "direction", "k"],
                               kind="mergesort").reset_index(drop=True)


# --------------------------------------------------------------------------- rendering


RANK_RULE = ("Rank by FR({k}) on {g} (both directions pooled): 1 + the number of explainers whose "
             "95 % CI lies entirely above; overlapping CIs share a rank (marked =r). Oracles are "
             "shown, never ranked. ↑ higher is better, ↓ lower is better; values are "
             "point estimate [95 % bootstrap CI].")


def describe(runs: list[Run]) -> dict[str, object]:
    """Header facts: task, configuration, runs used (with explainers and case counts)."""
    ref = runs[0]
    sources = newest_sources(runs)
    used = []
    for r in runs:
        expl = sorted(e for e, s in sources.items() if s is r)
        if expl:
            n = {g: v.get("n_cases") for g, v in r.cases.items()}
            used.append({"run_id": r.run_id, "folder": str(r.folder), "explainers": expl, "cases": n})
    gens = attack_generators(ref)
    return {"task": ref.task, "config": protocol_config(ref), "runs": used,
            "rule": RANK_RULE.format(k=HEADLINE_K, g=gens[0] if gens else "(no attack generator)")}


def to_md(table: pd.DataFrame, runs: list[Run]) -> str:
    """Markdown: a short header (task, configuration, runs used, n, rank rule) and the table."""
    info = describe(runs)
    cfg = info["config"]
    lines = [f"# Leaderboard: {info['task']}", "",
             "**Configuration:** " + ", ".join(f"{k} = `{_show(v)}`" for k, v in cfg.items()), "",
             "**Runs used** (each explainer's numbers come from the newest run that holds it):", ""]
    for u in info["runs"]:
        cases = ", ".join(f"{g}: {n}" for g, n in u["cases"].items())
        lines.append(f"- `{u['run_id']}`: {', '.join(u['explainers'])} (cases {cases})")
    lines += ["", str(info["rule"]) + " `n` = cases behind the headline.", "", to_markdown(table), ""]
    return "\n".join(lines)


def to_html_table(table: pd.DataFrame) -> str:
    """An HTML ``<table>`` with every cell escaped."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = []
    for _, r in table.iterrows():
        cls = ' class="oracle"' if str(r.iloc[0]) == "oracle" else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>")
    return f'<table class="leaderboard"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def to_html(table: pd.DataFrame, runs: list[Run]) -> str:
    """A small standalone HTML page (no external resources) with the header and table."""
    info = describe(runs)
    runs_html = "".join(f"<li><code>{html.escape(u['run_id'])}</code>: "
                        f"{html.escape(', '.join(u['explainers']))}</li>" for u in info["runs"])
    cfg = ", ".join(f"{html.escape(k)} = {html.escape(_show(v))}" for k, v in info["config"].items())
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
            f"<title>Leaderboard: {html.escape(info['task'])}</title></head><body>"
            f"<h1>Leaderboard: {html.escape(info['task'])}</h1><p><b>Configuration:</b> {cfg}</p>"
            f"<ul>{runs_html}</ul><p>{html.escape(str(info['rule']))}</p>"
            f"{to_html_table(table)}</body></html>\n")


def write(runs: list[Run], out_dir: str | Path = "leaderboards",
          reference: Run | None = None) -> tuple[Path, Path]:
    """Write ``<out_dir>/<task>.md`` and ``<task>.csv`` (runs of the ``default`` suite), or
    ``<task>-<suite>.md`` / ``.csv`` for any other suite, so that a smoke run never overwrites
    the leaderboard of the default suite; returns both paths."""
    table = build(runs, reference)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ref = reference or runs[0]
    suite = str(ref.suite.get("name", "default"))
    stem = runs[0].task if suite == "default" else f"{runs[0].task}-{suite}"
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)
    md, csv = out / f"{stem}.md", out / f"{stem}.csv"
    md.write_text(to_md(table, runs))
    build_numeric(runs, reference).to_csv(csv, index=False, float_format="%.6g", lineterminator="\n")
    return md, csv
