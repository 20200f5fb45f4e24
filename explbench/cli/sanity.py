"""``explbench sanity``: the model-randomisation check of a run's explainers.

``explbench.cli`` calls :func:`add_parsers` on its subparsers; the check itself lives in
:mod:`explbench.studies.sanity`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def cmd_sanity(args: argparse.Namespace) -> int:
    """Re-explain a sample of the run's cases under cumulative weight randomisation."""
    from explbench.core.plugins import load_plugin
    from explbench.studies.sanity import run_sanity
    from explbench.studies.sanity_text import to_text

    for path in args.plugin:
        load_plugin(path)
    result = run_sanity(Path(args.run), n=args.n, explainers=_split(args.explainers), seed=args.seed,
                        device=args.device, progress=not args.quiet,
                        log=lambda s: print(s, file=sys.stderr))
    print(to_text(result), end="")
    print(f"\nwrote {Path(args.run) / 'sanity.csv'} and {Path(args.run) / 'sanity.json'}", file=sys.stderr)
    return 0


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sanity``."""
    from explbench.studies.sanity_result import DEFAULT_N, min_clusters

    s = subparsers.add_parser(
        "sanity", help="model-randomisation check: does each explainer's ranking change when the "
        "classifier's weights are re-initialised? (writes RUN/sanity.csv)",
        description="Re-explain a seeded sample of a run's cases with the classifier's layers "
        "re-initialised cumulatively from the output layer down, and report Spearman rho between "
        "the trained and the randomised model's segment rankings (Adebayo et al., 2018).")
    s.add_argument("run", metavar="RUN", help="a run folder written by 'explbench run'")
    s.add_argument("--n", type=int, default=DEFAULT_N,
                   help=f"cases to re-explain, spread over generators and clusters (default {DEFAULT_N}; "
                   f"intervals need at least {min_clusters()} clusters)")
    s.add_argument("--explainers", default=None,
                   help="comma-separated names (default: the run's; others are explained afresh)")
    s.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="import a file that registers explainers (runs its code)")
    s.add_argument("--seed", type=int, default=None, help="seed of the sample and randomisation "
                   "(default: the run's seed)")
    s.add_argument("--device", default="cpu", help="cpu or cuda")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_sanity)
