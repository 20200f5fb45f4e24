"""The one run identity: what a run's cases and numbers depend on, computed, recorded once.

The model is identified by a hash of its classifier's ``state_dict`` (names, dtypes, shapes and
bytes of every tensor), the data by the task's data version and a hash of a few excerpts
(their audio, labels and song seeds). What a task *declares* (``model_hash()``,
``data_version()``) is recorded beside the computed values and never replaces them, except for
a classifier without tensors, whose declared ``model_hash()`` is all there is; without one its
cases are not cached and its runs are not comparable, and the run says why.

:func:`run_identity` adds the task parameters, sample rate, domain and batch size; the runner
writes it once into ``provenance.json["identity"]``.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
from dataclasses import dataclass

import numpy as np

from explbench.api.task import Task

#: the identity keys that must agree for two runs to be compared, and for a run to be resumed
IDENTITY_KEYS = ("task", "task_version", "model", "model_code", "data", "task_params",
                 "sample_rate", "domain_shape", "domain_axes")
#: excerpts hashed to identify a task's data
DATA_PROBE_EXCERPTS = 3


@dataclass(frozen=True)
class TaskIdentity:
    """Content identity of a task's model and data.

    Attributes
    ----------
    model : str or None
        Hash of the model; None when it cannot be computed.
    data : str
        The task's data version, or a hash of a few of its excerpts.
    model_source, data_source : str
        Where each came from, e.g. "model_hash()" or "state_dict".
    uncacheable : str or None
        Why cases cannot be cached (None when they can).
    declared : str or None
        The task's own ``model_hash()``, when it declares one.
    code : str or None
        :func:`code_hash` of the model's and the task's code.
    """

    model: str | None
    data: str
    model_source: str
    data_source: str
    uncacheable: str | None = None
    declared: str | None = None
    code: str | None = None

    def to_dict(self) -> dict:
        return {"model": self.model, "data": self.data, "model_source": self.model_source,
                "data_source": self.data_source, "uncacheable": self.uncacheable,
                "declared": self.declared, "code": self.code}


def _declares(task: object, method: str) -> bool:
    return getattr(type(task), method, None) is not getattr(Task, method, None)


#: the task methods whose code decides what the model sees and answers
TASK_METHODS = ("to_domain", "classifier", "decide", "magnitude", "magnitude_to_domain")


def normalised_source(obj: object) -> str | None:
    """The code of a class or function with comments, docstrings and layout removed (its AST),
    so that an edited comment keeps the identity and an edited line changes it; None when the
    source cannot be read (a built-in, a class defined at the prompt)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))  # type: ignore[arg-type]
    except (OSError, TypeError, SyntaxError):
        return None
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module))
                and body and isinstance(body[0], ast.Expr)
                and isinstance(getattr(body[0], "value", None), ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


def code_hash(task: object, classifier: object) -> str:
    """SHA-256 (16 hex digits) over the code a task's numbers depend on.

    It covers the source of every module class in the classifier that is not torch's own (for a
    TorchScript module, its compiled ``code``), of the modules the task holds (its front-end),
    and of the task's :data:`TASK_METHODS` where it defines them. A sign flipped in ``forward``
    or an edited ``to_domain`` changes it; a comment does not.
    """
    import torch

    parts: set[str] = set()
    modules: list[object] = []
    if isinstance(classifier, torch.nn.Module):
        modules += list(classifier.modules())
    for value in vars(task).values():
        if isinstance(value, torch.nn.Module):
            modules += list(value.modules())
    for m in modules:
        if isinstance(m, torch.jit.ScriptModule):
            try:
                parts.add("script:" + str(m.code))
            except Exception:  # noqa: BLE001 - a scripted module without forward code
                pass
            continue
        cls = type(m)
        if cls.__module__.split(".")[0] == "torch":
            continue
        parts.add(f"class:{cls.__module__}.{cls.__qualname__}:{normalised_source(cls)}")
    for name in TASK_METHODS:
        fn = getattr(type(task), name, None)
        if fn is not None and fn is not getattr(Task, name, None):
            parts.add(f"task.{name}:{normalised_source(fn)}")
    h = hashlib.sha256()
    for p in sorted(parts):
        h.update(p.encode() + b"\0")
    return h.hexdigest()[:16]


def state_dict_hash(module: object) -> str | None:
    """SHA-256 (16 hex digits) over a module's state_dict; None without tensors in it."""
    import torch

    try:
        state = module.state_dict()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - not a torch module, or one that cannot say
        return None
    h = hashlib.sha256()
    n = 0
    for name in sorted(state):
        value = state[name]
        if not hasattr(value, "detach"):
            continue
        t = value.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        n += 1
    return h.hexdigest()[:16] if n else None


def excerpt_hash(task: object, split: str, n: int = DATA_PROBE_EXCERPTS) -> str:
    """SHA-256 (16 hex digits) over the first ``n`` excerpts of ``split`` drawn with seed 0."""
    h = hashlib.sha256()
    for i, ex in enumerate(task.excerpts(split, n, 0)):  # type: ignore[attr-defined]
        if i >= n:
            break
        audio = np.ascontiguousarray(np.asarray(ex.audio, dtype=np.float32))
        h.update(f"{ex.label}|{ex.song_seed}|{ex.offset}|{audio.shape}|".encode())
        h.update(audio.tobytes())
    return h.hexdigest()[:16]


def task_identity(task: object, split: str) -> TaskIdentity:
    """The identity of ``task``'s model and of its data on ``split``, computed.

    The model: a hash of its classifier's ``state_dict`` whenever it has one (a declared
    ``model_hash()`` is recorded beside it, never in its place); a declared ``model_hash()``
    only for a classifier without tensors. The data: the declared ``data_version()`` (or the
    task's ``version``) joined with a hash of the first excerpts, so a changed renderer or a
    rewritten audio file gives another identity. Placeholders ("none", "") never stand for an
    identity.
    """
    declared = str(task.model_hash()) if _declares(task, "model_hash") else "none"  # type: ignore[attr-defined]
    declared_ok = bool(declared) and declared.lower() != "none"
    uncacheable = None
    classifier = task.classifier()  # type: ignore[attr-defined]
    model = state_dict_hash(classifier)
    model_source = "state_dict"
    if model is None and declared_ok:
        model, model_source = declared, "model_hash()"
    elif model is None:
        model_source = "none"
        uncacheable = (f"task {getattr(task, 'name', '?')!r} declares no model_hash() and its "
                       "classifier has no state_dict to hash, so cases made for one model "
                       "could be served to another, and its runs cannot be compared with other "
                       "runs; they are generated for this run only (define model_hash() to "
                       "cache and compare them)")
    version = str(task.data_version()) if _declares(task, "data_version") else str(getattr(task, "version", "?"))  # type: ignore[attr-defined]
    data = f"{version}+excerpts-{excerpt_hash(task, split)}"
    data_source = (("data_version()" if _declares(task, "data_version") else "version")
                   + f" and a hash of {DATA_PROBE_EXCERPTS} excerpts")
    return TaskIdentity(model, data, model_source, data_source, uncacheable,
                        declared if declared_ok else None, code_hash(task, classifier))


def run_identity(task: object, identity: TaskIdentity, task_params: dict, batch_size: int | None,
                 domain_axes: tuple[str, ...] | None) -> dict:
    """The one record of what a run computed on, written once into ``provenance.json``.

    Compatibility (:mod:`explbench.results.compat`), resume, the sanity check and the report
    read this record, and nothing else, for the model, the data and the domain.

    Returns
    -------
    dict
        ``task``, ``task_version``, ``model`` (computed hash, None when none can be computed),
        ``model_code`` (:func:`code_hash`), ``model_declared``, ``model_source``, ``data``, ``task_params``, ``sample_rate`` (Hz),
        ``domain_shape``, ``domain_axes`` and ``batch_size``.
    """
    return {"task": str(getattr(task, "name", "?")), "task_version": str(getattr(task, "version", "?")),
            "model": identity.model, "model_code": identity.code, "model_declared": identity.declared,
            "model_source": identity.model_source, "data": identity.data,
            "task_params": {str(k): v for k, v in sorted(dict(task_params).items())},
            "sample_rate": int(getattr(task, "sample_rate", 0) or 0),
            "domain_shape": [int(s) for s in getattr(task, "domain_shape", ())],
            "domain_axes": None if domain_axes is None else list(domain_axes),
            "batch_size": None if batch_size is None else int(batch_size)}
