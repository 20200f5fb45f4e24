"""What a suite's generators and explainers need from a task (hooks, axis orders), checked before a run starts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable
from explbench.api import registry
from explbench.api.task import HOOKS, axis_order, has_hook


@dataclass(frozen=True)
class Requirements:
    """What a generator or explainer needs from a task.

    Attributes
    ----------
    hooks : tuple of str
        Names of :data:`explbench.api.task.HOOKS` it calls.
    axis_orders : tuple of tuple of str, optional
        The domain axis orders it works on (None: any).
    why : str
        What it does with them, for messages.
    """

    hooks: tuple[str, ...] = ()
    axis_orders: tuple[tuple[str, ...], ...] | None = None
    why: str = ""


def _lookup(kind: str, name_or_obj: Any) -> tuple[str, Any]:
    """(name, class or object) of a generator or explainer given by name, class or instance."""
    if isinstance(name_or_obj, str):
        reg = registry.generators if kind == "generator" else registry.explainers
        return name_or_obj, reg.get(name_or_obj)
    name = getattr(name_or_obj, "name", "") or type(name_or_obj).__name__
    return str(name), name_or_obj


def requirements(generator: Any) -> Requirements:
    """What a generator (registered name, class or instance) needs from a task: its declared
    ``requires_hooks``, ``axis_orders`` and ``requirement_text``
    (:class:`explbench.api.generator.Generator`)."""
    _, obj = _lookup("generator", generator)
    return Requirements(tuple(obj.requires_hooks), obj.axis_orders, obj.requirement_text)


def required_hooks(generator: Any) -> list[str]:
    """Names of the task hooks a generator (registered name, class or instance) needs."""
    return list(requirements(generator).hooks)


def _hook_help(name: str) -> str:
    h = HOOKS[name]
    return f"{name} ({h.what}); write it in your task class as\n        {h.signature}"


def missing_hooks(task: object, generators: Iterable[Any] = (), explainers: Iterable[Any] = ()) -> list[str]:
    """Every reason the suite's generators and explainers cannot run on ``task``, in plain words.

    What cannot work on the task at all (:func:`inapplicable`) is named with its reason; for the
    rest, each missing hook with its signature.

    Parameters
    ----------
    task : Task
    generators, explainers : names, classes or instances

    Returns
    -------
    list of str
        One message per problem (empty when everything is present): which generator or
        explainer, which hook or domain property, and how to provide it.
    """
    generators, explainers = list(generators), list(explainers)
    left = inapplicable(task, generators, explainers)
    problems: list[str] = []
    gen_names: list[str] = []
    for g in generators:
        name, _ = _lookup("generator", g)
        gen_names.append(name)
        if name in left:
            problems.append(f"generator {name!r}: {left[name]}. Remove it from the suite.")
            continue
        req = requirements(g)
        for hook in req.hooks:
            if not has_hook(task, hook):
                problems.append(f"generator {name!r} needs the task hook {_hook_help(hook)}\n"
                                f"    ({req.why}; see docs/adding-a-task.md, 'Optional hooks'), or remove "
                                f"{name} from the suite.")
        if req.axis_orders is not None:
            try:
                axis_order(tuple(getattr(task, "domain_axes", ())), tuple(getattr(task, "domain_shape", ())))
            except ValueError as exc:
                problems.append(f"generator {name!r} cannot read the task's domain: {exc}")
    only_waveform = bool(gen_names) and all(g == "cw-waveform" for g in gen_names)
    for e in explainers:
        name, obj = _lookup("explainer", e)
        if name in left:
            problems.append(f"explainer {name!r}: {left[name]}. Remove it from the suite's explainers.")
            continue
        if getattr(obj, "needs_audio", False) and not only_waveform and not has_hook(task, "resynthesize"):
            problems.append(f"explainer {name!r} listens to the modified input, and cases made in the "
                            f"domain need the task hook {_hook_help('resynthesize')}\n"
                            f"    (see docs/adding-a-task.md, 'Optional hooks'), or remove {name} "
                            f"from the suite.")
    return problems


def inapplicable(task: object, generators: Iterable[Any] = (), explainers: Iterable[Any] = ()) -> dict[str, str]:
    """The suite's generators and explainers that cannot work on ``task`` at all, with the reason.

    These are what the task declares ``unsupported``, generators made for another axis order
    (``planted`` needs bands x frames), the spectrogram attack on a 1-D domain that has no
    magnitude hooks, and explainers that need a frequency axis (``needs_frequency_axis``) on a
    1-D domain. A run leaves them out and says so. A hook that is merely missing, on a domain
    that could have it, is not here: :func:`require_hooks` stops the run with how to write it.

    Returns
    -------
    dict
        ``{name: reason}``, in the order given (generators first).
    """
    tname = getattr(task, "name", type(task).__name__)
    unsupported = dict(getattr(task, "unsupported", None) or {})
    shape = tuple(getattr(task, "domain_shape", ()) or ())
    try:
        kinds = axis_order(tuple(getattr(task, "domain_axes", ()) or ()), shape) \
            if getattr(task, "domain_axes", ()) else None
    except ValueError:
        kinds = None  # an unreadable domain is reported by missing_hooks / check-task
    one_d = len(shape) == 1
    out: dict[str, str] = {}
    for g in generators:
        name, _ = _lookup("generator", g)
        req = requirements(g)
        if name in unsupported:
            out[name] = f"task {tname!r} declares it unsupported: {unsupported[name]}"
        elif req.axis_orders is not None and kinds is not None and kinds not in req.axis_orders:
            wanted = " or ".join(" x ".join(o) for o in req.axis_orders)
            out[name] = f"it works on a {wanted} domain and task {tname!r}'s is {' x '.join(kinds)}"
        elif one_d and any(h in ("magnitude", "magnitude_to_domain") for h in req.hooks) \
                and not all(has_hook(task, h) for h in req.hooks):
            out[name] = f"task {tname!r} explains a waveform and has no magnitude hooks to attack through"
    for e in explainers:
        name, obj = _lookup("explainer", e)
        if name in unsupported:
            out[name] = f"task {tname!r} declares it unsupported: {unsupported[name]}"
        elif one_d and getattr(obj, "needs_frequency_axis", False):
            out[name] = f"it needs a frequency axis and task {tname!r} explains a waveform"
    return out


class MissingHookError(ValueError):
    """A suite needs task hooks (or a domain) the task does not offer."""


def require_hooks(task: object, generators: Iterable[Any] = (), explainers: Iterable[Any] = ()) -> None:
    """Raise :class:`MissingHookError` listing every problem :func:`missing_hooks` finds.

    Call it after building the task and before generating any case.
    """
    problems = missing_hooks(task, generators, explainers)
    if problems:
        tname = getattr(task, "name", type(task).__name__)
        raise MissingHookError(f"the suite cannot run on task {tname!r}:\n  - " + "\n  - ".join(problems))
