"""The model of an audio-folder task: a TorchScript file, or a Python plug-in file.

A TorchScript model (``model.pt``) maps explanation-domain inputs ``(B, *domain)`` to class
scores ``(B, C)``. Its front-end comes from, in this order: a separate TorchScript file
(``frontend=``), a method ``to_domain`` exported on the model (``@torch.jit.export``), or none
(the model takes the waveform: a waveform-domain task). Exported methods ``magnitude`` and
``magnitude_to_domain`` give the spectrogram attack its space.

A plug-in (``plugin=my_model.py``) is a Python file defining ``to_domain(wave)`` and
``classifier()`` (returning a torch module), optionally ``magnitude(wave)``,
``magnitude_to_domain(mag)`` and ``domain_axes``.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

OUTPUTS = ("probabilities", "logits", "logit")


class _Method(nn.Module):
    """A module calling one method of a TorchScript module (e.g. its exported ``to_domain``)."""

    def __init__(self, module: torch.jit.ScriptModule, method: str) -> None:
        super().__init__()
        self.module = module
        self.method = method

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self.module, self.method)(x)


class _Function(nn.Module):
    """A module around a plain function of a plug-in."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class Probabilities(nn.Module):
    """Class probabilities ``(B, C)`` from a model's output.

    ``output``: "probabilities" (used as they are), "logits" (softmax over the last axis) or
    "logit" (one logit per input, ``(B,)`` or ``(B, 1)``: ``[1 - sigmoid, sigmoid]``).
    """

    def __init__(self, model: nn.Module, output: str) -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"output {output!r}: use one of {', '.join(OUTPUTS)}")
        self.model = model
        self.output = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.model(x)
        if self.output == "logits":
            return torch.softmax(y, dim=-1)
        if self.output == "logit":
            p = torch.sigmoid(y.reshape(y.shape[0]))
            return torch.stack([1.0 - p, p], dim=-1)
        return y


@dataclass
class LoadedModel:
    """What a task needs from the user's model.

    Attributes
    ----------
    to_domain : nn.Module
        Waveforms ``(B, n)`` to domain inputs.
    classifier : nn.Module
        Domain inputs to probabilities ``(B, C)``, in eval mode.
    magnitude, magnitude_to_domain : nn.Module or None
        The spectrogram attack space, when the model provides it.
    domain_axes : tuple of str or None
        As declared by the model (plug-in ``domain_axes``), if it does.
    digest : str
        Hash of the files the model comes from.
    """

    to_domain: nn.Module
    classifier: nn.Module
    magnitude: nn.Module | None
    magnitude_to_domain: nn.Module | None
    domain_axes: tuple[str, ...] | None
    digest: str


def _digest(*paths: Path | None) -> str:
    h = hashlib.sha256()
    for p in paths:
        if p is not None:
            h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def _jit(path: Path, what: str) -> torch.jit.ScriptModule:
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist; save your model with "
                                f"torch.jit.save(torch.jit.script(model), {path.name!r}), or give "
                                f"plugin=my_model.py instead")
    try:
        with warnings.catch_warnings():  # torch 2.13 calls torch.jit.load deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # torch raises RuntimeError with a long C++ trace
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{what} {str(path)!r} is not a TorchScript file ({first}); save it with "
                         f"torch.jit.save(torch.jit.script(model), {path.name!r})") from None


def _frozen(module: nn.Module) -> nn.Module:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def load_torchscript(model: Path, frontend: Path | None, output: str) -> LoadedModel:
    """Load ``model`` (and ``frontend``) as described in the module docstring."""
    net = _frozen(_jit(model, "model"))
    if frontend is not None:
        front: nn.Module = _frozen(_jit(frontend, "front-end"))
    elif hasattr(net, "to_domain"):
        front = _Method(net, "to_domain")
    else:
        front = nn.Identity()
    mag = _Method(net, "magnitude") if hasattr(net, "magnitude") else None
    m2d = _Method(net, "magnitude_to_domain") if hasattr(net, "magnitude_to_domain") else None
    return LoadedModel(front, Probabilities(net, output).eval(), mag, m2d, None, _digest(model, frontend))


def load_plugin_model(plugin: Path, output: str) -> LoadedModel:
    """Load a plug-in file defining ``to_domain`` and ``classifier`` (see the module docstring)."""
    from explbench.core.plugins import load_plugin

    module = load_plugin(plugin)
    missing = [name for name in ("to_domain", "classifier") if not callable(getattr(module, name, None))]
    if missing:
        raise ValueError(f"plug-in {str(plugin)!r} defines no {' and no '.join(missing)}; it needs "
                         f"def to_domain(wave) -> domain tensor and def classifier() -> torch module")
    clf = module.classifier
    clf = clf if isinstance(clf, nn.Module) else clf()
    if not isinstance(clf, nn.Module):
        raise ValueError(f"plug-in {str(plugin)!r}: classifier() returned {type(clf).__name__}, not a torch module")
    front = module.to_domain if isinstance(module.to_domain, nn.Module) else _Function(module.to_domain)
    mag = getattr(module, "magnitude", None)
    m2d = getattr(module, "magnitude_to_domain", None)
    axes = getattr(module, "domain_axes", None)
    return LoadedModel(front, Probabilities(_frozen(clf), output).eval(),
                       _Function(mag) if callable(mag) else None,
                       _Function(m2d) if callable(m2d) else None,
                       tuple(axes) if axes is not None else None, _digest(plugin))
