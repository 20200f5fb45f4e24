"""The ``explbench`` command.

Every failure a user can cause or meet (a bad suite, a device this machine lacks, a run folder
another process is writing, a read-only or full disk, a damaged file) ends as one line
``explbench: error: …`` that says what to do, and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import shutil
import sys
from pathlib import Path

from explbench import __version__

from explbench.api import registry

KINDS = ("tasks", "explainers", "generators", "metrics")


#: modules whose ``add_parsers(subparsers)`` adds further subcommands
SUBCOMMAND_MODULES = ("explbench.cli.results", "explbench.cli.sanity", "explbench.cli.tasks")


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


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


def command_name() -> str:
    """How the user can call explbench from here: ``explbench`` when it is on PATH, else the
    path of the script next to this Python (e.g. ``.venv/bin/explbench``)."""
    script = Path(sys.executable).parent / "explbench"
    found = shutil.which("explbench")
    if found and (not script.exists() or Path(found).resolve() == script.resolve()):
        return "explbench"
    if script.exists():
        try:
            return str(script.relative_to(Path.cwd()))
        except ValueError:
            return str(script)
    return f"{sys.executable} -m explbench.cli"


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


def resolve_weights(path: str, flag: str = "--weights") -> str:
    """A weights file: ``path`` itself, or the one weights file inside the folder ``path`` (the
    folder ``explbench train --out`` writes holds ``model.safetensors``)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{flag} {path}: no such file or folder")
    if not p.is_dir():
        return str(p)
    if (p / "model.safetensors").is_file():
        return str(p / "model.safetensors")
    found = sorted(q for ext in ("*.safetensors", "*.pt", "*.pth") for q in p.glob(ext))
    if len(found) == 1:
        return str(found[0])
    raise FileNotFoundError(
        f"{flag} {path}: the folder holds {'no' if not found else len(found)} weights files "
        f"({', '.join(q.name for q in found)}); pass the file itself, e.g. {p / 'model.safetensors'}"
        if found else f"{flag} {path}: the folder holds no weights file (*.safetensors, *.pt); "
        f"pass the folder `explbench train TASK --out DIR` wrote, or the file itself")


def _task(name: str, **kwargs: object):
    cls = registry.tasks.get(name)
    try:
        return cls(**kwargs)
    except (FileNotFoundError, ValueError):
        raise
    except Exception as exc:  # noqa: BLE001 - a user's task parameters
        raise ValueError(f"task {name!r} cannot be built with {kwargs or 'its defaults'}: "
                         f"{type(exc).__name__}: {exc}") from None


def _classifier(task: object, weights: str | None) -> None:
    """Build the task's classifier now, so that bad weights fail before any work is done."""
    try:
        task.classifier()  # type: ignore[attr-defined]
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign checkpoint
        what = f"the weights {weights}" if weights else "the model"
        raise ValueError(f"cannot load {what}: {type(exc).__name__}: {exc}; pass a checkpoint "
                         f"written by `explbench train` (its folder, or DIR/model.safetensors)") from None


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


def _load_plugins(paths: list[str]) -> list[Path]:
    """Import plug-in files; returns their resolved paths."""
    from explbench.core.plugins import load_plugin

    out = []
    for p in paths:
        load_plugin(p)
        out.append(Path(p).resolve())
    return out


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _task_params(items: list[str]) -> dict:
    """``KEY=VALUE`` pairs; a VALUE that reads as a TOML value (number, true, [..]) is one, and
    a ``weights`` folder resolves to the weights file inside it."""
    from explbench.cli.tasks import parse_params

    out = parse_params(items)
    weights = out.get("weights")
    if isinstance(weights, str) and Path(weights).is_dir():
        out["weights"] = resolve_weights(weights, f"--task-param weights={weights}")
    return out


#: run options that choose what a run does; --resume replays the stored run, so it refuses them
_RESUME_REFUSES = (("suite", "--suite"), ("task", "--task"), ("explainers", "--explainers"),
                   ("generators", "--generators"), ("seed", "--seed"), ("out", "--out"),
                   ("task_param", "--task-param"))


def _resume_plugins(store, given: list[str], log) -> list[Path]:
    """Load the plug-ins a run was started with (then those given now, which replace stored
    ones of the same file name); returns the paths loaded now from the command line."""
    from explbench.core.plugins import load_plugin

    names = {Path(p).name for p in given}
    for entry in store.config().get("plugins") or []:
        path = Path(entry["path"])
        if path.name in names:
            continue
        copy = store.folder / entry.get("copy", "")
        if path.is_file():
            if entry.get("sha256") and hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
                log(f"note: the plug-in {path} changed since this run started; the units still to "
                    f"run use the new code")
            load_plugin(path)
        elif entry.get("copy") and copy.is_file():
            log(f"note: the plug-in {path} is gone; loading the copy kept in the run ({copy})")
            load_plugin(copy)
        else:
            raise FileNotFoundError(
                f"this run was started with the plug-in {path}, which no longer exists; pass its "
                f"new location with --plugin FILE")
    return _load_plugins(given)


