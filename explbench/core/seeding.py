"""Seeds derived from one base seed and a few keys, the same on every machine and Python."""

from __future__ import annotations

import hashlib
import numpy as np


def seed_for(*keys: str | int | None, base: int) -> int:
    """A stable 63-bit seed derived from ``base`` and a sequence of keys.

    Uses SHA-256 over a typed encoding of the keys, so it is identical across processes,
    machines and Python versions (unlike ``hash()``), and ``("1",)`` differs from ``(1,)``.

    Parameters
    ----------
    *keys : str, int or None
        Names and indices identifying the unit of work (e.g. generator, explainer, metric).
    base : int
        The run's master seed.

    Returns
    -------
    int in ``[0, 2**63)``
    """
    parts = [_encode_key(base)]
    parts.extend(_encode_key(k) for k in keys)
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


def _encode_key(key: object) -> str:
    if key is None:
        return "n:"
    if isinstance(key, (bool, np.bool_)):
        return f"b:{int(key)}"
    if isinstance(key, (int, np.integer)):
        return f"i:{int(key)}"
    if isinstance(key, str):
        return f"s:{key}"
    raise TypeError(f"seed keys must be str, int or None, got {type(key).__name__}: {key!r}")


__all__ = ["seed_for"]
