"""The ``explbench`` command."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from explbench import registry

KINDS = ("tasks", "explainers", "generators", "metrics")


#: modules whose ``add_parsers(subparsers)`` adds further subcommands
SUBCOMMAND_MODULES = ("explbench.cli_results", "explbench.cli_sanity", "explbench.cli_tasks")


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

    _load_plugins(args.plugin)
    results = check_explainer(args.name, seed=args.seed)
    print(format_report(results))
    return 0 if all(r.passed for r in results) else 1


def _load_plugins(paths: list[str]) -> None:
    from explbench.plugins import load_plugin

    for p in paths:
        load_plugin(p)


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def cmd_run(args: argparse.Namespace) -> int:
    import time

    from explbench import suite as suites
    from explbench.runner import execute
    from explbench.store import RunStore
    from explbench.summary import headline, to_text

    _load_plugins(args.plugin)
    if args.resume:
        store = RunStore(Path(args.resume))
        config = suites.SuiteConfig.from_dict(store.config()["suite"])
        suites.validate(config)
        out = Path(args.resume)
    else:
        config = suites.load(args.suite)
        config = suites.override(config, task=args.task, explainers=_split(args.explainers),
                                 generators=_split(args.generators), seed=args.seed)
        out = Path(args.out) if args.out else Path("runs") / f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    print(f"run folder: {out}", file=sys.stderr)
    try:
        result = execute(config, out, resume=bool(args.resume), device=args.device,
                         progress=not args.quiet, log=lambda s: print(s, file=sys.stderr))
    except KeyboardInterrupt:
        print(f"\nstopped; every finished explanation is kept. Continue with:\n"
              f"  explbench run --resume {out}", file=sys.stderr)
        return 130
    table = headline(result.metrics, result.timing)
    if table.empty:
        print("no case was generated, so there is nothing to score; see the generator messages above")
    else:
        print(to_text(table.set_index("explainer").T.reset_index().rename(columns={"index": "metric"})))
    if result.n_failed:
        print(f"\n{result.n_failed} explanations failed; see 'error' in {out / 'records.jsonl'}")
    print(f"\nrun folder: {out}  (metrics.csv, records.jsonl, provenance.json)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The smoke suite on the embedded default task."""
    ns = argparse.Namespace(suite="smoke", task=None, explainers=None, generators=None, seed=None,
                            out=args.out, resume=None, device="cpu", plugin=[],
                            quiet=False)
    return cmd_run(ns)


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

    s = sub.add_parser("run", help="run a benchmark suite (progress bars; resumable)")
    s.add_argument("--suite", default="smoke", help="preset (smoke, default, paper) or a .toml file")
    s.add_argument("--task", default=None)
    s.add_argument("--explainers", default=None, help="comma-separated names (overrides the suite)")
    s.add_argument("--generators", default=None, help="comma-separated names (overrides the suite)")
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--out", default=None, help="run folder (default runs/SUITE-TIMESTAMP)")
    s.add_argument("--resume", default=None, metavar="RUN", help="continue a stopped run")
    s.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="import a file that registers explainers (runs its code)")
    s.add_argument("--device", default="cpu", help="cpu or cuda")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_run)

    from importlib import import_module

    for module in SUBCOMMAND_MODULES:  # each adds its own subcommands
        import_module(module).add_parsers(sub)

    s = sub.add_parser("demo", help="the smoke suite on the embedded default task")
    s.add_argument("--out", default=None)
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (registry.UnknownName, FileNotFoundError, FileExistsError, ValueError, ImportError) as exc:
        print(f"explbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("explbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