def _unregistered(config) -> list[str]:
    out = []
    if config.task not in registry.tasks:
        out.append(f"task {config.task!r}")
    out += [f"explainer {e!r}" for e in config.explainers if e not in registry.explainers]
    out += [f"generator {g!r}" for g in config.generators if g not in registry.generators]
    return out


def cmd_run(args: argparse.Namespace) -> int:
    import time

    from explbench.run import suite as suites
    from explbench.run.runner import check_device, execute
    from explbench.store.run_store import RunStore
    from explbench.results.summary import headline, to_text

    log = lambda s: print(s, file=sys.stderr)  # noqa: E731
    check_device(args.device)
    if args.timeout is not None and args.timeout < 0:
        raise ValueError(f"--timeout must be a number of seconds (0 for no limit), got {args.timeout}")
    if args.resume:
        given = [flag for attr, flag in _RESUME_REFUSES if getattr(args, attr, None) not in (None, [])]
        if given:
            raise ValueError(
                f"--resume continues {args.resume} exactly as it was started, so "
                f"{', '.join(given)} would be ignored; drop {'it' if len(given) == 1 else 'them'}, "
                f"or start a new run with --out")
        out = Path(args.resume)
        store = RunStore(out)
        stored = store.config()
        plugins = _resume_plugins(store, args.plugin, log)
        try:
            config = suites.SuiteConfig.from_dict(stored["suite"])
            missing = _unregistered(config)
            if missing:
                raise suites.SuiteError(
                    f"this run uses {', '.join(missing)}, which nothing loaded registers; if "
                    f"{'it comes' if len(missing) == 1 else 'they come'} from a plug-in file, "
                    f"resume with --plugin FILE")
            suites.validate(config, str(out / "config.json"))
        except suites.SuiteError as exc:
            raise suites.SuiteError(
                f"{exc}. The stored configuration of {out} cannot be run; start over with a new "
                f"--out (delete {out} if you no longer need it)") from None
    else:
        if args.retry_failed:
            raise ValueError("--retry-failed runs the failed units of a stopped run again; use it "
                             "with --resume RUN")
        plugins = _load_plugins(args.plugin)
        config = suites.load(args.suite or "smoke")
        config = suites.override(config, task=args.task, explainers=_split(args.explainers),
                                 generators=_split(args.generators), seed=args.seed,
                                 timeout=args.timeout, task_params=_task_params(args.task_param))
        out = Path(args.out) if args.out else Path("runs") / f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    log(f"run folder: {out}")
    me = command_name()
    executor = None
    if args.executor != "local" or args.workers is not None or args.scheduler:
        from explbench.run.executors import get_executor

        executor = get_executor(args.executor, workers=args.workers, scheduler=args.scheduler)
    try:
        result = execute(config, out, resume=bool(args.resume), device=args.device,
                         progress=not args.quiet, log=log, batch_size=args.batch_size,
                         timeout=args.timeout if args.resume else None,  # else in the suite
                         retry_failed=args.retry_failed, plugins=plugins,
                         executor=executor)
    except KeyboardInterrupt:
        if RunStore(out).exists():
            log(f"\nstopped; every finished explanation is kept. Continue with:\n"
                f"  {me} run --resume {out}")
        else:
            log("\nstopped before the run folder was written")
        return 130
    except OSError as exc:
        if isinstance(exc, (FileNotFoundError, FileExistsError)) and exc.filename is None:
            raise
        raise RunFilesError(fs_message(exc, out if RunStore(out).exists() else None, me,
                                       where=out)) from None
    finally:
        if executor is not None:
            executor.close()
    table = headline(result.metrics, result.timing)
    if table.empty:
        print("no explanation could be scored; see the messages above")
    else:
        print(to_text(table.set_index("explainer").T.reset_index().rename(columns={"index": "metric"})))
    if result.n_failed:
        print(f"\n{result.n_failed} explanations failed; see 'error' in {out / 'records.jsonl'}"
              + (f" (run them again with `{me} run --resume {out} --retry-failed`)"))
    print(f"\nrun folder: {out}  (metrics.csv, records.jsonl, provenance.json)\n"
          f"next: {me} report {out}    # an HTML report of this run")
    return 0


