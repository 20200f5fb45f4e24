"""Making what a plug-in returns storable as JSON, or saying exactly why it is not.

A record goes to ``records.jsonl`` as strict JSON (no NaN, no infinity). Plug-ins return numpy
scalars, numpy arrays, torch tensors and the odd NaN; :func:`jsonable` converts those and
refuses anything else with the path of the offending value, so the failure can be recorded
for that one explanation instead of stopping the run.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class NotStorable(TypeError):
    """A value that cannot be stored in a JSON record; the message names where it sits."""


def jsonable(value: Any, where: str = "value") -> Any:
    """A JSON-safe copy of ``value``.

    Converted: numpy scalars and arrays (to Python numbers and nested lists), torch tensors
    (the same, after ``detach().cpu()``), tuples (to lists). Non-finite floats become ``None``.
    Dict keys must be strings (numpy string and integer keys are converted to ``str``).

    Parameters
    ----------
    value : object
    where : str
        How to name ``value`` in an error, e.g. ``"extra"``.

    Raises
    ------
    NotStorable
        For any other object (a model, a function, a custom class), naming its path, e.g.
        ``extra['model']``.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return jsonable(value.item(), where)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufcUS?":
            raise NotStorable(f"{where} is a numpy array of dtype {value.dtype}; a record holds "
                              "only numbers, strings and booleans")
        if value.dtype.kind == "c":
            raise NotStorable(f"{where} is a complex array; store its real and imaginary parts apart")
        return jsonable(value.tolist(), where)
    if _is_tensor(value):
        return jsonable(value.detach().cpu().numpy(), where)
    if isinstance(value, (list, tuple)):
        return [jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(k, (np.str_, np.integer, int)) and not isinstance(k, bool):
                k = str(k)
            if not isinstance(k, str):
                raise NotStorable(f"{where} has the key {k!r} of type {type(k).__name__}; JSON "
                                  "keys must be strings")
            out[k] = jsonable(v, f"{where}[{k!r}]")
        return out
    raise NotStorable(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which cannot be "
        "stored in a JSON record; return numbers, strings, booleans, None, lists or dicts of "
        "them (numpy arrays and scalars are converted)")


def _is_tensor(value: Any) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return isinstance(value, torch.Tensor)


def sanitise_record(record: dict) -> dict:
    """A JSON-safe copy of a protocol record (see :func:`jsonable`); each field is converted
    under its own name, so an error says e.g. ``extra['model'] is a …``."""
    return {str(k): jsonable(v, str(k)) for k, v in record.items()}
