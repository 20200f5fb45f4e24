"""The ``explbench`` command.

Every failure a user can cause or meet (a bad suite, a device this machine lacks, a run folder
another process is writing, a read-only or full disk, a damaged file) ends as one line
``explbench: error: …`` that says what to do, and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from explbench import __version__

from explbench.api import registry
from explbench.run.prepare import RunError
from explbench.store.lock import RunLocked
from explbench.cli.common import RunFilesError, _err, _load_plugins, fs_message

KINDS = ("tasks", "explainers", "generators", "metrics")


#: modules whose ``add_parsers(subparsers)`` adds further subcommands
SUBCOMMAND_MODULES = ("explbench.cli.models", "explbench.cli.run", "explbench.cli.cases",
                      "explbench.cli.results", "explbench.cli.submit", "explbench.cli.sanity",
                      "explbench.cli.tasks")


def _describe(kind: str, entry: registry.Entry) -> str:
    obj = entry.obj
    extra = ""
    if kind == "explainers":
        flags = ["oracle" if getattr(obj, "oracle", False) else
                 ("model-agnostic" if getattr(obj, "model_agnostic", True) else "white-box")]
        cost = getattr(obj, "query_cost", "")
        if cost:
            flags.append(f"queries: {cost}")
        extra = f"  [{', '.join(flags)}]"
    elif kind == "metrics":
        arrow = {"higher": "higher is better", "lower": "lower is better"}.get(getattr(obj, "direction", ""), "")
        extra = f"  [{', '.join(x for x in (arrow, getattr(obj, 'category', '')) if x)}]"
    return f"  {entry.name:<24} {entry.description}{extra}"


def cmd_list(args: argparse.Namespace) -> int:
    _load_plugins(args.plugin)
    kinds = [args.kind] if args.kind else list(KINDS)
    for kind in kinds:
        reg = registry.REGISTRIES[kind]
        entries = reg.entries()
        print(f"{kind} ({len(entries)}):")
        for e in entries:
            print(_describe(kind, e))
        for name, problem in sorted(getattr(reg, "broken", {}).items()):
            print(f"  {name:<24} (not loaded: {problem})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="explbench", description="Benchmark audio explainers on "
                                "inputs whose cause is known.")
    p.add_argument("--version", action="version", version=f"explbench {__version__}")
    p.add_argument("--traceback", action="store_true",
                   help="on an error, print the Python traceback above the one-line message "
                        "(failed explanations keep theirs in the run's records)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("list", help="list tasks, explainers, generators or metrics")
    s.add_argument("kind", nargs="?", choices=KINDS)
    s.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="import a file that registers plug-ins first (runs its code)")
    s.set_defaults(func=cmd_list)

    from importlib import import_module

    for module in SUBCOMMAND_MODULES:  # each adds its own subcommands
        import_module(module).add_parsers(sub)

    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (registry.UnknownName, FileNotFoundError, FileExistsError, ValueError, ImportError,
            RunLocked, RunError, RunFilesError) as exc:
        if args.traceback:
            traceback.print_exc()
        _err(f"explbench: error: {exc}")
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        # Python would report the pipe again when it flushes stdout at exit; point it at nothing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        if args.traceback:
            traceback.print_exc()
        _err(f"explbench: error: {fs_message(exc)}")
        return 2
    except KeyboardInterrupt:
        _err("explbench: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
