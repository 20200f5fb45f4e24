"""The ``explbench`` command."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from explbench import registry

KINDS = ("tasks", "explainers", "generators", "metrics")


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
    return f"  {entry.name:<24} {entry.description}{extra}"


def cmd_list(args: argparse.Namespace) -> int:
    kinds = [args.kind] if args.kind else list(KINDS)
    for kind in kinds:
        reg = registry.REGISTRIES[kind]
        entries = reg.entries()
        print(f"{kind} ({len(entries)}):")
        for e in entries:
            print(_describe(kind, e))
    return 0


def _task(name: str, **kwargs: object):
    return registry.tasks.get(name)(**kwargs)


def cmd_train(args: argparse.Namespace) -> int:
    task_cls = registry.tasks.get(args.task)
    out = Path(args.out)
    record = task_cls.train(str(out), steps=args.steps, seed=args.seed, progress=not args.quiet)
    print(f"trained {args.task} in {record.get('train_seconds', '?')} s; best validation accuracy "
          f"{record.get('best_valid_accuracy', float('nan')):.3f}; weights in {out}/")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from explbench.evaluation import evaluate

    kwargs = {"weights": args.weights} if args.weights else {}
    task = _task(args.task, **kwargs)
    scores = evaluate(task, split=args.split, n=args.n, seed=args.seed, progress=not args.json)
    if args.json:
        print(json.dumps(scores))
    else:
        print(f"{task.name} on {scores['n']} {args.split} excerpts (seed {args.seed}):")
        for key in ("accuracy", "balanced_accuracy", "f1", "auroc"):
            print(f"  {key:<18} {scores[key]:.4f}")
    return 0


def cmd_check_explainer(args: argparse.Namespace) -> int:
    from explbench.conformance import check_explainer, format_report

    if args.plugin:
        from explbench.plugins import load_plugin

        for p in args.plugin:
            load_plugin(p)
    results = check_explainer(args.name, seed=args.seed)
    print(format_report(results))
    return 0 if all(r.passed for r in results) else 1


def cmd_demo(args: argparse.Namespace) -> int:
    """Until the protocol lands: score the committed model on freshly rendered test songs."""
    ns = argparse.Namespace(task="svd-synth", split="test", n=args.n, seed=args.seed, json=False,
                            weights=None)
    return cmd_evaluate(ns)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="explbench", description="Benchmark audio explainers on "
                                "inputs whose cause is known.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("list", help="list tasks, explainers, generators or metrics")
    s.add_argument("kind", nargs="?", choices=KINDS)
    s.set_defaults(func=cmd_list)

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
    s.add_argument("--weights", default=None, help="a checkpoint other than the committed one")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("check-explainer", help="conformance check of an explainer, in plain words")
    s.add_argument("name")
    s.add_argument("--plugin", action="append", default=[], help="Python file that registers it")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_check_explainer)

    s = sub.add_parser("demo", help="the main job on the embedded default task")
    s.add_argument("--n", type=int, default=200)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (registry.UnknownName, FileNotFoundError, ValueError, ImportError) as exc:
        print(f"explbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("explbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
