"""The inputs of the model-randomisation check: a finished run's cases and records, and the scorer to re-score them."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from explbench.core.cases import Case, load_cases
from explbench.studies.sanity_result import SanityError


class NotARunFolder(SanityError, FileNotFoundError):
    """The folder given is not a run folder written by ``explbench run``."""


@dataclass
class RunInputs:
    """What the check needs from a run folder."""

    folder: Path
    config: object  # explbench.run.suite.SuiteConfig
    provenance: dict
    cases_by_generator: dict[str, list[Case]]
    notes: list[str]


def _case_file(folder: Path, entry: dict) -> Path | None:
    """The first existing case file of a ``cases.json`` entry: the file the run names, then
    ``RUN/cases/<key>.npz``, then the case cache."""
    from explbench.store.provenance import cache_dir

    key = entry["cache_key"]
    candidates = [folder / entry["file"]] if entry.get("file") else []
    candidates += [folder / "cases" / f"{key}.npz", cache_dir() / "cases" / f"{key}.npz"]
    return next((p for p in candidates if p.is_file()), None)


def load_run(folder: str | Path) -> RunInputs:
    """The resolved suite, provenance and cases of a run folder.

    Keys come from ``RUN/cases.json``; each generator's cases are read from the file its entry
    names (``"file"``, relative to the run), else ``RUN/cases/<key>.npz``, else the case cache
    ``cache_dir()/cases/<key>.npz``.

    Raises
    ------
    NotARunFolder
        When ``folder`` has no ``config.json``.
    SanityError
        When the run has no cases (or none can be found).
    """
    from explbench.run.suite import SuiteConfig

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise NotARunFolder(f"{folder} is not a run folder (no config.json); pass a folder written by "
                            f"'explbench run --out RUN'")
    stored = json.loads((folder / "config.json").read_text())
    config = SuiteConfig.from_dict(stored["suite"])
    prov_path = folder / "provenance.json"
    prov = json.loads(prov_path.read_text()) if prov_path.exists() else {}
    if not (folder / "cases.json").is_file():
        raise SanityError(f"{folder} has no cases.json: the run stopped before its cases were made; "
                          f"continue it with 'explbench run --resume {folder}'")
    info = json.loads((folder / "cases.json").read_text())
    cases_by_gen: dict[str, list[Case]] = {}
    notes: list[str] = []
    for gen, entry in info.items():
        key = (entry or {}).get("cache_key")
        if not key or not (entry or {}).get("n_cases", 1):
            continue
        path = _case_file(folder, entry)
        if path is None:
            notes.append(f"the cases of {gen} are neither in {folder / 'cases'} nor in the case cache; "
                         f"'explbench run --resume {folder}' regenerates them")
            continue
        cases, _ = load_cases(path)
        if cases:
            cases_by_gen[gen] = cases
    if not cases_by_gen:
        raise SanityError(f"{folder} has no cases to re-explain" + (": " + "; ".join(notes) if notes else
                          " (every generator produced none)"))
    return RunInputs(folder, config, prov, cases_by_gen, notes)


def _make_scorer(task: object, segments: object, config: object, batch_size: int | None, device: str):
    """The run's Scorer, built as the runner builds it (no agnostic neighbourhood: unused here)."""
    from explbench.protocol.scorer import Scorer

    params = set(inspect.signature(Scorer).parameters)
    kwargs = {"content": config.content, "agnostic_samples": 0, "device": device, "seed": config.seed}
    if batch_size:
        kwargs["batch_size"] = int(batch_size)
    for key in ("aggregation",):  # suite settings the scorer may take
        if key in params and hasattr(config, key):
            kwargs[key] = getattr(config, key)
    return Scorer(task, segments, **{k: v for k, v in kwargs.items() if k in params})
