"""What of a suite must agree for two runs to be compared: its protocol key."""

from __future__ import annotations

from explbench.run.suite import SuiteConfig

import dataclasses
from collections.abc import Mapping


#: suite keys that are part of the protocol (besides generators and explainer settings)
PROTOCOL_FIELDS = ("task", "segmentation", "content", "budget", "split", "agnostic_samples",
                   "aggregation", "timeout")


def _defaults() -> dict[str, object]:
    out: dict[str, object] = {}
    for f in dataclasses.fields(SuiteConfig):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            out[f.name] = f.default_factory()  # type: ignore[misc]
    return out


def protocol_key(suite: Mapping[str, object]) -> dict[str, object]:
    """What of a suite must agree for two runs to be comparable.

    Parameters
    ----------
    suite : mapping
        A resolved suite (``SuiteConfig.to_dict()``, or ``config.json["suite"]``).

    Returns
    -------
    dict
        The :data:`PROTOCOL_FIELDS`, ``generators`` (name → settings, sorted) and
        ``explainers`` (name → settings, for every explainer of the suite).
    """
    defaults = _defaults()
    key: dict[str, object] = {f: suite.get(f, defaults.get(f)) for f in PROTOCOL_FIELDS}
    gens = suite.get("generators") or {}
    key["generators"] = {str(g): dict(p or {}) for g, p in sorted(dict(gens).items())}  # type: ignore[arg-type]
    params = dict(suite.get("explainer_params") or {})  # type: ignore[arg-type]
    names = list(suite.get("explainers") or [])  # type: ignore[arg-type]
    key["explainers"] = {str(e): dict(params.get(e) or {}) for e in names}
    return key


__all__ = ["PROTOCOL_FIELDS", "protocol_key"]
