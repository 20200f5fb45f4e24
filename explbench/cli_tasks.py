"""``explbench check-task``: the task conformance check, in plain words."""

from __future__ import annotations

import argparse


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add this module's subcommands (none yet)."""
