"""Suites: TOML files that say what a run does; presets ship in ``explbench/suites``.

A suite file::

    name = "smoke"
    task = "svd-synth"
    seed = 0
    segmentation = "grid:5x4"
    content = "mean"
    budget = 256
    explainers = ["lime", "random", "oracle-norm"]

    [explainer.lime]
    n_samples = 256

    [generator.cw-spectrogram]
    n = 12

    [generator.localized]
    from = ["cw-spectrogram"]
    ks = [1, 3, 5]

``n`` and ``from`` are read by the harness; every other key of an ``[explainer.*]`` or
``[generator.*]`` table is a constructor argument of that plug-in, and the keys of an optional
``[task-params]`` table are constructor arguments of the task (e.g. ``weights = "model.safetensors"``).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from explbench import registry

PRESETS_DIR = Path(__file__).parent / "suites"


class SuiteError(ValueError):
    """A suite file that cannot be used, with the file, line and key at fault."""


@dataclass
class SuiteConfig:
    """A resolved suite: everything a run needs, JSON-serialisable via :meth:`to_dict`."""

    name: str
    task: str = "svd-synth"
    seed: int = 0
    split: str = "test"
    segmentation: str = "grid:5x4"
    content: str = "mean"
    budget: int | None = None
    n_boot: int = 1000
    agnostic_samples: int = 256
    explainers: list[str] = field(default_factory=list)
    explainer_params: dict[str, dict] = field(default_factory=dict)
    generators: dict[str, dict] = field(default_factory=dict)
    task_params: dict = field(default_factory=dict)
    description: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SuiteConfig":
        return cls(**d)

    def protocol_key(self) -> dict:
        """What must agree for two runs to share a leaderboard."""
        return {
            "task": self.task, "segmentation": self.segmentation, "content": self.content,
            "budget": self.budget, "split": self.split,
            "generators": {g: {k: v for k, v in p.items()} for g, p in sorted(self.generators.items())},
        }


_TOP_KEYS = {f.name for f in dataclasses.fields(SuiteConfig)} - {"explainer_params", "generators", "task_params"}
_TABLES = {"explainer", "generator", "task-params"}


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
    kpat = re.compile(r"^\s*\"?" + re.escape(key) + r"\"?\s*=")
    for i in range(start, len(lines)):
        if kpat.match(lines[i]):
            return i + 1
    return None


def _error(path: str, text: str, key: str, msg: str, table: str | None = None) -> SuiteError:
    line = _line_of(text, key.split(".")[-1], table)
    where = f"{path}, line {line}" if line else path
    return SuiteError(f"{where}: key {key!r}: {msg}")


def resolve(spec: str) -> Path:
    """A preset name (``smoke``, ``default``, ``paper``) or a path to a TOML file."""
    p = Path(spec)
    if p.suffix == ".toml" or p.exists():
        if not p.exists():
            raise SuiteError(f"suite file {spec!r} does not exist")
        return p
    preset = PRESETS_DIR / f"{spec}.toml"
    if not preset.exists():
        known = sorted(q.stem for q in PRESETS_DIR.glob("*.toml"))
        raise SuiteError(f"unknown suite {spec!r}; presets: {', '.join(known)}, or a path to a .toml file")
    return preset


def _check_params(path: str, text: str, kind: str, name: str, cls: object, params: dict, skip: set[str]) -> None:
    """Refuse constructor arguments the plug-in does not take."""
    try:
        sig = inspect.signature(cls)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    known = set(sig.parameters) - {"self"}
    for key in params:
        if key not in known and key not in skip:
            raise _error(path, text, key, f"{name!r} takes no such parameter; it takes: "
                         f"{', '.join(sorted(known | skip)) or '(none)'}", table=f"{kind}.{name}")


def load(spec: str) -> SuiteConfig:
    """Read and validate a suite; errors name the file, the line and the key."""
    path = resolve(spec)
    text = path.read_text()
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
    types = {"seed": int, "n_boot": int, "agnostic_samples": int, "name": str, "task": str,
             "segmentation": str, "content": str, "split": str, "explainers": list}
    for key, typ in types.items():
        if key in kwargs and not isinstance(kwargs[key], typ):
            raise _error(spath, text, key, f"must be {typ.__name__}, got {kwargs[key]!r}")
    config = SuiteConfig(**kwargs)
    validate(config, spath, text)
    return config


def validate(config: SuiteConfig, path: str = "<suite>", text: str = "") -> None:
    """Check names against the registries and parameters against constructors."""
    from explbench.baselines import CONTENT_TYPES
    from explbench.segmentation import from_spec

    try:
        registry.tasks.get(config.task)
    except registry.UnknownName as exc:
        raise _error(path, text, "task", str(exc)) from None
    try:
        from_spec(config.segmentation, (8, 8) if config.segmentation.startswith("grid") else (64, 64))
    except ValueError as exc:
        raise _error(path, text, "segmentation", str(exc)) from None
    if config.content not in CONTENT_TYPES:
        raise _error(path, text, "content", f"unknown content type; known: {', '.join(CONTENT_TYPES)}")
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
        try:
            cls = registry.generators.get(name)
        except registry.UnknownName as exc:
            raise _error(path, text, name, str(exc), table=f"generator.{name}") from None
        _check_params(path, text, "generator", name, cls, params, {"n", "from"})
        for parent in params.get("from", []):
            if parent not in config.generators:
                raise _error(path, text, "from", f"{name!r} derives from {parent!r}, which the suite "
                             f"does not run", table=f"generator.{name}")


def override(config: SuiteConfig, *, task: str | None = None, explainers: list[str] | None = None,
             generators: list[str] | None = None, seed: int | None = None) -> SuiteConfig:
    """A copy of ``config`` with command-line choices applied, validated again."""
    c = SuiteConfig.from_dict(config.to_dict())
    if task:
        c.task = task
    if seed is not None:
        c.seed = seed
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
    validate(c)
    return c
