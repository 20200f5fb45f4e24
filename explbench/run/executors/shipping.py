"""Plug-in files that travel with the work, so remote workers need only ``pip install explbench``.

The main process reads each ``--plugin FILE.py`` into a :class:`ShippedFile` (name, source,
digest) and puts them in the ``init`` it hands to an executor; a worker calls
:func:`load_shipped` first thing in ``init``, which writes each file once into a per-user
temporary folder named by its digest and imports it (so its registrations run in the worker).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable


@dataclass(frozen=True)
class ShippedFile:
    """One plug-in file's contents.

    Attributes
    ----------
    name : str
        File name (no folders), e.g. ``"my_explainer.py"``.
    source : bytes
    digest : str
        First 16 hex digits of the SHA-256 of ``source``.
    """

    name: str
    source: bytes
    digest: str


def ship(paths: Iterable[str | os.PathLike]) -> tuple[ShippedFile, ...]:
    """Read plug-in files into shippable records (an error names a missing file)."""
    out = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise FileNotFoundError(f"plug-in file {str(p)!r} does not exist; pass an existing --plugin FILE.py")
        src = path.read_bytes()
        out.append(ShippedFile(path.name, src, hashlib.sha256(src).hexdigest()[:16]))
    return tuple(out)


def load_shipped(files: Iterable[ShippedFile], folder: str | os.PathLike | None = None) -> list[Path]:
    """Write each shipped file under ``folder/<digest>/<name>`` (once) and import it.

    Parameters
    ----------
    files : iterable of ShippedFile
    folder : path, optional
        Default: ``<tmp>/explbench-plugins-<uid>``.

    Returns
    -------
    list of Path
        Where the files now are (the paths they were imported from).
    """
    from explbench.core.plugins import load_plugin

    root = Path(folder) if folder is not None else Path(tempfile.gettempdir()) / f"explbench-plugins-{getattr(os, 'getuid', lambda: 0)()}"
    paths = []
    for f in files:
        target = root / f.digest / f.name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(f.source)
            os.replace(tmp, target)
        load_plugin(target)
        paths.append(target)
    return paths
