"""Preparing a run: the task, explainers and segmentation built and checked before anything is written."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable
from explbench.api import registry
from explbench.api import Task
from explbench.api.explainer import Explainer
from explbench.run.identity import TaskIdentity, task_identity
from explbench.core.segmentation import Segmentation
from explbench.api.task import task_segmentation
from explbench.run.requirements import MissingHookError, require_hooks
from explbench.run.suite import SuiteConfig, SuiteError
from explbench.run.suite_files import check_resolved_ranges, generator_kwargs, validate


Log = Callable[[str], None]


class RunError(RuntimeError):
    """A run that cannot go on, with what to do about it."""


def _parameters(cls: object) -> dict[str, inspect.Parameter]:
    """A plug-in constructor's parameters (empty when they cannot be inspected)."""
    try:
        return dict(inspect.signature(cls).parameters)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return {}


def check_device(device: str) -> str:
    """``device`` when torch can use it here; otherwise a ValueError that says what to pass.

    Accepts ``cpu``, ``cuda``, ``cuda:N`` and ``mps``.
    """
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; use --device cpu, cuda (cuda:N for the "
                         f"N-th GPU) or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            built = "built without CUDA" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            raise ValueError(f"--device {device}: torch sees no CUDA GPU on this machine (torch "
                             f"{torch.__version__}, {built}); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} "
                             f"GPU(s), numbered from 0")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"--device {device}: MPS is not available here; use --device cpu")
    elif dev.type != "cpu":
        raise ValueError(f"device {device!r} is not supported; use --device cpu, cuda or mps")
    return device


def make_task(config: SuiteConfig, device: str = "cpu") -> Task:
    """The suite's task, built with its ``[task-params]`` (and the device, if it takes one)."""
    cls = registry.tasks.get(config.task)
    params = dict(config.task_params)
    if "device" in _parameters(cls):  # a task that cannot choose its device runs where it is
        params.setdefault("device", device)
    try:
        return cls(**params)
    except Exception as exc:  # noqa: BLE001 - a user's task parameters
        shown = ", ".join(f"{k} = {v!r}" for k, v in config.task_params.items()) or "no [task-params]"
        raise RunError(f"task {config.task!r} cannot be built with {shown}: "
                       f"{type(exc).__name__}: {exc}") from None


def make_explainer(config: SuiteConfig, name: str) -> Explainer:
    """One explainer with its suite table. Its own defaults stand: the suite-level ``content``
    is passed only to an explainer whose constructor requires ``content`` and has no default."""
    cls = registry.explainers.get(name)
    params = dict(config.explainer_params.get(name, {}))
    content = _parameters(cls).get("content")
    if content is not None and content.default is inspect.Parameter.empty and "content" not in params:
        params["content"] = config.content
    try:
        return cls(**params)
    except Exception as exc:  # noqa: BLE001 - the constructor's own checks
        raise SuiteError(f"key 'explainer.{name}': {name!r} cannot be built with "
                         f"{params or 'its defaults'}: {type(exc).__name__}: {exc}") from None


@dataclass
class Prepared:
    """Everything built and checked before a run writes anything.

    ``left_out`` names the suite's generators and explainers that cannot work on the task at
    all (:func:`explbench.run.requirements.inapplicable`), with the reason; ``config`` is the suite
    without them.
    """

    config: SuiteConfig
    task: Task
    segments: Segmentation
    explainers: dict[str, Explainer]
    identity: TaskIdentity
    device: str
    left_out: dict[str, str] = field(default_factory=dict)


def fit_to_task(config: SuiteConfig, task: Task, log: Log = print) -> tuple[SuiteConfig, dict[str, str]]:
    """The suite as it applies to ``task``: what cannot work on it left out, and said so.

    Generators and explainers that cannot work on the task whatever hooks it adds (declared
    ``unsupported``, made for another axis order, a frequency axis on a waveform) are dropped,
    a derived generator loses them from its ``from`` list (and goes too when none is left),
    and ``grid:TxF`` on a waveform domain becomes ``time:T*F``
    (:func:`explbench.core.segmentation.spec_for_shape`). A hook that is merely missing is not
    fitted away: :func:`explbench.run.requirements.require_hooks` then stops the run.

    Raises
    ------
    SuiteError
        When no generator or no explainer is left.
    """
    from explbench.core.segmentation import spec_for_shape
    from explbench.run.requirements import inapplicable

    left_out = inapplicable(task, list(config.generators), list(config.explainers))
    generators: dict[str, dict] = {}
    for name, params in config.generators.items():
        if name in left_out:
            continue
        parents = params.get("from")
        if isinstance(parents, list) and any(p in left_out for p in parents):
            kept = [p for p in parents if p not in left_out]
            if not kept:
                left_out[name] = f"every generator it derives from ({', '.join(parents)}) is left out"
                continue
            params = {**params, "from": kept}
        generators[name] = params
    explainers = [e for e in config.explainers if e not in left_out]
    spec, note = spec_for_shape(config.segmentation, tuple(task.domain_shape))
    for name, why in left_out.items():
        log(f"note: {name} is left out of this run: {why}")
    if note:
        log(f"note: {note}")
    if not generators or not explainers:
        kind = "generator" if not generators else "explainer"
        raise SuiteError(f"no {kind} of suite {config.name!r} can run on task {config.task!r}: "
                         + "; ".join(f"{n}: {w}" for n, w in left_out.items()))
    if not left_out and spec == config.segmentation:
        return config, {}
    fitted = SuiteConfig.from_dict({**config.to_dict(), "generators": generators,
                                    "explainers": explainers, "segmentation": spec})
    return fitted, left_out


def prepare(config: SuiteConfig, device: str = "cpu", log: Log = print) -> Prepared:
    """Build the task, segmentation and explainers and check the suite against the real task.

    Raises
    ------
    ValueError, SuiteError, RunError
        For a bad device, an invalid suite for this task, a task or classifier that cannot be
        built, or an explainer that refuses its parameters; nothing has been written then.
    """
    check_device(device)
    validate(config)
    task = make_task(config, device)
    config, left_out = fit_to_task(config, task, log)
    validate(config, task=task)
    check_resolved_ranges(config, task)
    try:
        require_hooks(task, list(config.generators), list(config.explainers))
    except MissingHookError as exc:
        raise SuiteError(str(exc)) from None
    segments = task_segmentation(task, config.segmentation)
    try:
        task.classifier()
    except Exception as exc:  # noqa: BLE001 - a user's weights or model code
        raise RunError(f"task {config.task!r}: its classifier cannot be built "
                       f"({type(exc).__name__}: {exc}); check its [task-params] (e.g. weights)") from None
    for name in config.generators:  # generators that can say up front that a task cannot host them
        check = getattr(registry.generators.get(name), "check", None)
        if callable(check):
            try:
                check(registry.generators.get(name)(**generator_kwargs(config, name)), task)
            except Exception as exc:  # noqa: BLE001
                raise SuiteError(f"key 'generator.{name}': {name!r} cannot run on task "
                                 f"{config.task!r}: {exc}") from None
    explainers = {name: make_explainer(config, name) for name in config.explainers}
    return Prepared(config, task, segments, explainers, task_identity(task, config.split), device,
                    left_out)
