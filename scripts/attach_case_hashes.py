#!/usr/bin/env python3
"""Give a run bundle written before content hashes the hashes of its cases, after checking them.

A bundle keeps no case arrays, so its cases are made again with today's generators (from the
case cache when present). A regenerated case is accepted as the case a record was scored on
only when it reproduces, for every record of that case, the reference outcomes the record
holds: the flips with the top-k segments by perturbation energy and by mean |delta|, for every
k, and the claimed cause. Then ``case_hash`` goes into every record, ``manifest.json`` is
written, ``cases.json`` gains the generators' versions, and ``provenance.json`` the run identity
(marked as attached afterwards). Nothing is changed when a single case disagrees.

    python scripts/attach_case_hashes.py leaderboards/runs/svd-synth-paper [--batch-size 16]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from explbench.core.cases import content_hash
from explbench.core.seeding import seed_for
from explbench.store.run_store import RunStore
from explbench.run.case_cache import build_cases
from explbench.run.identity import run_identity
from explbench.run.loop import make_scorer
from explbench.run.manifest import MANIFEST_FILE, build_manifest
from explbench.run.prepare import prepare
from explbench.run.suite import SuiteConfig


def _records(folder: Path) -> tuple[list[dict], Path]:
    plain, packed = folder / "records.jsonl", folder / "records.jsonl.gz"
    if packed.exists():
        return [json.loads(line) for line in gzip.decompress(packed.read_bytes()).decode().splitlines() if line], packed
    return [json.loads(line) for line in plain.read_text().splitlines() if line], plain


def _write_records(records: list[dict], path: Path) -> None:
    text = "".join(json.dumps(r, allow_nan=False) + "\n" for r in records)
    tmp = path.with_suffix(path.suffix + ".tmp")
    if path.suffix == ".gz":
        tmp.write_bytes(gzip.compress(text.encode(), mtime=0))
    else:
        tmp.write_text(text)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bundle", type=Path)
    p.add_argument("--batch-size", type=int, default=None,
                   help="for the reference forwards (default: the bundle's)")
    args = p.parse_args(argv)
    folder = args.bundle
    config = SuiteConfig.from_dict(json.loads((folder / "config.json").read_text())["suite"])
    prov = json.loads((folder / "provenance.json").read_text())
    info = json.loads((folder / "cases.json").read_text())
    prep = prepare(config, "cpu", log=lambda s: print(s, file=sys.stderr))
    bs = int(args.batch_size or prov.get("batch_size") or 16)
    cases_by_gen, new_info = build_cases(config, prep.task, prep.segments, progress=True,
                                         log=lambda s: print(s, file=sys.stderr), identity=prep.identity)
    scorer = make_scorer(prep, bs)
    records, path = _records(folder)
    by_id = {c.case_id: c for cs in cases_by_gen.values() for c in cs}
    wanted = sorted({r["case_id"] for r in records})
    missing = [cid for cid in wanted if cid not in by_id]
    if missing:
        print(f"refused: {len(missing)} recorded cases were not made again (e.g. {missing[:3]})")
        return 1
    bad = []
    for cid in wanted:
        case = by_id[cid]
        ctx = scorer.context(case, seed_for("context", cid, base=config.seed))
        norm = np.asarray(ctx.flip_norm_at_k).tolist()
        absmean = None if ctx.flip_absmean_at_k is None else np.asarray(ctx.flip_absmean_at_k).tolist()
        truth = None if case.true_segments is None else [int(s) for s in case.true_segments]
        for r in (r for r in records if r["case_id"] == cid):
            if r.get("flip_norm_at_k") != norm or (r.get("flip_absmean_at_k") not in (None, absmean)) \
                    or r.get("true_segments") != truth:
                bad.append((cid, r["explainer"]))
    if bad:
        print(f"refused: {len(bad)} records disagree with the regenerated cases, e.g. {bad[:5]}")
        return 1
    hashes = {cid: content_hash(by_id[cid]) for cid in wanted}
    for r in records:
        r["case_hash"] = hashes[r["case_id"]]
    for g, entry in info.items():
        entry["version"] = new_info[g]["version"]
        if entry.get("cache_key") != new_info[g]["cache_key"]:
            entry["cache_key_today"] = new_info[g]["cache_key"]
    ident = run_identity(prep.task, prep.identity, config.task_params, bs,
                         tuple(prep.task.domain_axes) or None)
    prov["identity"] = ident
    prov["identity_attached"] = {
        "by": "scripts/attach_case_hashes.py",
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "records_checked": len(records), "cases": len(wanted),
        "rule": "every record's flip_norm_at_k, flip_absmean_at_k and true_segments reproduced "
                "by the regenerated case"}
    kept = {g: [c for c in cs if c.case_id in hashes] for g, cs in cases_by_gen.items()}
    manifest = build_manifest({k: v for k, v in ident.items() if k != "batch_size"}, kept, info)
    _write_records(records, path)
    store = RunStore(folder)
    store.write_json("cases.json", info)
    store.write_json("provenance.json", prov)
    store.write_json(MANIFEST_FILE, manifest)
    print(f"{folder}: {len(wanted)} cases reproduced every one of {len(records)} records; "
          f"hashes attached, manifest digest {manifest['digest']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
