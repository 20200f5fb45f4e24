"""``explbench sanity``: the model-randomisation check of a run's explainers."""

from __future__ import annotations

import argparse


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add this module's subcommands (none yet)."""
