"""Reading and checking suite files: every table, key and value named with the line it is on and the fix."""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from explbench.api import registry
from explbench.run.params import ParamSpec, problem, specs
from explbench.run.suite import (_TABLES, _TOP_KEYS, AGGREGATIONS, DEFAULT_SPLITS, HARNESS_GENERATOR_KEYS,
                                 MIN_N_BOOT, PRESETS_DIR, SuiteConfig, SuiteError, _generator_order)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _top_level(config: SuiteConfig) -> list[tuple[str, str]]:
    """(key, problem) for the top-level settings, in the order a reader meets them."""
    out: list[tuple[str, str]] = []
    c = config
    for key in ("name", "task", "split", "segmentation", "content", "aggregation", "description"):
        if not isinstance(getattr(c, key), str):
            out.append((key, f"must be a string, got {getattr(c, key)!r}"))
    if isinstance(c.name, str) and not c.name.strip():
        out.append(("name", "must not be empty"))
    if not _is_int(c.seed) or not 0 <= c.seed < 2**63:
        out.append(("seed", f"must be an integer from 0 to 2**63 - 1, got {c.seed!r}"))
    if c.budget is not None and (not _is_int(c.budget) or c.budget < 1):
        out.append(("budget", f"must be a whole number of model queries, at least 1 (leave it out "
                              f"for no limit), got {c.budget!r}"))
    if not _is_int(c.n_boot) or c.n_boot < MIN_N_BOOT:
        out.append(("n_boot", f"must be an integer of at least {MIN_N_BOOT} bootstrap resamples "
                              f"(1000 or more for stable intervals), got {c.n_boot!r}"))
    if not _is_int(c.agnostic_samples) or c.agnostic_samples < 0 or 0 < c.agnostic_samples < 3:
        out.append(("agnostic_samples", f"must be 0 (off) or an integer of at least 3, got "
                                        f"{c.agnostic_samples!r}"))
    if c.timeout is not None and (not _is_number(c.timeout) or c.timeout < 0):
        out.append(("timeout", f"must be a number of seconds (0 for no limit), got {c.timeout!r}"))
    if not _is_number(c.power_discordance) or not 0 < c.power_discordance <= 1:
        out.append(("power_discordance", f"must be a number in (0, 1], got {c.power_discordance!r}"))
    if isinstance(c.aggregation, str) and c.aggregation not in AGGREGATIONS:
        out.append(("aggregation", f"unknown aggregation {c.aggregation!r}; use one of "
                                   f"{', '.join(AGGREGATIONS)}"))
    extra = c.extra_aggregations
    if not isinstance(extra, list) or not all(isinstance(a, str) for a in extra):
        out.append(("extra_aggregations", f"must be a list of strings, got {extra!r}"))
    else:
        bad = [a for a in extra if a not in AGGREGATIONS]
        if bad:
            out.append(("extra_aggregations", f"unknown aggregation(s) {', '.join(map(repr, bad))}; "
                                              f"use {', '.join(AGGREGATIONS)}"))
        elif len(set(extra)) != len(extra) or c.aggregation in extra:
            out.append(("extra_aggregations", "lists an aggregation twice (or the main "
                                              f"`aggregation` {c.aggregation!r} again)"))
    if not isinstance(c.explainers, list) or not all(isinstance(e, str) for e in c.explainers):
        out.append(("explainers", f"must be a list of explainer names, got {c.explainers!r}"))
    elif len(set(c.explainers)) != len(c.explainers):
        dup = sorted({e for e in c.explainers if c.explainers.count(e) > 1})
        out.append(("explainers", f"names {', '.join(map(repr, dup))} more than once"))
    for key in ("explainer_params", "generators", "task_params"):
        if not isinstance(getattr(c, key), dict):
            out.append((key, f"must be a table, got {getattr(c, key)!r}"))
    return out


