"""Case packs: a run's cases in one file, so that anyone can run on exactly those cases.

A pack is one ``.npz`` (no pickles) holding every case's arrays, as the case cache stores them,
and a JSON manifest (:mod:`explbench.run.manifest`). :func:`export_pack` writes it from a run
folder; :func:`load_pack` reads it back and checks every case's content hash against the
manifest, so a damaged or edited pack is refused before anything runs on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from explbench.core.cases import Case, content_hash, load_cases, save_cases
from explbench.run.manifest import MANIFEST_FILE, digest, read_manifest


class PackError(ValueError):
    """A pack that cannot be used, with what is wrong and what to do."""


@dataclass(frozen=True)
class Pack:
    """Cases read from a pack, verified.

    Attributes
    ----------
    path : Path
    manifest : dict
    cases : dict
        Generator name → its cases, in the order they were made.
    """

    path: Path
    manifest: dict
    cases: dict[str, list[Case]]

    @property
    def n_cases(self) -> int:
        return sum(len(v) for v in self.cases.values())


def export_pack(run: str | Path, out: str | Path) -> Path:
    """Write the cases of a run folder into one pack file.

    Parameters
    ----------
    run : path
        A run folder written by ``explbench run``; its ``cases/<key>.npz`` files (kept when the
        run made or reused them) and ``manifest.json`` are read.
    out : path
        The pack to write (``.npz``); written atomically.

    Raises
    ------
    PackError
        When the run lacks its manifest or a case file, or a case file does not match the
        manifest (the run's cases were changed after it ran).
    """
    run = Path(run)
    try:
        manifest = read_manifest(run)
    except (FileNotFoundError, ValueError) as exc:
        raise PackError(f"{exc}; only runs written by this version of explbench have one") from None
    info = json.loads((run / "cases.json").read_text()) if (run / "cases.json").is_file() else {}
    cases: list[Case] = []
    stats: dict[str, dict] = {}
    for name, entry in manifest["generators"].items():
        key = (info.get(name) or {}).get("cache_key")
        file = run / "cases" / f"{key}.npz"
        if not key or not file.is_file():
            raise PackError(f"{run} does not keep the cases of {name!r} ({file} is missing); a "
                            f"published bundle keeps only their manifest. Run the suite again "
                            f"with --out to make them, then export that run")
        got, st = load_cases(file)
        _check(got, entry, name, file)
        cases += got
        stats[name] = st
    out = Path(out)
    save_cases(out, cases, {"pack": {"manifest": manifest, "stats": stats}})
    return out


def _check(cases: list[Case], entry: dict, name: str, where: Path) -> None:
    want = entry.get("cases") or {}
    got = {c.case_id: content_hash(c) for c in cases}
    if got != want:
        bad = sorted(c for c in set(got) | set(want) if got.get(c) != want.get(c))
        shown = ", ".join(bad[:5]) + (" …" if len(bad) > 5 else "")
        raise PackError(f"{where}: {len(bad)} case(s) of {name!r} do not match the manifest "
                        f"({shown}); the cases were changed after the manifest was written")


def load_pack(path: str | Path) -> Pack:
    """Read a pack and verify every case against its manifest.

    Raises
    ------
    PackError
        For a file that is not a pack, or one whose cases do not match its manifest.
    """
    path = Path(path)
    if not path.is_file():
        raise PackError(f"{path} does not exist; make a pack with 'explbench cases export RUN --out FILE'")
    try:
        cases, stats = load_cases(path)
    except Exception as exc:  # noqa: BLE001 - a file that is not what it claims
        raise PackError(f"{path} is not a case pack ({type(exc).__name__}: {exc})") from None
    manifest = (stats.get("pack") or {}).get("manifest")
    if not isinstance(manifest, dict) or "generators" not in manifest:
        raise PackError(f"{path} is a case file without a manifest, not a pack; make one with "
                        f"'explbench cases export RUN --out FILE'")
    if manifest.get("digest") != digest(manifest):
        raise PackError(f"{path}: its manifest's digest does not match its contents (edited?)")
    by_gen: dict[str, list[Case]] = {}
    for c in cases:
        by_gen.setdefault(c.generator, []).append(c)
    for name, entry in manifest["generators"].items():
        _check(by_gen.get(name, []), entry, name, path)
    return Pack(path, manifest, by_gen)


__all__ = ["MANIFEST_FILE", "Pack", "PackError", "export_pack", "load_pack"]
