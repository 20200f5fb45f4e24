"""The generator contract: what makes cases whose cause is known.

A generator either *generates* cases from a task's excerpts (an attack, a planted pattern) or
*derives* them from another generator's cases (``derived = True``: the localised cases). It
declares what it needs from a task (``requires_hooks``, ``axis_orders``) so that a run stops
before it starts when the task lacks it, and a hand-kept ``version``.

``version`` is the case set's version, as lm-evaluation-harness versions its tasks: bump it
(``"1"`` → ``"2"``) whenever a change to the code makes other cases from the same recipe. A
board states the versions its cases were made by, and runs on other versions are never
ranked together with it. A golden test (``tests/test_case_versions.py``) holds the content
hashes of a few cases per shipped generator, so output that changes without a bump fails CI
and names the generator. Edits that do not change the output (a comment, a refactor) need no
bump and unpair nobody: runs are paired by the content hashes of their cases
(:func:`explbench.core.cases.content_hash`), never by version or recipe.
"""

from __future__ import annotations

import inspect
from abc import ABC
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # pragma: no cover
    from explbench.api.task import Task
    from explbench.core.cases import Case
    from explbench.core.segmentation import Segmentation


class Generator(ABC):
    """Base class of every ground-truth generator.

    Class attributes
    ----------------
    name : str
        The registered name (set by :func:`explbench.register_generator` when empty).
    version : str
        The case-set version; bump it by hand when the output changes (see the module text).
    description : str
        One line for ``explbench list generators``.
    derived : bool
        True for a generator that derives cases from others (``derive``), False for one that
        generates them from excerpts (``generate``).
    requires_hooks : tuple of str
        Optional task hooks it calls (names in :data:`explbench.api.task.HOOKS`).
    axis_orders : tuple of tuple of str, or None
        Domain axis orders it works on (None: any).
    requirement_text : str
        What it does with those hooks, for the message that stops a run on a task without them.
    shared_sources : tuple of path
        Source files its output depends on besides its own module; with the module they key the
        case cache (never the comparison).

    Subclasses implement :meth:`generate` or :meth:`derive`. Configuration goes into the
    constructor, whose parameters :meth:`get_params` returns (scikit-learn's convention: each
    parameter is stored under its own name).
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    derived: ClassVar[bool] = False
    requires_hooks: ClassVar[tuple[str, ...]] = ()
    axis_orders: ClassVar[tuple[tuple[str, ...], ...] | None] = None
    requirement_text: ClassVar[str] = ""
    shared_sources: ClassVar[tuple[Any, ...]] = ()

    def generate(self, task: Task, segments: Segmentation, n: int, seed: int, *,
                 split: str = "test", progress: bool = True,
                 per_cluster: int | None = None) -> tuple[list[Case], dict]:
        """Up to ``n`` cases from ``task``'s excerpts of ``split``.

        Parameters
        ----------
        task : Task
        segments : Segmentation
            The scoring grid (the truth of localised causes is given in its indices).
        n : int
            Cases wanted.
        seed : int
            The only source of randomness.
        split : str
        progress : bool
            Show a progress bar (on stderr).
        per_cluster : int, optional
            At most this many cases from one cluster (None: the generator's own setting).

        Returns
        -------
        cases : list of Case
        stats : dict
            JSON-serialisable generation statistics (attempts, successes, seconds, …).
        """
        raise NotImplementedError(f"generator {self.name or type(self).__name__!r} does not "
                                  "generate cases from excerpts (it derives them: derived = True)")

    def derive(self, task: Task, segments: Segmentation, parents: list[Case], seed: int, *,
               progress: bool = True) -> tuple[list[Case], dict]:
        """Cases derived from ``parents`` (another generator's cases); see :meth:`generate`."""
        raise NotImplementedError(f"generator {self.name or type(self).__name__!r} does not "
                                  "derive cases from others (it generates them: derived = False)")

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters and their values, as stored on the instance.

        Tuples become lists, so the result is what a suite's TOML table would hold.
        """
        out: dict[str, Any] = {}
        for p in inspect.signature(type(self).__init__).parameters.values():
            if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if not hasattr(self, p.name):
                raise AttributeError(
                    f"generator {type(self).__name__} takes {p.name!r} but does not store it as "
                    f"self.{p.name}; store every constructor parameter under its own name, so that "
                    "get_params() and the case-cache key see it")
            value = getattr(self, p.name)
            out[p.name] = list(value) if isinstance(value, tuple) else value
        return out


__all__ = ["Generator"]
