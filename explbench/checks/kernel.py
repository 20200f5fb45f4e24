"""The one check kernel: what a conformance rule returns, the report, and the pytest assertion.

``explbench check-explainer`` and ``explbench check-task`` both run a list of rules, each
giving a :class:`CheckResult`; :func:`format_report` prints them and :func:`assert_passing`
turns the failed ones into one AssertionError for pytest (as scikit-learn's estimator checks do).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one conformance rule.

    Attributes
    ----------
    name : str
        Short name of the rule.
    passed : bool
    message : str
        Plain words: what was found and, on failure, how to fix it.
    """

    name: str
    passed: bool
    message: str


def format_report(results: Sequence[CheckResult]) -> str:
    """One line per check: ``✓ name: message`` or ``✗ name: message``, then a summary line."""
    lines = [f"{'✓' if r.passed else '✗'} {r.name}: {r.message}" for r in results]
    n_bad = sum(not r.passed for r in results)
    lines.append("all checks passed" if n_bad == 0 else f"{n_bad} of {len(results)} checks failed")
    return "\n".join(lines)


def assert_passing(results: Sequence[CheckResult], what: str) -> None:
    """Raise AssertionError naming ``what`` and listing every failed check (for pytest)."""
    failed = [r for r in results if not r.passed]
    if failed:
        raise AssertionError(f"{what} fails {len(failed)} check(s):\n"
                             + "\n".join(f"✗ {r.name}: {r.message}" for r in failed))


__all__ = ["CheckResult", "assert_passing", "format_report"]
