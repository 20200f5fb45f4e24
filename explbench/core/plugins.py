"""Loading a user's plug-in file (an explicit opt-in: it runs the file's code)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_plugin(path: str | Path) -> ModuleType:
    """Import a Python file so its ``@register_explainer`` (etc.) decorators run.

    While the file runs, its folder is on ``sys.path``, so it can import a neighbouring file.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ImportError
        When importing it fails; the message names the file and the original error.
    """
    p = Path(path).resolve()
    if not p.is_file():
        raise FileNotFoundError(f"plug-in file {str(path)!r} does not exist")
    name = f"explbench_plugin_{p.stem}_{hashlib.sha1(str(p).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    for module in list(sys.modules.values()):  # imported already, by a neighbour that builds on it
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve() == p:
            return module
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import plug-in {str(path)!r}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # while it runs, the file's folder is importable: a plug-in may build on its neighbour
    # (``from my_task import TwoTones``), as a script would
    folder = str(p.parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ImportError(f"plug-in {str(path)!r} failed to import: {type(exc).__name__}: {exc}") from exc
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)
    if p.stem.isidentifier() and p.stem not in sys.modules and _free_or_this(p.stem, p):
        sys.modules[p.stem] = module  # a neighbour's ``import my_task`` gets this one, not a copy
    return module


def _free_or_this(name: str, path: Path) -> bool:
    """Whether importing ``name`` would find nothing, or this very file."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    return spec is None or (spec.origin is not None and Path(spec.origin).resolve() == path)
