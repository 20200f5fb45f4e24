"""Verifying a submission against a published bundle (DESIGN §11, "a submission is verifiable").

:func:`verify_submission` answers, one :class:`Check` each: ``archive``, ``records`` and
``plug-ins`` (what the file proves about itself, :mod:`explbench.results.submission`);
``metrics`` (recomputed from the records), ``cases`` (the manifest against the bundle's, case
by case) and ``identity`` (task, model, data, task parameters against the bundle's); then, on
the model and running the archive's plug-in code, ``rescore`` (every record's flips and counts
follow from its weights) and ``rerun`` (a seeded sample of explanations made again).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path


from explbench import __version__
from explbench.results.submission import METRICS_FILE, RECORDS_FILE, Submission, read_submission
from explbench.results.submission_checks import Check, check_archive, check_plugins, check_records
from explbench.run.manifest import MANIFEST_FILE, compare_manifests, digest, read_manifest
from explbench.store.run_store import RunStore
from explbench.results.rerun import Log, rerun_checks

#: relative and absolute tolerance of re-run weights (see docs/submitting.md)
RTOL, ATOL = 1e-5, 1e-7
#: tolerance of recomputed metric values (after the 6-digit formatting of metrics.csv)
METRIC_TOL = 1e-9
#: the run-identity fields a submission must share with the board
IDENTITY_FIELDS = ("task", "model", "data", "task_params")



@dataclass(frozen=True)
class Bundle:
    """The published side: a committed bundle's folder, manifest and run identity."""

    path: Path
    manifest: dict
    identity: dict


def read_bundle(path: str | Path) -> Bundle:
    """What verification reads of a bundle; FileNotFoundError or ValueError when ``path`` is
    not a bundle with a manifest and a run identity."""
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"--against {path}: no such bundle folder (e.g. "
                                f"leaderboards/runs/svd-synth-smoke)")
    store = RunStore(p)
    store.config()
    manifest = read_manifest(p)
    if not (p / "provenance.json").is_file():
        raise FileNotFoundError(f"{p / 'provenance.json'} does not exist; a bundle keeps it")
    identity = store.read_json("provenance.json").get("identity")
    if not isinstance(identity, dict):
        raise ValueError(f"{p / 'provenance.json'} holds no run identity; regenerate the bundle "
                         f"with this explbench")
    return Bundle(p, manifest, identity)


# -- against the board ---------------------------------------------------------------------------


def _rows(text: str) -> dict[tuple, dict]:
    out = {}
    for row in csv.DictReader(io.StringIO(text)):
        out[(row.get("generator"), row.get("direction"), row.get("explainer"), row.get("metric"),
             row.get("k") or "")] = row
    return out


def _order(key: tuple) -> tuple:
    k = key[4]
    return (*key[:4], int(k) if str(k).isdigit() else -1, str(k))


def _row_name(key: tuple) -> str:
    gen, direction, explainer, metric, k = key
    return f"{gen}/{direction}/{explainer}/{metric}" + (f" k={k}" if k else "")


def _float(s: str | None) -> float:
    try:
        return float(s) if s not in (None, "") else math.nan
    except ValueError:
        return math.nan


def recompute_metrics(records: list[dict], config: dict) -> str:
    """``metrics.csv`` text of ``records`` as :func:`explbench.run.runner.finish` writes it
    (the same metrics, seed, bootstrap size, column order and 6-significant-digit format).

    Parameters
    ----------
    records : list of dict
    config : dict
        The run's ``config.json`` (``run_id`` and ``suite``).
    """
    import warnings

    import pandas as pd

    from explbench.api import registry
    from explbench.metrics.aggregate import aggregate
    from explbench.store.run_store import METRIC_COLUMNS

    suite = config.get("suite") or {}
    names = [m for m in registry.metrics.names() if m != "seconds"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metrics = aggregate(pd.DataFrame(records), seed=int(suite.get("seed", 0)),
                            n_boot=int(suite.get("n_boot", 1000)), metrics=names)
    metrics.insert(0, "task", suite.get("task"))
    metrics.insert(0, "run_id", config.get("run_id"))
    buf = io.StringIO()
    metrics[METRIC_COLUMNS].to_csv(buf, index=False, float_format="%.6g", lineterminator="\n")
    return buf.getvalue()


def check_metrics(sub: Submission, records: list[dict]) -> Check:
    """Every metric recomputed from the records against the submitted ``metrics.csv`` rows."""
    c = Check("metrics")
    config = sub.json("config.json")
    try:
        mine = _rows(recompute_metrics(records, config)) if records else {}
    except Exception as exc:  # noqa: BLE001 - records edited into something metrics cannot read
        c.problems.append(f"the records cannot be aggregated: {type(exc).__name__}: {exc}")
        return c
    theirs = _rows(sub.metrics_text)
    for key in sorted(set(mine) - set(theirs), key=_order):
        c.problems.append(f"{METRICS_FILE} lacks the row {_row_name(key)} that the records give")
    for key in sorted(set(theirs) - set(mine), key=_order):
        c.problems.append(f"{METRICS_FILE} row {_row_name(key)} does not follow from the records")
    for key in sorted(set(mine) & set(theirs), key=_order):
        a, b = theirs[key], mine[key]
        bad = [col for col in ("run_id", "task", "n", "n_clusters") if (a.get(col) or "") != (b.get(col) or "")]
        bad += [col for col in ("value", "ci_low", "ci_high") if not _close(a.get(col), b.get(col))]
        if bad:
            c.problems.append(f"{METRICS_FILE} row {_row_name(key)}: " + ", ".join(
                f"{col} {a.get(col)} submitted, {b.get(col)} from the records" for col in bad))
    made = sub.json("provenance.json").get("git_revision")
    if c.problems:
        from explbench.store.provenance import git_revision

        here = git_revision() or "no git revision"
        c.detail = (f"made with explbench {sub.meta.get('explbench_version')} ({made or 'no git revision'}), "
                    f"recomputed with {__version__} ({here}); metric code that changed in between "
                    f"changes the numbers too")
    else:
        c.detail = (f"all {len(mine)} rows recomputed from the records (seed "
                    f"{config.get('suite', {}).get('seed')}, counts exact, values within {METRIC_TOL:g})")
    return c


def _close(a: str | None, b: str | None) -> bool:
    x, y = _float(a), _float(b)
    return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=METRIC_TOL, abs_tol=METRIC_TOL)