class RunFilesError(RuntimeError):
    """A file-system failure during a run, already phrased for the user."""


def fs_message(exc: OSError, resumable: Path | None = None, me: str = "explbench",
               where: Path | None = None) -> str:
    """A file-system error in plain words with the fix: full disk, read-only folder, …

    ``where`` names the folder being written when the error does not name a file.
    """
    from explbench.store.run_store import cache_dir

    where = exc.filename or (f"into {where}" if where is not None else "a file")
    what = f"cannot write {where}: {exc.strerror or exc}"
    in_cache = False
    try:
        in_cache = Path(str(where)).resolve().is_relative_to(cache_dir().resolve())
    except (OSError, ValueError):
        pass
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1), errno.EFBIG):
        fix = "the disk is full; free some space"
        if resumable is not None:
            fix += (f", then continue with `{me} run --resume {resumable}` (every finished "
                    f"explanation is kept)")
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = ("the case cache is not writable; set EXPLBENCH_CACHE to a writable folder"
               if in_cache else "the folder is not writable; choose a writable place with --out")
    else:
        fix = "check the path and try again"
    return f"{what}; {fix}"


def cmd_demo(args: argparse.Namespace) -> int:
    """The smoke suite on the embedded default task."""
    argv = ["run", "--suite", "smoke"] + (["--out", args.out] if args.out else [])
    return cmd_run(build_parser().parse_args(argv))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="explbench", description="Benchmark audio explainers on "
                                "inputs whose cause is known.")
    p.add_argument("--version", action="version", version=f"explbench {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("list", help="list tasks, explainers, generators or metrics")
    s.add_argument("kind", nargs="?", choices=KINDS)
    s.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="import a file that registers plug-ins first (runs its code)")
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
    s.add_argument("--weights", default=None, help="a checkpoint other than the committed one "
                   "(a file, or the folder `explbench train --out DIR` wrote)")
    from explbench.cli.tasks import add_task_arguments

    add_task_arguments(s)
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("check-explainer", help="conformance check of an explainer, in plain words")
    s.add_argument("name")
    s.add_argument("--plugin", action="append", default=[], help="Python file that registers it")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_check_explainer)

    s = sub.add_parser("run", help="run a benchmark suite (progress bars; resumable)")
    s.add_argument("--suite", default=None, help="preset (smoke, default, paper) or a .toml file "
                   "(default smoke)")
    s.add_argument("--task", default=None)
    s.add_argument("--task-param", action="append", default=[], metavar="KEY=VALUE",
                   help="a task constructor argument, e.g. weights=DIR for weights trained with "
                   "`explbench train --out DIR` (repeatable; overrides [task-params])")
    s.add_argument("--explainers", default=None, help="comma-separated names (overrides the suite)")
    s.add_argument("--generators", default=None, help="comma-separated names (overrides the suite)")
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--out", default=None, help="run folder (default runs/SUITE-TIMESTAMP)")
    s.add_argument("--resume", default=None, metavar="RUN", help="continue a stopped run, "
                   "exactly as it was started (its plug-ins are loaded again)")
    s.add_argument("--retry-failed", action="store_true",
                   help="with --resume: run failed (e.g. timed-out) explanations again")
    s.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="time limit per explanation (0: none; default: the suite's `timeout`, "
                   "else 120 s + 0.1 s per query of budget)")
    s.add_argument("--batch-size", type=int, default=None, metavar="N",
                   help="pin the classifier's batch size (default: measured once per machine)")
    s.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                   help="import a file that registers explainers (runs its code)")
    s.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    s.add_argument("--executor", default="local", choices=("local", "processes", "dask"),
                   help="where explanations are computed (this process stays the one writer)")
    s.add_argument("--workers", type=int, default=None, help="worker processes (processes, dask)")
    s.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="dask: a running scheduler, e.g. tcp://HOST:8786")
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
    from explbench.store.lock import RunLocked

    args = build_parser().parse_args(argv)
    try:
        from explbench.run.runner import RunError
    except ImportError:  # pragma: no cover - only while the runner is being edited
        RunError = RuntimeError  # type: ignore[misc,assignment]
    try:
        return args.func(args)
    except (registry.UnknownName, FileNotFoundError, FileExistsError, ValueError, ImportError,
            RunLocked, RunError, RunFilesError) as exc:
        _err(f"explbench: error: {exc}")
        return 2
    except OSError as exc:
        _err(f"explbench: error: {fs_message(exc)}")
        return 2
    except KeyboardInterrupt:
        _err("explbench: interrupted")
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
