"""What every group of verbs shares: error lines, plug-in loading, task parameters, messages for file-system errors."""

from __future__ import annotations

import errno
import shutil
import sys
from pathlib import Path
from explbench.api import registry


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


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


class RunFilesError(RuntimeError):
    """A file-system failure during a run, already phrased for the user."""


def fs_message(exc: OSError, resumable: Path | None = None, me: str = "explbench",
               where: Path | None = None) -> str:
    """A file-system error in plain words with the fix: full disk, read-only folder, …

    ``where`` names the folder being written when the error does not name a file.
    """
    from explbench.store.provenance import cache_dir

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
