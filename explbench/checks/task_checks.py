"""Does a task keep the contract the harness relies on? ``explbench check-task``, in plain words.

One function per check, scikit-learn style; each returns a :class:`TaskCheck` whose message
says what was found and, on failure, what to change::

    from explbench.checks.task_checks import check_task, format_report
    print(format_report(check_task("svd-synth", n=16)))

or, in pytest, ``assert_task_conforms(MyTask())``.

Before a run, :func:`require_hooks` stops a suite whose generators or explainers need a hook
the task lacks (which one, which hook, how to write it).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping


from explbench.api.task import Task
from explbench.checks.kernel import CheckResult, assert_passing, format_report  # noqa: F401 - format_report is this module's API
from explbench.checks.task_rules import _Probe, _failed, check_accuracy, check_axis_order, check_batch_invariance, check_declarations, check_domain_shape, check_eval_mode, check_excerpts, check_gradient, check_hooks, check_probabilities, check_splits


#: outcome of one check (name, passed, message), the same record the explainer check uses
TaskCheck = CheckResult


# --------------------------------------------------------------------------- what needs what


# --------------------------------------------------------------------------- the probe


# --------------------------------------------------------------------------- the checks


CHECKS: tuple[Callable[..., TaskCheck], ...] = (
    check_declarations, check_axis_order, check_excerpts, check_splits, check_domain_shape,
    check_probabilities, check_eval_mode, check_batch_invariance, check_gradient, check_hooks,
    check_accuracy,
)


# --------------------------------------------------------------------------- running them


def resolve_task(task: Task | type | str, params: Mapping[str, Any] | None = None) -> Task:
    """A task instance from an instance, a class, or a registered name (built with ``params``)."""
    if isinstance(task, str):
        from explbench.api import registry

        task = registry.tasks.get(task)
    if isinstance(task, type):
        task = task(**dict(params or {}))
    if not hasattr(task, "to_domain") or not hasattr(task, "excerpts"):
        raise TypeError(f"expected a Task instance, class or registered name, got {type(task).__name__}")
    return task  # type: ignore[return-value]


def suite_needs(suite: str | None) -> tuple[list[str], list[str]]:
    """(generators, explainers) of a suite preset or file; ([], []) for None."""
    if suite is None:
        return [], []
    from explbench.run import suite_files as suites

    config = suites.load(suite)
    return list(config.generators), list(config.explainers)


def check_task(task: Task | type | str, *, n: int = 16, seed: int = 0, split: str = "test",
               generators: Iterable[Any] | None = None, explainers: Iterable[Any] | None = None,
               suite: str | None = "smoke", params: Mapping[str, Any] | None = None) -> list[TaskCheck]:
    """Run every check on ``task``; one :class:`TaskCheck` per rule, never raising for the task's faults.

    Parameters
    ----------
    task : Task, Task subclass or registered name
    n : int
        Excerpts drawn for the checks (and for the accuracy check).
    seed : int
        Seed of the excerpt draws.
    split : str
        The split the excerpts come from (runs use 'test').
    generators, explainers : names, optional
        Whose hooks to require; default: those of ``suite``.
    suite : str, optional
        Suite preset or file whose generators and explainers the hooks check covers.
    params : mapping, optional
        Constructor arguments when ``task`` is a name or class.
    """
    try:
        t = resolve_task(task, params)
    except Exception as exc:
        return [_failed("construction", exc, f"building the task {task!r}")]
    if generators is None or explainers is None:
        sg, se = suite_needs(suite)
        generators = sg if generators is None else generators
        explainers = se if explainers is None else explainers
    probe = _Probe(t, int(n), int(seed), split)
    results = []
    for check in CHECKS:
        if check is check_hooks:
            results.append(check(t, probe, list(generators), list(explainers)))
        else:
            results.append(check(t, probe))
    return results


def assert_task_conforms(task: Task | type | str, **kwargs: Any) -> None:
    """Raise AssertionError listing every failed check (for pytest); ``kwargs`` as :func:`check_task`."""
    label = task if isinstance(task, str) else getattr(task, "name", "") or type(task).__name__
    assert_passing(check_task(task, **kwargs), f"task {label}")
