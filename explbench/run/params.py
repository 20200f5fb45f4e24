"""Checking a plug-in's suite parameters against its constructor, before anything runs.

The expected type of each parameter comes from the constructor's annotation (``float | None``,
``tuple[int, ...]``, ``str``, …) or, without one, from the type of its default. A number whose
default is positive must be positive, and one whose default is zero must not be negative
(batch sizes, counts, amplitudes, frequencies); the constructor itself checks the rest when it
is called.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class ParamSpec:
    """One constructor parameter: its annotation (None when unknown) and its default."""

    name: str
    hint: Any
    default: Any

    @property
    def required(self) -> bool:
        return self.default is _EMPTY


def specs(cls: object) -> dict[str, ParamSpec] | None:
    """The constructor parameters of ``cls``; None when it takes ``**kwargs`` or cannot be read."""
    try:
        sig = inspect.signature(cls)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    init = getattr(cls, "__init__", cls)
    try:
        hints = typing.get_type_hints(init)
    except Exception:  # noqa: BLE001 - unresolvable forward references: go one by one
        hints = {}
        module = __import__(getattr(cls, "__module__", "builtins"), fromlist=["_"])
        for name, ann in getattr(init, "__annotations__", {}).items():
            try:
                hints[name] = eval(ann, vars(module)) if isinstance(ann, str) else ann  # noqa: S307
            except Exception:  # noqa: BLE001
                pass
    out = {}
    for name, p in sig.parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL,):
            continue
        out[name] = ParamSpec(name, hints.get(name), p.default)
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if hint is type(None):
        return "nothing"
    if origin in (typing.Union, types.UnionType):
        parts = [_describe(a) for a in typing.get_args(hint) if a is not type(None)]
        return " or ".join(parts)
    if hint is float:
        return "a number"
    if hint is int:
        return "an integer"
    if hint is bool:
        return "true or false"
    if hint is str:
        return "a string"
    if origin in (tuple, list, typing.Sequence) or hint in (tuple, list):
        args = typing.get_args(hint)
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} values ({', '.join(_describe(a) for a in args)})"
        inner = _describe(args[0]) if args else "values"
        return f"a list of {inner.removeprefix('a ').removeprefix('an ')}s" if args else "a list"
    if origin is dict or hint is dict:
        return "a table"
    return getattr(hint, "__name__", str(hint))


def _conforms(value: Any, hint: Any) -> bool | None:
    """Whether ``value`` fits ``hint``; None when the hint is not one this module understands."""
    if hint is None or hint is Any:
        return None
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        results = [_conforms(value, a) for a in typing.get_args(hint)]
        if any(r is True for r in results):
            return True
        return None if any(r is None for r in results) else False
    if hint is type(None):
        return value is None
    if hint is float:
        return _is_number(value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is bool:
        return isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (tuple, list) or hint in (tuple, list) or origin is typing.Sequence:
        if not isinstance(value, (list, tuple)):
            return False
        args = typing.get_args(hint)
        if not args:
            return True
        if origin is tuple and args[-1] is not Ellipsis:
            if len(value) != len(args):
                return False
            rs = [_conforms(v, a) for v, a in zip(value, args)]
        else:
            rs = [_conforms(v, args[0]) for v in value]
        return False if any(r is False for r in rs) else True
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return None


def _from_default(default: Any) -> Any:
    """A hint guessed from a default value (None when the default says nothing)."""
    if default is _EMPTY or default is None:
        return None
    if isinstance(default, bool):
        return bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    if isinstance(default, str):
        return str
    if isinstance(default, (list, tuple)):
        return list
    return None


def _numbers(value: Any) -> list[float]:
    if _is_number(value):
        return [float(value)]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _numbers(v)]
    return []


def problem(spec: ParamSpec, value: Any) -> str | None:
    """What is wrong with ``value`` for ``spec`` (None when nothing is)."""
    hint = spec.hint if spec.hint is not None else _from_default(spec.default)
    ok = _conforms(value, hint)
    if ok is False:
        return f"must be {_describe(hint)}, got {value!r}"
    for x in _numbers(value):
        if not math.isfinite(x):
            return f"must be finite, got {value!r}"
    defaults = _numbers(spec.default) if spec.default is not _EMPTY else []
    if defaults:
        lowest = min(defaults)
        values = _numbers(value)
        if lowest > 0 and any(v <= 0 for v in values):
            return f"must be positive (its default is {spec.default!r}), got {value!r}"
        if lowest == 0 and any(v < 0 for v in values):
            return f"must not be negative (its default is {spec.default!r}), got {value!r}"
    return None