def _check_params(path: str, text: str, kind: str, name: str, cls: object, params: dict,
                  skip: set[str]) -> None:
    """Refuse constructor arguments the plug-in does not take, or of the wrong type or range."""
    table = f"{kind}.{name}"
    if not isinstance(params, dict):
        raise _error(path, text, name, f"must be a table of parameters, got {params!r}", table=table)
    sig = specs(cls)
    if sig is None:
        return
    for key, value in params.items():
        if key in skip:
            continue
        if key not in sig:
            raise _error(path, text, key, f"{name!r} takes no such parameter; it takes: "
                         f"{', '.join(sorted(set(sig) | skip)) or '(none)'}", table=table)
        issue = problem(sig[key], value)
        if issue:
            raise _error(path, text, key, f"{name!r}: {issue}", table=table)
    missing = [k for k, s in sig.items() if s.required and k not in params]
    if missing and kind != "task-params":
        raise _error(path, text, missing[0], f"{name!r} needs this parameter; set it in "
                     f"[{table}]", table=table)


def _takes(obj: object, param: str) -> bool:
    try:
        return param in inspect.signature(obj).parameters  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def accepts_per_cluster(cls: object) -> str | None:
    """Where a generator takes ``per_cluster``: "constructor", "generate" or None."""
    if _takes(cls, "per_cluster"):
        return "constructor"
    if _takes(getattr(cls, "generate", None), "per_cluster"):
        return "generate"
    return None


def generator_kwargs(config: SuiteConfig, name: str) -> dict:
    """Constructor arguments of one generator: its table without the harness keys (and with
    ``per_cluster`` when the constructor takes it; default 1)."""
    params = dict(config.generators[name])
    for key in HARNESS_GENERATOR_KEYS:
        params.pop(key, None)
    cls = registry.generators.get(name)
    if accepts_per_cluster(cls) == "constructor":
        params["per_cluster"] = int(config.generators[name].get("per_cluster", 1))
    return params


def _guess_key(exc: Exception, params: dict, fallback: str) -> str:
    msg = str(exc)
    for key in params:
        if re.search(r"\b" + re.escape(key) + r"\b", msg):
            return key
    return fallback


def _segmentation(config: SuiteConfig, path: str, text: str, task_cls: object,
                  task: object | None):
    from explbench.core.segmentation import from_spec, spec_for_shape

    shape = tuple(getattr(task, "domain_shape", ()) or ()) if task is not None else ()
    shape = shape or tuple(getattr(task_cls, "domain_shape", ()) or ())
    if not shape:
        return None  # the task sets its shape when built; the runner checks again with it
    try:
        return from_spec(spec_for_shape(config.segmentation, shape)[0], shape)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise _error(path, text, "segmentation", f"{exc} (task {config.task!r} has the domain "
                     f"shape {shape})") from None


def validate(config: SuiteConfig, path: str = "<suite>", text: str = "",
             task: object | None = None) -> None:
    """Check a whole suite: names, types and ranges, plug-in parameters, splits and the grid.

    Parameters
    ----------
    config : SuiteConfig
    path, text : str
        The suite file and its text, for messages with line numbers.
    task : Task, optional
        The built task; without it the task class's declared shape and splits are used.

    Raises
    ------
    SuiteError
        Naming the key at fault (and its file and line when known).
    """
    from explbench.core.content import CONTENT_TYPES

    for key, msg in _top_level(config):
        raise _error(path, text, key, msg)
    try:
        task_cls = registry.tasks.get(config.task)
    except registry.UnknownName as exc:
        raise _error(path, text, "task", str(exc)) from None
    splits = tuple(getattr(task if task is not None else task_cls, "splits", None) or DEFAULT_SPLITS)
    if config.split not in splits:
        raise _error(path, text, "split", f"unknown split {config.split!r}; task {config.task!r} "
                     f"has the splits {', '.join(splits)}")
    segments = _segmentation(config, path, text, task_cls, task)
    if config.content not in CONTENT_TYPES:
        raise _error(path, text, "content", f"unknown content type; known: {', '.join(CONTENT_TYPES)}")
    _check_params(path, text, "task-params", config.task, task_cls, config.task_params, set())
    if not config.explainers:
        raise _error(path, text, "explainers", "the suite names no explainer")
    for name in config.explainers:
        try:
            cls = registry.explainers.get(name)
        except registry.UnknownName as exc:
            raise _error(path, text, "explainers", str(exc)) from None
        _check_params(path, text, "explainer", name, cls, config.explainer_params.get(name, {}), set())
    for name in config.explainer_params:
        if name not in config.explainers:
            raise _error(path, text, name, "parameters for an explainer the suite does not run; add it "
                         "to `explainers` or remove the table", table=f"explainer.{name}")
    if not config.generators:
        raise _error(path, text, "generator", "the suite names no generator")
    for name, params in config.generators.items():
        _check_generator(config, path, text, name, params, segments)
    try:
        _generator_order(config.generators)
    except ValueError as exc:
        raise _error(path, text, "from", str(exc)) from None


