"""``explbench check-task``: the task conformance check, in plain words.

Also the task options other subcommands share (:func:`add_task_arguments`,
``cmd_check_task``): ``--plugin FILE.py`` (a file that registers a task) and
``--task-param KEY=VALUE`` (a constructor argument of the task, a TOML value or a plain string),
as ``explbench run`` spells it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def parse_params(items: list[str]) -> dict[str, Any]:
    """``["folder=/data/x", "warmup=4"]`` to ``{"folder": "/data/x", "warmup": 4}``.

    A value is read as TOML when it is one (numbers, booleans, quoted strings, arrays), else
    kept as the string it is.

    Raises
    ------
    ValueError
        For an item without ``=``.
    """
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--task-param {item!r}: write KEY=VALUE, e.g. --task-param folder=/data/clips")
        try:
            params[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            params[key.strip()] = value
    return params


def add_task_arguments(parser: argparse.ArgumentParser) -> None:
    """``--plugin FILE.py`` (repeatable) and ``--task-param KEY=VALUE`` (repeatable)."""
    parser.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                        help="import a file that registers the task (runs its code)")
    parser.add_argument("--task-param", action="append", default=[], metavar="KEY=VALUE",
                        help="a constructor argument of the task, e.g. --task-param folder=/data/clips "
                        "(repeatable; overrides the suite's [task-params])")


def cmd_check_task(args: argparse.Namespace) -> int:
    from explbench.api import registry
    from explbench.run import suite_files as suites
    from explbench.core.plugins import load_plugin
    from explbench.checks.task_checks import check_task, format_report

    for path in args.plugin:
        load_plugin(path)
    params = parse_params(args.task_param)
    generators: list[str] = []
    explainers: list[str] = []
    if args.suite:
        config = suites.load(args.suite)
        generators, explainers = list(config.generators), list(config.explainers)
        if config.task == args.name:
            params = {**config.task_params, **params}
    registry.tasks.get(args.name)  # an unknown name is a usage error (exit 2), not a failed check
    results = check_task(args.name, n=args.n, seed=args.seed, generators=generators,
                         explainers=explainers, params=params)
    print(f"check-task {args.name}" + (f" (hooks for suite {args.suite})" if args.suite else ""))
    print(format_report(results))
    return 0 if all(r.passed for r in results) else 1


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add ``check-task``."""
    s = subparsers.add_parser("check-task", help="conformance check of a task, in plain words")
    s.add_argument("name", help="registered task name (with --plugin for your own file)")
    add_task_arguments(s)
    s.add_argument("--n", type=int, default=16, help="excerpts drawn for the checks (default 16)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--suite", default="smoke",
                   help="suite whose generators' and explainers' hooks are required (default smoke; '' for none)")
    s.set_defaults(func=cmd_check_task)
