"""``explbench run`` and ``explbench demo``: a suite, from its checks to its board-ready run folder."""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from explbench.api import registry
from explbench.run.case_pack import load_pack
from explbench.store.run_store import safe_name
from explbench.cli.common import RunFilesError, _load_plugins, _split, _task_params, command_name, fs_message


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

    from explbench.run import suite_files as suites
    from explbench.run.runner import execute
    from explbench.run.prepare import check_device
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
        out = Path(args.out) if args.out else Path("runs") / f"{safe_name(config.name)}-{time.strftime('%Y%m%d-%H%M%S')}"
    log(f"run folder: {out}")
    me = command_name()
    pack = load_pack(args.cases) if args.cases else None
    executor = None
    if args.executor != "local" or args.workers is not None or args.scheduler:
        from explbench.run.executors import get_executor

        executor = get_executor(args.executor, workers=args.workers, scheduler=args.scheduler)
    try:
        result = execute(config, out, resume=bool(args.resume), device=args.device,
                         progress=not args.quiet, log=log, batch_size=args.batch_size,
                         timeout=args.timeout if args.resume else None,  # else in the suite
                         retry_failed=args.retry_failed, plugins=plugins,
                         executor=executor, cases=pack)
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


def cmd_demo(args: argparse.Namespace) -> int:
    """The smoke suite on the embedded default task."""
    argv = ["run", "--suite", "smoke"] + (["--out", args.out] if args.out else [])
    parser = argparse.ArgumentParser(prog="explbench")
    add_run_parser(parser.add_subparsers(dest="command", required=True))
    return cmd_run(parser.parse_args(argv))


def add_run_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``run``."""
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
    s.add_argument("--cases", default=None, metavar="PACK",
                   help="run on exactly the cases of a pack ('explbench cases export'), every "
                        "case checked against its manifest, instead of generating them")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_run)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``run`` and ``demo``."""
    add_run_parser(sub)
    s = sub.add_parser("demo", help="the smoke suite on the embedded default task")
    s.add_argument("--out", default=None)
    s.set_defaults(func=cmd_demo)