def _check_generator(config: SuiteConfig, path: str, text: str, name: str, params: object,
                     segments: object | None) -> None:
    table = f"generator.{name}"
    try:
        cls = registry.generators.get(name)
    except registry.UnknownName as exc:
        raise _error(path, text, name, str(exc), table=table) from None
    if not isinstance(params, dict):
        raise _error(path, text, name, f"must be a table of parameters, got {params!r}", table=table)
    parents = params.get("from", [])
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise _error(path, text, "from", f"must be a list of generator names, got {parents!r}",
                     table=table)
    for parent in parents:
        if parent not in config.generators:
            raise _error(path, text, "from", f"{name!r} derives from {parent!r}, which the suite "
                         f"does not run", table=table)
    if parents and not hasattr(cls, "derive"):
        raise _error(path, text, "from", f"{name!r} cannot derive cases from other generators",
                     table=table)
    if not parents and not hasattr(cls, "generate"):
        raise _error(path, text, name, f"{name!r} derives its cases from others; give it "
                     f"`from = [...]`", table=table)
    if "n" in params and (not _is_int(params["n"]) or params["n"] < 1):
        raise _error(path, text, "n", f"must be a whole number of cases, at least 1, got "
                     f"{params['n']!r}", table=table)
    where = accepts_per_cluster(cls)
    if "per_cluster" in params:
        pc = params["per_cluster"]
        if not _is_int(pc) or pc < 1:
            raise _error(path, text, "per_cluster", f"must be an integer of at least 1, got {pc!r}",
                         table=table)
        if where is None:
            raise _error(path, text, "per_cluster", f"{name!r} does not take per_cluster"
                         + (" (it derives its cases from its parents)" if parents else ""), table=table)
    _check_params(path, text, "generator", name, cls, params, set(HARNESS_GENERATOR_KEYS))
    d = getattr(segments, "d", None)
    ks = params.get("ks")
    if d is not None and isinstance(ks, list) and any(_is_int(k) and k > d for k in ks):
        raise _error(path, text, "ks", f"asks for up to {max(ks)} segments, but the grid "
                     f"{config.segmentation!r} has only {d}", table=table)
    kwargs = {k: v for k, v in params.items() if k not in HARNESS_GENERATOR_KEYS}
    if where == "constructor":
        kwargs["per_cluster"] = params.get("per_cluster", 1)
    try:
        cls(**kwargs)
    except Exception as exc:  # noqa: BLE001 - the constructor's own checks
        raise _error(path, text, _guess_key(exc, kwargs, name), f"{name!r}: {exc}",
                     table=table) from None


def check_resolved_ranges(config: SuiteConfig, task: object) -> None:
    """Signs of generator parameters whose constructor default is None, against the defaults
    the generator resolves for ``task`` (its ``config(task)``): a positive default eps means
    a given eps must be positive too."""
    for name, params in config.generators.items():
        cls = registry.generators.get(name)
        resolve_ = getattr(cls, "config", None)
        sig = specs(cls) or {}
        if not callable(resolve_):
            continue
        try:
            resolved = cls().config(task)
        except Exception:  # noqa: BLE001 - needs arguments, or this task cannot host it
            continue
        values = dataclasses.asdict(resolved) if dataclasses.is_dataclass(resolved) else dict(resolved or {})
        for key, value in params.items():
            spec = sig.get(key)
            if spec is None or spec.default is not None or key not in values:
                continue
            issue = problem(ParamSpec(key, spec.hint, values[key]), value)
            if issue:
                raise _error("<suite>", "", key, f"{name!r}: {issue}", table=f"generator.{name}")


