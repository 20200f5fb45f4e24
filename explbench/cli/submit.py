"""``explbench submit`` and ``explbench verify`` (being written)."""

from __future__ import annotations

import argparse


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``submit`` and ``verify``."""
