"""The results commands of ``explbench``: ``leaderboard``, ``compare`` and ``report``.

``explbench.cli`` calls :func:`add_parsers` on its subparsers; :func:`main` runs these commands
on their own (tests, ``python -m explbench.cli.results``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from explbench.results import board as lb
from explbench.results import render
from explbench.results.compat import IncompatibleRuns, config_differences
from explbench.store.runs import NotARun, Run, collect, load_run


def _one_task(runs: list[Run], task: str | None) -> None:
    tasks = sorted({r.task for r in runs})
    if task is None and len(tasks) > 1:
        raise ValueError(f"the runs are of several tasks ({', '.join(tasks)}); choose one with --task")


def _partition(runs: list[Run], reference: Run, explicit: set[Path]) -> list[Run]:
    """Keep runs of the reference configuration; refuse the others (an error for runs named
    directly with --runs, a message on stderr for runs found under a root folder)."""
    kept = []
    for r in runs:
        diff = config_differences(reference, r)
        if not diff:
            kept.append(r)
            continue
        msg = (f"run {r.run_id} ({r.folder}) has a different protocol configuration than "
               f"{reference.run_id}: " + "; ".join(diff))
        if r.folder.resolve() in explicit:
            raise IncompatibleRuns(msg + "; runs of different configurations are never merged "
                                   "(choose the reference with --config-of RUN)")
        print(f"refused: {msg}", file=sys.stderr)
    return kept


def _formats(text: str) -> tuple[str, ...]:
    chosen = tuple(f.strip() for f in text.split(",") if f.strip())
    bad = [f for f in chosen if f not in render.FORMATS]
    if bad or not chosen:
        raise ValueError(f"--format {text!r}: choose from {', '.join(render.FORMATS)}, comma-separated "
                         f"(e.g. --format md,csv)")
    return chosen


def _load_plugins(paths: list[str]) -> None:
    from explbench.core.plugins import load_plugin

    for p in paths:
        load_plugin(p)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Build the leaderboard of one task and write the asked formats into --out-dir.

    Prints, on stdout, the headline table when Markdown is written (a terminal-friendly view,
    not the whole board) and then the path of every file written, one per line; never a page.
    """
    formats = _formats(args.format)
    if not args.runs and not Path("runs").is_dir():
        raise NotARun("there is no runs/ folder here; run a suite first ('explbench run') or "
                      "pass the run folders with --runs DIR ...")
    paths = [Path(p) for p in (args.runs or ["runs"])]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = collect(paths, task=args.task)
    for w in caught:
        print(str(w.message), file=sys.stderr)
    _one_task(runs, args.task)
    reference = load_run(args.config_of) if args.config_of else runs[0]
    explicit = {p.resolve() for p in paths if (p / "config.json").exists()}
    runs = _partition(runs, reference, explicit)
    if not runs:
        raise NotARun(f"no run has the configuration of {reference.run_id}")
    board = lb.make_board(runs, reference)
    written = render.write(board, args.out_dir, formats)
    if "md" in formats:
        print(render.headline_md(board))
    for path in written:
        print(path)
    print(f"{len(written)} file(s) written from {len(runs)} run(s)", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare two runs and print one sentence per metric and explainer."""
    from explbench.results.compare import compare

    result = compare(args.run_a, args.run_b)
    print(result.text(), end="")
    if args.csv:
        result.table.to_csv(args.csv, index=False, float_format="%.6g", lineterminator="\n")
        print(f"wrote {args.csv}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write a run's self-contained HTML report."""
    from explbench.results.report import write_report

    _load_plugins(args.plugin)
    path = write_report(args.run, args.out)
    size = path.stat().st_size / 1e6
    print(f"wrote {path} ({size:.1f} MB); open it in a browser (it loads nothing from the network)")
    return 0


def cmd_replication(args: argparse.Namespace) -> int:
    """Print (and with --out write) a run's numbers beside the paper's Table 1, Table 2 and Figure 4."""
    from explbench.studies.replication import render, replication

    run = load_run(args.run)
    try:
        text = render(replication(run, explainer=args.explainer))
    except ValueError as exc:
        raise NotARun(str(exc)) from exc
    print(text, end="")
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    """Compress a finished run's records.jsonl into records.jsonl.gz (for a committed bundle)."""
    from explbench.store.run_store import RunStore

    store = RunStore(Path(args.run))
    if not store.exists():
        raise NotARun(f"{args.run} is not a run folder (no config.json)")
    before = store.records_path.stat().st_size if store.records_path.exists() else None
    path = store.pack()
    size = path.stat().st_size
    saved = f" ({before / 1e6:.1f} MB -> {size / 1e6:.1f} MB)" if before else ""
    print(f"wrote {path}{saved}; every command reads it as it reads records.jsonl")
    return 0


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add ``leaderboard``, ``compare``, ``replication``, ``report`` and ``pack`` to the ``explbench`` subcommands."""
    s = subparsers.add_parser("leaderboard", help="leaderboard of finished runs, ranked by paired tests")
    s.add_argument("--task", default=None, help="task whose runs to use (needed when runs of several tasks exist)")
    s.add_argument("--runs", nargs="+", default=None, metavar="DIR",
                   help="run folders, or folders containing runs (default: runs/)")
    s.add_argument("--format", default="md,csv", metavar="md,csv,html",
                   help="what to write into --out-dir, comma-separated (default md,csv: the board "
                        "files); prints the paths written (and, with md, the headline table)")
    s.add_argument("--out-dir", default="leaderboards",
                   help="where <task>.md / -forest-<generator>.png / .csv / -pairs.csv / .html go "
                        "(default leaderboards/)")
    s.add_argument("--config-of", default=None, metavar="RUN",
                   help="use the protocol configuration of this run (default: the oldest run)")
    s.set_defaults(func=cmd_leaderboard)

    s = subparsers.add_parser("compare", help="compare two runs, paired on shared cases")
    s.add_argument("run_a", metavar="RUN_A")
    s.add_argument("run_b", metavar="RUN_B")
    s.add_argument("--csv", default=None, help="also write the comparison table here")
    s.set_defaults(func=cmd_compare)

    s = subparsers.add_parser("replication", help="a run's numbers beside the veracity paper's Tables 1-2 "
                                                  "and Figure 4, with paired tests of each finding")
    s.add_argument("run", metavar="RUN")
    s.add_argument("--explainer", default="lime", help="explainer set beside the paper's LIME (default lime)")
    s.add_argument("--out", default=None, metavar="FILE.md", help="also write the markdown here")
    s.set_defaults(func=cmd_replication)

    s = subparsers.add_parser("report", help="self-contained HTML report of a run (plots, audio)")
    s.add_argument("run", metavar="RUN")
    s.add_argument("--out", default=None, help="output file (default RUN/report.html)")
    s.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="import a file that registers the run's task or explainers (runs its code)")
    s.set_defaults(func=cmd_report)

    s = subparsers.add_parser("pack", help="compress a run's records.jsonl into records.jsonl.gz "
                                           "(for a committed bundle; a resume unpacks it)")
    s.add_argument("run", metavar="RUN")
    s.set_defaults(func=cmd_pack)


def main(argv: list[str] | None = None) -> int:
    """Run one results command; errors print as ``explbench: error: …`` with status 2."""
    p = argparse.ArgumentParser(prog="explbench")
    add_parsers(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, KeyError, ImportError) as exc:
        print(f"explbench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
