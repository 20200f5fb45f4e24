"""``explbench cases``: a run's cases as a pack, and a run's case manifest against another."""

from __future__ import annotations

import argparse
from pathlib import Path

from explbench.run.case_pack import export_pack, load_pack
from explbench.run.manifest import compare_manifests, read_manifest


def cmd_export(args: argparse.Namespace) -> int:
    out = export_pack(args.run, args.out)
    pack = load_pack(out)  # what a user of the pack will check, checked now
    size = out.stat().st_size
    print(f"wrote {out}: {pack.n_cases} cases of {', '.join(sorted(pack.cases))}, "
          f"{size / 1e6:.1f} MB, manifest digest {pack.manifest['digest']}")
    print(f"run on exactly these cases: explbench run --suite SUITE --cases {out}")
    return 0


def _manifest_of(path: str) -> dict:
    p = Path(path)
    if p.suffix == ".npz":
        return load_pack(p).manifest
    return read_manifest(p)


def cmd_check(args: argparse.Namespace) -> int:
    mine, theirs = _manifest_of(args.run), _manifest_of(args.against)
    diff = compare_manifests(mine, theirs)
    for line in diff.lines():
        print(line)
    ta, tb = mine.get("task") or {}, theirs.get("task") or {}
    task_diff = [f"{k}: {ta.get(k)!r} vs {tb.get(k)!r}" for k in sorted(set(ta) | set(tb))
                 if ta.get(k) != tb.get(k)]
    for line in task_diff:
        print(f"task identity differs, {line}")
    if diff.identical and not task_diff:
        print(f"the same cases (digest {mine.get('digest')}): runs on them pair with {args.against}")
        return 0
    print(f"not the same cases as {args.against}: explainers are paired on the shared ones only")
    return 1


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``cases export`` and ``cases check``."""
    s = sub.add_parser("cases", help="export a run's cases as a pack; check a run's cases against "
                                     "a published manifest")
    verbs = s.add_subparsers(dest="cases_command", required=True)
    e = verbs.add_parser("export", help="write a run's cases and their manifest into one file")
    e.add_argument("run", help="a run folder (it keeps its cases under cases/)")
    e.add_argument("--out", required=True, metavar="FILE.npz")
    e.set_defaults(func=cmd_export)
    c = verbs.add_parser("check", help="do a run's cases have the content of another's? "
                                       "(exit 1 when not)")
    c.add_argument("run", help="a run folder, a manifest.json or a pack")
    c.add_argument("--against", required=True, metavar="RUN|MANIFEST|PACK",
                   help="e.g. leaderboards/runs/svd-synth-default")
    c.set_defaults(func=cmd_check)
