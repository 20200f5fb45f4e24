"""What a task's cases depend on: its model and its data, as content hashes.

The case cache is keyed by them, so a changed model or changed data never reuses cases made
for the old one. A task that declares ``model_hash()`` and ``data_version()`` is trusted. For
one that does not (``Task.model_hash`` returns ``"none"`` by default, and ``data_version``
defaults to the class's ``version``), the harness computes them: the model from its
classifier's ``state_dict`` (names, dtypes, shapes and bytes of every tensor), the data from a
few excerpts (their audio, labels and song seeds). When the model cannot be hashed (a
classifier without a state_dict or without any tensor in it) the cases are not cached, and
the run says why.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

#: excerpts hashed to identify a task's data when it declares no data_version
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
    """

    model: str | None
    data: str
    model_source: str
    data_source: str
    uncacheable: str | None = None

    def to_dict(self) -> dict:
        return {"model": self.model, "data": self.data, "model_source": self.model_source,
                "data_source": self.data_source, "uncacheable": self.uncacheable}


def _declares(task: object, method: str) -> bool:
    from explbench.api.task import Task

    return getattr(type(task), method, None) is not getattr(Task, method, None)


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
    """The identity of ``task``'s model and of its data on ``split``."""
    declared = str(task.model_hash()) if _declares(task, "model_hash") else "none"  # type: ignore[attr-defined]
    uncacheable = None
    if declared and declared.lower() != "none":
        model, model_source = declared, "model_hash()"
    else:
        model = state_dict_hash(task.classifier())  # type: ignore[attr-defined]
        model_source = "state_dict"
        if model is None:
            uncacheable = (f"task {getattr(task, 'name', '?')!r} declares no model_hash() and its "
                           "classifier has no state_dict to hash, so cases made for one model "
                           "could be served to another; they are generated for this run only "
                           "(define model_hash() to cache them)")
    if _declares(task, "data_version"):
        data, data_source = str(task.data_version()), "data_version()"  # type: ignore[attr-defined]
    else:
        data = f"{getattr(task, 'version', '?')}+excerpts-{excerpt_hash(task, split)}"
        data_source = f"hash of {DATA_PROBE_EXCERPTS} excerpts"
    return TaskIdentity(model, data, model_source, data_source, uncacheable)
