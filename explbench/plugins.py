"""Loading a user's plug-in file (an explicit opt-in: it runs the file's code)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_plugin(path: str | Path) -> ModuleType:
    """Import a Python file so its ``@register_explainer`` (etc.) decorators run.

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
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import plug-in {str(path)!r}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ImportError(f"plug-in {str(path)!r} failed to import: {type(exc).__name__}: {exc}") from exc
    return module
