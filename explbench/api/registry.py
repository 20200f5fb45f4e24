"""Named registries for tasks, generators, explainers and metrics.

Entries come from decorators in modules the harness imports, and from entry points of
installed packages in the groups ``explbench.tasks``, ``explbench.generators``,
``explbench.explainers`` and ``explbench.metrics``.
"""

from __future__ import annotations

import difflib
import importlib
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable, Iterator

#: modules that fill the registries with what explbench ships; imported lazily on first lookup
BUILTIN_MODULES: dict[str, tuple[str, ...]] = {
    "tasks": ("explbench.tasks",),
    "generators": ("explbench.generators",),
    "explainers": ("explbench.explainers",),
    "metrics": ("explbench.metrics",),
}


class BrokenPlugin(UserWarning):
    """An installed entry point that failed to load (the others are still loaded)."""


class UnknownName(KeyError):
    """A name that no registry entry carries."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Any
    description: str


class Registry:
    """A mapping from names to registered objects of one kind.

    Parameters
    ----------
    kind : str
        Plural noun used in messages and in the entry-point group ``explbench.<kind>``.
    base : str, optional
        ``"module:Class"`` of the base class every entry must subclass (as lm-eval's registries
        check theirs); resolved at the first registration, so that this module imports nothing.
    """

    def __init__(self, kind: str, base: str | None = None) -> None:
        self.kind = kind
        self._base = base
        self._entries: dict[str, Entry] = {}
        self._loaded = False
        #: entry points that failed to load: name -> message
        self.broken: dict[str, str] = {}

    @property
    def group(self) -> str:
        return f"explbench.{self.kind}"

    def register(self, name: str, description: str | None = None) -> Callable[[Any], Any]:
        """Decorator registering a class or function under ``name``."""

        def decorate(obj: Any) -> Any:
            self.add(name, obj, description)
            return obj

        return decorate

    def add(self, name: str, obj: Any, description: str | None = None) -> None:
        if not name or not isinstance(name, str):
            raise ValueError(f"a {self.kind[:-1]} needs a non-empty string name, got {name!r}")
        existing = self._entries.get(name)
        if existing is not None and existing.obj is not obj:
            where = getattr(existing.obj, "__module__", "?")
            raise ValueError(
                f"the {self.kind[:-1]} name {name!r} is already registered (by {where}); "
                f"choose another name"
            )
        self._check_base(name, obj)
        if description is None:
            description = getattr(obj, "description", "") or _first_doc_line(obj)
        self._entries[name] = Entry(name, obj, description)

    def base(self) -> type | None:
        """The base class entries must subclass (None: any object)."""
        if self._base is None:
            return None
        module, _, cls = self._base.partition(":")
        return getattr(importlib.import_module(module), cls)

    def _check_base(self, name: str, obj: Any) -> None:
        base = self.base()
        if base is None or (isinstance(obj, type) and issubclass(obj, base)):
            return
        what = f"class {obj.__name__}" if isinstance(obj, type) else f"{type(obj).__name__} object"
        raise TypeError(f"the {self.kind[:-1]} {name!r} is a {what}, not a subclass of "
                        f"explbench.api.{base.__name__}; write it as "
                        f"'class {getattr(obj, '__name__', 'My' + base.__name__)}"
                        f"({base.__name__}): ...' (from explbench.api import {base.__name__})")

    def load(self) -> None:
        """Import built-in modules and installed entry points (once).

        An entry point that fails to load is reported by name (a :class:`BrokenPlugin`
        warning, and in :attr:`broken`); the others still load. Asking for a broken name
        raises ImportError with the original error.
        """
        if self._loaded:
            return
        self._loaded = True  # set first: built-in modules register into this registry
        try:
            for module in BUILTIN_MODULES.get(self.kind, ()):
                importlib.import_module(module)
        except BaseException:
            self._loaded = False  # a failed import is tried again on the next lookup
            raise
        for ep in entry_points(group=self.group):
            if ep.name in self._entries:
                continue
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plug-in must not hide the others
                msg = (f"entry point {ep.name!r} in group {self.group!r} ({ep.value}) failed to "
                       f"load: {type(exc).__name__}: {exc}")
                self.broken[ep.name] = msg
                warnings.warn(f"explbench: {msg}; the other {self.kind} are loaded",
                              BrokenPlugin, stacklevel=2)
                continue
            if ep.name not in self._entries:  # loading may have registered it by decorator
                self.add(ep.name, obj)

    def get(self, name: str) -> Any:
        self.load()
        try:
            return self._entries[name].obj
        except KeyError:
            if name in self.broken:
                raise ImportError(self.broken[name]) from None
            known = sorted(self._entries)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownName(
                f"unknown {self.kind[:-1]} {name!r}.{hint} Known {self.kind}: "
                f"{', '.join(known) or '(none)'}"
            ) from None

    def entries(self) -> list[Entry]:
        self.load()
        return [self._entries[k] for k in sorted(self._entries)]

    def names(self) -> list[str]:
        return [e.name for e in self.entries()]

    def __contains__(self, name: str) -> bool:
        self.load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def unregister(self, name: str) -> None:
        """Remove an entry (tests and interactive sessions)."""
        self._entries.pop(name, None)


def _first_doc_line(obj: Any) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


tasks = Registry("tasks", "explbench.api.task:Task")
generators = Registry("generators", "explbench.api.generator:Generator")
explainers = Registry("explainers", "explbench.api.explainer:Explainer")
metrics = Registry("metrics", "explbench.api.metric:Metric")

REGISTRIES = {r.kind: r for r in (tasks, generators, explainers, metrics)}

register_task = tasks.register
register_generator = generators.register
register_explainer = explainers.register
register_metric = metrics.register
