"""``explbench train``, ``evaluate`` and ``check-explainer``: a task's model and a plug-in's conformance."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from explbench.api import registry
from explbench.cli.tasks import add_task_arguments
from explbench.cli.common import _classifier, _load_plugins, _task, _task_params, command_name, resolve_weights


def cmd_train(args: argparse.Namespace) -> int:
    task_cls = registry.tasks.get(args.task)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = task_cls.train(str(out), steps=args.steps, seed=args.seed, progress=not args.quiet)
    me = command_name()
    print(f"trained {args.task} in {record.get('train_seconds', '?')} s; best validation accuracy "
          f"{record.get('best_valid_accuracy', float('nan')):.3f}; weights in {out}/\n"
          f"use them with:\n  {me} evaluate {args.task} --weights {out}\n"
          f"  {me} run --task {args.task} --task-param weights={out} --suite smoke")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from explbench.checks.evaluation import evaluate

    _load_plugins(args.plugin)
    params = _task_params(args.task_param)
    if args.weights:
        params["weights"] = resolve_weights(args.weights)
    task = _task(args.task, **params)
    _classifier(task, params.get("weights"))
    scores = evaluate(task, split=args.split, n=args.n, seed=args.seed, progress=not args.json)
    if args.json:
        print(json.dumps(scores))
    else:
        print(f"{task.name} on {scores['n']} {args.split} excerpts (seed {args.seed}):")
        for key in ("accuracy", "balanced_accuracy", "f1", "auroc"):
            print(f"  {key:<18} {scores[key]:.4f}")
    return 0


def cmd_check_explainer(args: argparse.Namespace) -> int:
    from explbench.checks.explainer_checks import check_explainer, format_report

    _load_plugins(args.plugin)
    results = check_explainer(args.name, seed=args.seed)
    print(format_report(results))
    return 0 if all(r.passed for r in results) else 1


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``train``, ``evaluate`` and ``check-explainer``."""
    s = sub.add_parser("train", help="train a task's model (progress bar; writes weights to --out)")
    s.add_argument("task")
    s.add_argument("--steps", type=int, default=None, help="optimisation steps (task default if unset)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, help="folder for the weights and training record")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", help="accuracy, balanced accuracy, F1 and AUROC on held-out excerpts")
    s.add_argument("task")
    s.add_argument("--split", default="test", choices=("train", "valid", "test"))
    s.add_argument("--n", type=int, default=400, help="number of excerpts (balanced)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--weights", default=None, help="a checkpoint other than the committed one "
                   "(a file, or the folder `explbench train --out DIR` wrote)")
    add_task_arguments(s)
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("check-explainer", help="conformance check of an explainer, in plain words")
    s.add_argument("name")
    s.add_argument("--plugin", action="append", default=[], help="Python file that registers it")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_check_explainer)