def _line_of(text: str, key: str, table: str | None = None) -> int | None:
    """1-based line of ``key`` (inside ``[table]`` when given) in TOML text; None if not found."""
    lines = text.splitlines()
    start = 0
    if table:
        pat = re.compile(r"^\s*\[\s*" + re.escape(table).replace(r"\.", r"\s*\.\s*") + r"\s*\]")
        for i, line in enumerate(lines):
            if pat.match(line):
                start = i
                break
        else:
            return None
    kpat = re.compile(r"^\s*\"?" + re.escape(key) + r"\"?\s*=")
    for i in range(start, len(lines)):
        if i > start and table and lines[i].lstrip().startswith("["):
            break
        if kpat.match(lines[i]):
            return i + 1
    return start + 1 if table else None


def _error(path: str, text: str, key: str, msg: str, table: str | None = None) -> SuiteError:
    line = _line_of(text, key.split(".")[-1], table) if text else None
    where = f"{path}, line {line}" if line else path
    name = f"{table}.{key}" if table and not text else key
    return SuiteError(f"{where}: key {name!r}: {msg}")


def resolve(spec: str) -> Path:
    """A preset name (``smoke``, ``default``, ``paper``) or a path to a TOML file."""
    p = Path(spec)
    if p.suffix == ".toml" or p.exists():
        if not p.exists():
            raise SuiteError(f"suite file {spec!r} does not exist")
        if p.is_dir():
            raise SuiteError(f"suite {spec!r} is a folder; pass a .toml file or a preset name")
        return p
    preset = PRESETS_DIR / f"{spec}.toml"
    if not preset.exists():
        known = sorted(q.stem for q in PRESETS_DIR.glob("*.toml"))
        raise SuiteError(f"unknown suite {spec!r}; presets: {', '.join(known)}, or a path to a .toml file")
    return preset


def load(spec: str) -> SuiteConfig:
    """Read and validate a suite; errors name the file, the line and the key."""
    path = resolve(spec)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{path}: cannot be read ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{path}: not valid TOML: {exc}") from None
    spath = str(path)
    for key, value in data.items():
        if isinstance(value, dict) and key not in _TABLES:
            raise _error(spath, text, key, f"unknown table; tables are {', '.join(sorted(_TABLES))}")
        if not isinstance(value, dict) and key not in _TOP_KEYS:
            raise _error(spath, text, key, f"unknown setting; settings are {', '.join(sorted(_TOP_KEYS))}")
    kwargs = {k: v for k, v in data.items() if k in _TOP_KEYS}
    kwargs.setdefault("name", path.stem)
    kwargs["explainer_params"] = data.get("explainer", {})
    kwargs["generators"] = data.get("generator", {})
    kwargs["task_params"] = data.get("task-params", {})
    config = SuiteConfig(**kwargs)
    validate(config, spath, text)
    return config


def override(config: SuiteConfig, *, task: str | None = None, explainers: list[str] | None = None,
             generators: list[str] | None = None, seed: int | None = None,
             timeout: float | None = None, task_params: dict | None = None) -> SuiteConfig:
    """A copy of ``config`` with command-line choices applied, validated again."""
    c = SuiteConfig.from_dict(config.to_dict())
    if task:
        c.task = task
    if seed is not None:
        c.seed = seed
    if timeout is not None:
        c.timeout = timeout
    if task_params:
        c.task_params = {**c.task_params, **task_params}
    if explainers:
        c.explainers = list(explainers)
        c.explainer_params = {k: v for k, v in c.explainer_params.items() if k in explainers}
    if generators:
        missing = [g for g in generators if g not in c.generators]
        kept = {g: p for g, p in c.generators.items() if g in generators}
        for g in missing:
            kept[g] = {"n": 8}
        for g, p in kept.items():  # keep derived generators' parents
            for parent in p.get("from", []):
                if parent not in kept:
                    p["from"] = [q for q in p["from"] if q in kept]
        c.generators = kept
    validate(c, "the command line")
    return c
