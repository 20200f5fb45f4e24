"""``explbench submit`` and ``explbench verify``: joining a published board, verifiably.

``submit RUN --out FILE [--against BUNDLE]`` packs the explainers a run adds to a board into
one file (:mod:`explbench.results.submission`); ``verify FILE --against BUNDLE`` checks it
(:mod:`explbench.results.verify`), prints one line per check and exits 0 when every check
passes, 1 when one fails, 2 (``explbench: error: …``) when the input cannot be verified.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _log(msg: str) -> None:
    print(msg, file=sys.stderr)


def cmd_submit(args: argparse.Namespace) -> int:
    from explbench.results.submission import write_submission
    from explbench.results.verify import check_cases, check_identity, read_bundle

    bundle = read_bundle(args.against) if args.against else None  # refuse a bad bundle first
    meta = write_submission(args.run, args.out, args.against, log=_log)
    out = Path(args.out)
    plugins = ", ".join(f"{p['file']} ({p['sha256'][:12]}…)" for p in meta["plugins"]) or "none"
    print(f"wrote {out}: {len(meta['records'])} records of {', '.join(meta['explainers'])} "
          f"(run {meta['run_id']}), plug-ins {plugins}, {out.stat().st_size / 1e3:.1f} kB, "
          f"digest {meta['digest']}")
    if bundle is not None:
        from explbench.results.submission import read_submission

        sub = read_submission(out)
        for check in (check_cases(sub.json("manifest.json"), bundle),
                      check_identity(sub.json("provenance.json"), bundle)):
            if not check.ok:
                _log(f"warning: this submission will not verify against {args.against}:")
                for line in check.lines():
                    _log(line)
    print(f"a maintainer checks it with: explbench verify {out} --against "
          f"{args.against or 'BUNDLE'}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from explbench.results.verify import ATOL, RTOL, verify_submission

    checks = verify_submission(args.file, args.against, rerun=args.rerun, cases=args.cases,
                               rtol=RTOL if args.rtol is None else args.rtol,
                               atol=ATOL if args.atol is None else args.atol, salt=args.salt or "",
                               device=args.device, log=_log)
    for check in checks:
        for line in check.lines():
            print(line)
    failed = [c.name for c in checks if not c.ok]
    if failed:
        print(f"{args.file}: {len(failed)} of {len(checks)} checks FAILED ({', '.join(failed)})")
        return 1
    ran = sum(1 for c in checks if not c.skipped)
    print(f"{args.file}: all {ran} checks passed"
          + ("" if ran == len(checks) else f" ({len(checks) - ran} skipped)"))
    return 0


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction from 0 to 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction from 0 to 1, got {text!r}")
    return value


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``submit`` and ``verify``."""
    s = sub.add_parser("submit", help="pack a run's new explainers into one file for a board's "
                                      "maintainer")
    s.add_argument("run", help="a finished run folder")
    s.add_argument("--out", required=True, metavar="FILE.zip")
    s.add_argument("--against", metavar="BUNDLE",
                   help="the board's bundle: submit only the explainers it does not rank "
                        "(default: every explainer of the run)")
    s.set_defaults(func=cmd_submit)

    v = sub.add_parser("verify", help="check a submission against a board's bundle "
                                      "(exit 1 when a check fails)")
    v.add_argument("file", help="a file written by explbench submit")
    v.add_argument("--against", required=True, metavar="BUNDLE",
                   help="e.g. leaderboards/runs/svd-synth-smoke")
    v.add_argument("--rerun", type=_fraction, default=0.1, metavar="FRACTION",
                   help="share of the explanations to re-run, at least 5 (default 0.1); 0 "
                        "re-runs nothing and runs no plug-in code")
    v.add_argument("--cases", metavar="PACK|RUN",
                   help="a case pack or a run folder with cases/ (default: regenerate them "
                        "and check them against the manifest)")
    v.add_argument("--rtol", type=float, default=None,
                   help="relative tolerance of re-run weights (default 1e-5)")
    v.add_argument("--atol", type=float, default=None,
                   help="absolute tolerance of re-run weights (default 1e-7)")
    v.add_argument("--salt", metavar="TEXT",
                   help="mixed into the seed of the re-run sample, so that the submitter "
                        "cannot know which explanations are re-run")
    v.add_argument("--device", default="cpu")
    v.set_defaults(func=cmd_verify)
