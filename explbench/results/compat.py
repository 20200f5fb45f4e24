"""Protocol compatibility: the one definition of what must agree for runs to be compared.

Two runs share a leaderboard only when their *protocol configuration* is identical:

- from the suite (:func:`protocol_key`): task, segmentation, content type, budget, split,
  agnostic-fidelity sample count, the aggregation of dense maps, the per-explanation timeout
  (a unit that times out fails, and a failure counts as no flip), the settings of each
  generator and each explainer (compared only for those both runs hold);
- from the run identity (``provenance.json["identity"]``, :func:`explbench.run.identity.run_identity`):
  task version, the *computed* model and data hashes, the task parameters, sample rate and
  domain. A model that cannot be identified ("none") matches no other run;
- from ``cases.json``: every generator's case-set ``version``.

The seed is *not* part of it: runs with other seeds are compatible, but their cases differ, so
their explainers are compared unpaired (cases are matched by content,
:mod:`explbench.results.pairing`). Keys a suite written by an older version lacks take the
current default of :class:`explbench.run.suite.SuiteConfig`, so an old run and a new run with the
default value agree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Protocol
from explbench.run.protocol_key import PROTOCOL_FIELDS, protocol_key

#: run-identity keys that are part of the protocol (flat name → identity key)
IDENTITY_FIELDS = {"task_version": "task_version", "model": "model", "model_code": "model_code",
                   "data": "data",
                   "task_params": "task_params", "sample_rate": "sample_rate",
                   "domain_shape": "domain_shape", "domain_axes": "domain_axes"}
#: what a run without a computed model identity shows, and never matches
UNIDENTIFIED = "(not identified: the task's classifier has no state_dict and it declares no model_hash())"


class IncompatibleRuns(ValueError):
    """Runs with different protocol configurations cannot share a leaderboard."""


class _RunLike(Protocol):
    run_id: str
    folder: object
    suite: dict
    provenance: dict
    cases: dict


def identity_of(provenance: Mapping[str, object]) -> dict[str, object]:
    """A run's identity as compared: ``provenance["identity"]``; runs written before it existed
    give their task version and model identity, and "(unset)" for what they did not record."""
    ident = provenance.get("identity")
    if isinstance(ident, Mapping):
        return dict(ident)
    task = dict(provenance.get("task") or {})  # type: ignore[arg-type]
    return {"task_version": task.get("version"), "model": task.get("model_identity") or None,
            "domain_shape": task.get("domain_shape"), "domain_axes": task.get("domain_axes"),
            "sample_rate": task.get("sample_rate")}


def protocol_config(suite: Mapping[str, object], provenance: Mapping[str, object],
                    cases: Mapping[str, object] | None = None) -> dict[str, object]:
    """The flat protocol configuration of a run: dotted keys → values.

    Generator settings appear as ``generator.NAME.PARAM`` (``generator.NAME = {}`` when it has
    none) and their case-set versions as ``generator.NAME.version``, explainer settings as
    ``explainer.NAME.PARAM``, the run identity as ``identity.KEY``.
    """
    key = protocol_key(suite)
    ident = identity_of(provenance)
    flat: dict[str, object] = {f: key[f] for f in PROTOCOL_FIELDS}
    for name, source in IDENTITY_FIELDS.items():
        flat[f"identity.{name}"] = ident.get(source)
    if flat["identity.model"] in (None, "", "none"):
        flat["identity.model"] = UNIDENTIFIED
    for g, entry in sorted(dict(cases or {}).items()):
        if isinstance(entry, Mapping) and g in key["generators"]:  # type: ignore[operator]
            flat[f"generator.{g}.version"] = entry.get("version")
    for g, params in key["generators"].items():  # type: ignore[union-attr]
        for p, v in sorted(params.items()):
            flat[f"generator.{g}.{p}"] = v
        if not params:
            flat[f"generator.{g}"] = "{}"
    for e, params in key["explainers"].items():  # type: ignore[union-attr]
        for p, v in sorted(params.items()):
            flat[f"explainer.{e}.{p}"] = v
    return flat


def show(value: object) -> str:
    """A configuration value as the messages and boards print it."""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return "(unset)" if value is None else str(value)


def config_differences(a: _RunLike, b: _RunLike) -> list[str]:
    """``"key: value-in-a vs value-in-b"`` for every protocol key on which two runs differ.

    Explainer and generator settings are compared only for explainers and generators both runs
    hold (a run of some of a suite's generators joins a board on those). A model that cannot be
    identified differs from every other run's, itself included.
    """
    ca = protocol_config(a.suite, a.provenance, a.cases)
    cb = protocol_config(b.suite, b.provenance, b.cases)
    shared = set(a.suite.get("explainers") or []) & set(b.suite.get("explainers") or [])
    gens = set(a.suite.get("generators") or {}) & set(b.suite.get("generators") or {})
    out = []
    for key in sorted(set(ca) | set(cb)):
        if key.startswith("explainer.") and key.split(".")[1] not in shared:
            continue
        if key.startswith("generator.") and key.split(".")[1] not in gens:
            continue
        va, vb = ca.get(key), cb.get(key)
        if va != vb or (key == "identity.model" and va == UNIDENTIFIED and a is not b):
            out.append(f"{key}: {show(va)} vs {show(vb)}")
    return out


def check_compatible(runs: Sequence[_RunLike], reference: _RunLike | None = None) -> None:
    """Refuse runs whose protocol configuration differs from ``reference`` (default the first).

    Raises
    ------
    IncompatibleRuns
        Naming each refused run and exactly which keys differ, with both values.
    """
    if not runs:
        return
    ref = reference or runs[0]
    problems = []
    for r in runs:
        diff = config_differences(ref, r)
        if diff:
            problems.append(f"run {r.run_id} ({r.folder}) differs from {ref.run_id} ({ref.folder}): "
                            + "; ".join(diff))
    if problems:
        raise IncompatibleRuns(
            "runs with a different protocol configuration cannot share a leaderboard:\n  "
            + "\n  ".join(problems)
            + "\nchoose the runs with --runs, or the reference with --config-of RUN")


__all__ = ["IncompatibleRuns", "PROVENANCE_FIELDS", "check_compatible", "config_differences", "protocol_config", "show"]