def check_cases(manifest: dict, bundle: Bundle) -> Check:
    """The submission's case sets against the bundle's, for the generators it holds."""
    c = Check("cases")
    if manifest.get("digest") != digest(manifest):
        c.problems.append("manifest.json: its digest does not match its case hashes (edited?)")
    gens = manifest.get("generators") or {}
    board = bundle.manifest.get("generators") or {}
    shared = {**bundle.manifest, "generators": {g: board[g] for g in gens if g in board}}
    diff = compare_manifests(manifest, shared)
    for g in diff.only_a:
        c.problems.append(f"generator {g}: not on the board {bundle.path} (it holds "
                          f"{', '.join(sorted(board)) or 'none'})")
    for g in sorted(diff.differ):
        mine, theirs = gens[g].get("cases") or {}, board[g].get("cases") or {}
        for what, ids in (("differ in content from the board's", [i for i in mine if i in theirs and mine[i] != theirs[i]]),
                          ("are on the board only", [i for i in theirs if i not in mine]),
                          ("are in the submission only", [i for i in mine if i not in theirs])):
            if ids:
                shown = ", ".join(sorted(ids)[:5]) + (" …" if len(ids) > 5 else "")
                c.problems.append(f"generator {g}: {len(ids)} case(s) {what} ({shown})")
    for g, (mine, theirs) in sorted(diff.versions.items()):
        c.problems.append(f"generator {g}: case-set version {mine}, the board's is {theirs}")
    c.detail = "; ".join(f"{g}: {'all ' if g not in diff.differ else ''}{n}"
                         f"{'' if g not in diff.differ else ' of ' + str(len(gens[g].get('cases') or {}))}"
                         f" cases have the board's content" for g, n in sorted(diff.same.items()))
    return c


def check_identity(prov: dict, bundle: Bundle) -> Check:
    """The run identity's task, model, data and task parameters against the bundle's."""
    c = Check("identity")
    mine = prov.get("identity")
    if not isinstance(mine, dict):
        c.problems.append("provenance.json holds no run identity")
        return c
    for key in IDENTITY_FIELDS:
        if mine.get(key) != bundle.identity.get(key):
            c.problems.append(f"{key}: {mine.get(key)!r} in the submission, "
                              f"{bundle.identity.get(key)!r} on the board")
    c.detail = (f"task {mine.get('task')}, model {mine.get('model')}, data {mine.get('data')}, "
                f"task parameters {mine.get('task_params') or {}}")
    return c


# -- everything ----------------------------------------------------------------------------------


def verify_submission(path: str | Path, against: str | Path, *, rerun: float = 0.1,
                      cases: str | Path | None = None, rtol: float = RTOL, atol: float = ATOL,
                      salt: str = "", device: str = "cpu", log: Log = print) -> list[Check]:
    """Every check of a submission against a bundle (see the module docstring).

    Parameters
    ----------
    path, against : path
        The submission (``explbench submit``) and the published bundle.
    rerun : float
        Fraction of the explanations to re-run (at least 5, or all when fewer); 0 skips
        ``rescore`` and ``rerun`` and so runs no plug-in code.
    cases : path, optional
        A case pack or a run folder holding the cases; without it they are regenerated.
    rtol, atol : float
        Tolerance of re-run weights.
    salt : str
        Mixed into the seed of the re-run sample, so that the submitter cannot predict it.
    device : str
    log : callable

    Returns
    -------
    list of Check

    Raises
    ------
    FileNotFoundError, ValueError
        For input that cannot be verified at all: not a submission, no bundle, bad options.
    """
    if not 0.0 <= float(rerun) <= 1.0:
        raise ValueError(f"--rerun is a fraction of the explanations, from 0 to 1; got {rerun}")
    sub, bundle = read_submission(path), read_bundle(against)
    records, bad_lines = sub.records()
    missing = [n for n in ("config.json", "provenance.json", MANIFEST_FILE, RECORDS_FILE,
                           METRICS_FILE) if n not in sub.files]
    if missing:
        raise ValueError(f"{sub.path} holds no {', '.join(missing)}; it is not a whole submission")
    checks = [check_archive(sub), check_records(sub, records, bad_lines), check_metrics(sub, records),
              check_cases(sub.json(MANIFEST_FILE), bundle),
              check_identity(sub.json("provenance.json"), bundle), check_plugins(sub)]
    if rerun <= 0:
        checks += [Check("rescore", detail="--rerun 0", skipped=True),
                   Check("rerun", detail="--rerun 0", skipped=True)]
        return checks
    checks += rerun_checks(sub, records, fraction=float(rerun), cases=cases, rtol=rtol,
                           atol=atol, salt=salt, device=device, log=log)
    return checks


# -- re-scoring and re-running on the model ------------------------------------------------------


__all__ = ["ATOL", "Bundle", "RTOL", "check_cases", "check_identity", "check_metrics", "read_bundle", "recompute_metrics", "verify_submission"]
