"""The results commands of ``explbench``: ``leaderboard``, ``compare`` and ``report``.

``explbench.cli`` calls :func:`add_parsers` on its subparsers; :func:`main` runs these commands
on their own (tests, ``python -m explbench.cli_results``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from explbench import leaderboard as lb


def _select_task(runs: list[lb.Run], task: str | None) -> list[lb.Run]:
    tasks = sorted({r.task for r in runs})
    if task is None and len(tasks) > 1:
        raise ValueError(f"the runs are of several tasks ({', '.join(tasks)}); choose one with --task")
    return runs


def _partition(runs: list[lb.Run], reference: lb.Run, explicit: set[Path]) -> list[lb.Run]:
    """Keep runs of the reference configuration; refuse the others (an error for runs named
    directly with --runs, a message on stderr for runs found under a root folder)."""
    kept = []
    for r in runs:
        diff = lb.config_differences(reference, r)
        if not diff:
            kept.append(r)
            continue
        msg = (f"run {r.run_id} ({r.folder}) has a different protocol configuration than "
               f"{reference.run_id}: " + "; ".join(diff))
        if r.folder.resolve() in explicit:
            raise lb.IncompatibleRuns(msg + "; runs of different configurations are never merged "
                                      "(choose the reference with --config-of RUN)")
        print(f"refused: {msg}", file=sys.stderr)
    return kept


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Build, write and print the leaderboard of one task."""
    if not args.runs and not Path("runs").is_dir():
        raise lb.NotARun("there is no runs/ folder here; run a suite first ('explbench run') or "
                         "pass the run folders with --runs DIR ...")
    paths = [Path(p) for p in (args.runs or ["runs"])]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = lb.collect(paths, task=args.task)
    for w in caught:
        print(str(w.message), file=sys.stderr)
    runs = _select_task(runs, args.task)
    reference = lb.load_run(args.config_of) if args.config_of else runs[0]
    explicit = {p.resolve() for p in paths if (p / "config.json").exists()}
    runs = _partition(runs, reference, explicit)
    if not runs:
        raise lb.NotARun(f"no run has the configuration of {reference.run_id}")
    table = lb.build(runs)
    md, csv = lb.write(runs, args.out_dir)
    if args.format == "md":
        print(lb.to_md(table, runs))
    elif args.format == "csv":
        print(csv.read_text(), end="")
    else:
        print(lb.to_html(table, runs), end="")
    print(f"wrote {md} and {csv} ({len(runs)} run(s))", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare two runs and print one sentence per metric and explainer."""
    from explbench.compare import compare

    result = compare(args.run_a, args.run_b)
    print(result.text(), end="")
    if args.csv:
        result.table.to_csv(args.csv, index=False, float_format="%.6g", lineterminator="\n")
        print(f"wrote {args.csv}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write a run's self-contained HTML report."""
    from explbench.report import write_report

    path = write_report(args.run, args.out)
    size = path.stat().st_size / 1e6
    print(f"wrote {path} ({size:.1f} MB); open it in a browser (it loads nothing from the network)")
    return 0


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add ``leaderboard``, ``compare`` and ``report`` to the ``explbench`` subcommands."""
    s = subparsers.add_parser("leaderboard", help="leaderboard of finished runs with 95 %% intervals")
    s.add_argument("--task", default=None, help="task whose runs to use (needed when runs of several tasks exist)")
    s.add_argument("--runs", nargs="+", default=None, metavar="DIR",
                   help="run folders, or folders containing runs (default: runs/)")
    s.add_argument("--format", default="md", choices=("md", "csv", "html"), help="what to print")
    s.add_argument("--out-dir", default="leaderboards", help="where <task>.md and <task>.csv go")
    s.add_argument("--config-of", default=None, metavar="RUN",
                   help="use the protocol configuration of this run (default: the oldest run)")
    s.set_defaults(func=cmd_leaderboard)

    s = subparsers.add_parser("compare", help="compare two runs, paired on shared cases")
    s.add_argument("run_a", metavar="RUN_A")
    s.add_argument("run_b", metavar="RUN_B")
    s.add_argument("--csv", default=None, help="also write the comparison table here")
    s.set_defaults(func=cmd_compare)

    s = subparsers.add_parser("report", help="self-contained HTML report of a run (plots, audio)")
    s.add_argument("run", metavar="RUN")
    s.add_argument("--out", default=None, help="output file (default RUN/report.html)")
    s.set_defaults(func=cmd_report)


def main(argv: list[str] | None = None) -> int:
    """Run one results command; errors print as ``explbench: error: …`` with status 2."""
    p = argparse.ArgumentParser(prog="explbench")
    add_parsers(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"explbench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
