"""Re-initialising a model's layers from the top down (cascading randomisation) and the rank correlation it is judged by."""

from __future__ import annotations

import math
from dataclasses import dataclass
import numpy as np
import torch
from explbench.core.seeding import seed_for


_PREFIX = {"Linear": "fc", "Bilinear": "fc", "LazyLinear": "fc", "Embedding": "emb",
           "LSTM": "rnn", "GRU": "rnn", "RNN": "rnn", "LayerNorm": "ln", "GroupNorm": "gn"}


@dataclass(frozen=True)
class Layer:
    """One re-initialisable layer of a classifier.

    Attributes
    ----------
    name : str
        Short name, numbered by kind in forward order: ``conv1``, ..., ``fc1``, ``fc2``, ...
    path : str
        Module path inside the classifier (``model.get_submodule(path)``).
    kind : str
        The module's class name.
    """

    name: str
    path: str
    kind: str


def _prefix(kind: str) -> str:
    if kind in _PREFIX:
        return _PREFIX[kind]
    if kind.startswith("ConvTranspose"):
        return "deconv"
    if kind.startswith("Conv"):
        return "conv"
    if kind.startswith(("BatchNorm", "InstanceNorm")):
        return "bn" if kind.startswith("Batch") else "in"
    return kind.lower()


def layers_top_down(model: torch.nn.Module, example: torch.Tensor) -> tuple[list[Layer], list[str]]:
    """The re-initialisable layers of ``model``, output layer first.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(B, *domain_shape)`` to probabilities.
    example : torch.Tensor, shape (1, *domain_shape)
        One input; a forward pass on it fixes the order in which layers are called.

    Returns
    -------
    layers : list of Layer
        Modules that own parameters and have ``reset_parameters()``, in reverse call order.
    kept : list of str
        Paths of called modules that own parameters but cannot be re-initialised (no
        ``reset_parameters()``): they stay trained at every depth.
    """
    owners = {path: m for path, m in model.named_modules()
              if any(True for _ in m.parameters(recurse=False))}
    order: list[str] = []
    handles = []
    for path, m in owners.items():
        def hook(_module, _inp, _out, path=path):  # noqa: ANN001 - torch hook signature
            if path not in order:
                order.append(path)
        handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in handles:
            h.remove()
    counts: dict[str, int] = {}
    layers, kept = [], []
    for path in order:
        m = owners[path]
        if not callable(getattr(m, "reset_parameters", None)):
            kept.append(path)
            continue
        kind = type(m).__name__
        p = _prefix(kind)
        counts[p] = counts.get(p, 0) + 1
        layers.append(Layer(f"{p}{counts[p]}", path, kind))
    return layers[::-1], kept


def randomise(model: torch.nn.Module, layer: Layer, seed: int) -> None:
    """Re-initialise one layer of ``model`` in place, reproducibly, leaving global RNGs as they were.

    The layer's ``reset_parameters()`` draws from torch's default generator of the device its
    parameters live on; that generator is seeded with ``seed_for("sanity-init", layer.path,
    base=seed)`` inside ``torch.random.fork_rng``, which restores it afterwards.
    """
    module = model.get_submodule(layer.path)
    device = next(module.parameters()).device
    s = seed_for("sanity-init", layer.path, base=seed)
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        if cuda:
            torch.cuda.manual_seed(s)
        else:
            torch.default_generator.manual_seed(s)
        with torch.no_grad():
            module.reset_parameters()


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho of two weight vectors ``(d,)`` (average ranks for ties); NaN when either
    ranking is constant."""
    from scipy.stats import rankdata

    ra, rb = rankdata(np.asarray(a, dtype=np.float64)), rankdata(np.asarray(b, dtype=np.float64))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = math.sqrt(float((ra ** 2).sum() * (rb ** 2).sum()))
    return float((ra * rb).sum() / den) if den > 0 else float("nan")
