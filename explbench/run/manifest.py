"""A run's case manifest: which cases it explained, by content hash, and what made them.

``RUN/manifest.json`` is small (a hash per case) and is committed with every published bundle.
It holds the task identity the cases were made for, and per generator its case-set
``version``, its case count and every case's content hash. Two manifests are compared case by
case (:func:`compare_manifests`): a user learns whether their regenerated cases are the
published ones, and ``explbench verify`` refuses a submission made on other cases.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from explbench.core.cases import Case, content_hash

#: bumped when the manifest's layout changes
MANIFEST_FORMAT = 1
MANIFEST_FILE = "manifest.json"


def build_manifest(task: dict, cases_by_gen: dict[str, list[Case]], info: dict[str, dict]) -> dict:
    """The manifest of a run's cases.

    Parameters
    ----------
    task : dict
        The run identity's task part (name, version, model and data hashes, task parameters).
    cases_by_gen : dict
        Generator name → its cases.
    info : dict
        ``cases.json``: generator name → its entry (``version``, ``from``).
    """
    gens = {}
    for name, cases in cases_by_gen.items():
        gens[name] = {"version": (info.get(name) or {}).get("version"),
                      "from": list((info.get(name) or {}).get("from") or []),
                      "n_cases": len(cases),
                      "cases": {c.case_id: content_hash(c) for c in cases}}
    out = {"format": MANIFEST_FORMAT, "task": task, "generators": gens}
    out["digest"] = digest(out)
    return out


def digest(manifest: dict) -> str:
    """SHA-256 (32 hex digits) over the generators' versions and case hashes, in a fixed order.

    Equal digests mean the same case sets; the task part is not in it (compare it separately).
    """
    h = hashlib.sha256()
    for name in sorted(manifest.get("generators") or {}):
        g = manifest["generators"][name]
        h.update(f"{name}|{g.get('version')}|".encode())
        for cid in sorted(g.get("cases") or {}):
            h.update(f"{cid}={g['cases'][cid]};".encode())
    return h.hexdigest()[:32]


def read_manifest(path: str | Path) -> dict:
    """A manifest from a run folder (its ``manifest.json``) or a manifest file.

    Raises
    ------
    FileNotFoundError
        Naming what is missing and how to make it.
    ValueError
        For a file that is not a manifest.
    """
    p = Path(path)
    if p.is_dir():
        p = p / MANIFEST_FILE
    if not p.is_file():
        raise FileNotFoundError(f"{p} does not exist: a run folder written by 'explbench run' "
                                f"holds its case manifest in {MANIFEST_FILE}")
    try:
        m = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{p} is not a readable case manifest ({exc})") from None
    if not isinstance(m, dict) or "generators" not in m:
        raise ValueError(f"{p} is not a case manifest (no 'generators')")
    return m


@dataclass(frozen=True)
class ManifestDiff:
    """How two manifests' case sets relate, per generator."""

    same: dict[str, int]
    differ: dict[str, list[str]]
    only_a: list[str]
    only_b: list[str]
    versions: dict[str, tuple[object, object]]

    @property
    def identical(self) -> bool:
        return not (self.differ or self.only_a or self.only_b or self.versions)

    def lines(self) -> list[str]:
        """One line per generator, in words."""
        out = []
        for g, n in sorted(self.same.items()):
            if g not in self.differ:
                out.append(f"{g}: all {n} cases have the same content")
        for g, ids in sorted(self.differ.items()):
            shown = ", ".join(ids[:5]) + (" …" if len(ids) > 5 else "")
            out.append(f"{g}: {len(ids)} cases differ in content or are missing ({shown})")
        for g, (va, vb) in sorted(self.versions.items()):
            out.append(f"{g}: case-set version {va} vs {vb}")
        out += [f"{g}: only in the first" for g in self.only_a]
        out += [f"{g}: only in the second" for g in self.only_b]
        return out


def compare_manifests(a: dict, b: dict) -> ManifestDiff:
    """Case-by-case comparison of two manifests (case ids matched, hashes compared)."""
    ga, gb = a.get("generators") or {}, b.get("generators") or {}
    same: dict[str, int] = {}
    differ: dict[str, list[str]] = {}
    versions: dict[str, tuple[object, object]] = {}
    for g in sorted(set(ga) & set(gb)):
        ca, cb = ga[g].get("cases") or {}, gb[g].get("cases") or {}
        bad = sorted(c for c in set(ca) | set(cb) if ca.get(c) != cb.get(c))
        same[g] = len(set(ca) & set(cb)) - sum(1 for c in bad if c in ca and c in cb)
        if bad:
            differ[g] = bad
        if ga[g].get("version") != gb[g].get("version"):
            versions[g] = (ga[g].get("version"), gb[g].get("version"))
    return ManifestDiff(same, differ, sorted(set(ga) - set(gb)), sorted(set(gb) - set(ga)), versions)


__all__ = ["MANIFEST_FILE", "MANIFEST_FORMAT", "ManifestDiff", "build_manifest", "compare_manifests",
           "digest", "read_manifest"]
