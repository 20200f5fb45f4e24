#!/usr/bin/env python3
"""Replay LIME's adaptive stopping on recorded neighbourhoods: any rule, no new model queries.

``record`` runs the model once per case on the first ``--max`` masks LIME would draw with the
run's seed for that case (through the harness, so input, target and seed are the ones a run
uses) and saves masks and answers. ``replay`` then runs the explainer's own
:func:`explbench.explainers.lime.sample_adaptively` on each case with a query function that answers from
the recording, for every stopping setting asked, and compares its top-k set with the fit on all
recorded masks -- what ``n_samples = --max`` returns. One recording serves every setting, so a
change of the stopping rule is measured in seconds instead of an hour of forwards.

    python scripts/adaptive_replay.py record --suite paper --cases 64 --out replay.npz
    python scripts/adaptive_replay.py replay replay.npz --confidence 0.97 0.95 --bonferroni
    python scripts/adaptive_replay.py replay replay.npz --confidence 0.95 --predict-rest
    python scripts/adaptive_replay.py record --benchmark --cases 50 --out bench.npz
    python scripts/adaptive_replay.py record --benchmark --paired --cases 50 --out bench-paired.npz

Cases are taken in turn from the attack generators and the localised one (interleaved), so a
prefix of the recording covers every kind.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# the installed name of the shipped explainers (importing them as top-level ``explainers`` too
# would register every one twice)
from explbench.explainers.lime import fit_surrogate, sample_adaptively  # noqa: E402
from explbench.explainers._common import AutoSampling  # noqa: E402
from explbench.core import content as baselines  # noqa: E402
from explbench.api.explainer import Explainer, Explanation  # noqa: E402
from explbench.core.neighbourhood import MaskStream  # noqa: E402
from explbench.protocol.scorer import Scorer  # noqa: E402
from explbench.run.case_cache import build_cases  # noqa: E402
from explbench.run.prepare import make_task
from explbench.core.segmentation import from_spec  # noqa: E402
from explbench.core.seeding import seed_for  # noqa: E402
from explbench.run.suite_files import load as load_suite  # noqa: E402


class _Recorder(Explainer):
    """Queries the model on the first ``n`` masks of LIME's stream and keeps masks and answers."""

    model_agnostic = True

    def __init__(self, n: int, paired: bool = False) -> None:
        self.n, self.paired = n, paired
        self.kept: tuple[np.ndarray, np.ndarray] | None = None

    def explain(self, model, x, target, *, segments, budget, rng, context):
        x = torch.as_tensor(x).float()
        # the order of LIME's own draws: the content baseline (none for "mean"), then the masks
        baseline = baselines.get("mean")(x, rng).float()
        z = MaskStream(rng, segments.d, self.paired).take(self.n)
        y = model.predict(segments.compose(x, z, baseline)).numpy()
        self.kept = (z.astype(bool), y.astype(np.float32))
        return Explanation(weights=np.zeros(segments.d))


def _suite_setting(suite: str, n_cases: int, skip: int = 0):
    """A suite's cases (generators interleaved) and the seed a run gives LIME on each."""
    config = load_suite(suite)
    task = make_task(config)
    segments = from_spec(config.segmentation, tuple(task.domain_shape))
    by_gen, _ = build_cases(config, task, segments, progress=True, log=print)
    lists = [cs for cs in by_gen.values() if cs]
    cases = [c for group in zip(*lists) for c in group][skip: skip + n_cases]
    scorer = Scorer(task, segments, content="mean", agnostic_samples=0, headline_k=3)
    return scorer, cases, lambda case: seed_for("explain", case.case_id, "lime", base=config.seed)


def _benchmark_setting(n_cases: int):
    """The cases and seeds of ``tests/benchmarks/test_adaptive.py``, from that module itself."""
    path = Path(__file__).resolve().parents[1] / "tests" / "benchmarks" / "test_adaptive.py"
    spec = importlib.util.spec_from_file_location("bench_adaptive", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    scorer, cases = bench.benchmark_setting(n_cases)
    return scorer, cases, bench.case_seed


def record(args: argparse.Namespace) -> int:
    scorer, cases, seed_of = (_benchmark_setting(args.cases) if args.benchmark
                              else _suite_setting(args.suite, args.cases, args.skip))
    rec = _Recorder(args.max, args.paired)
    z, y, target, ids = [], [], [], []
    for case in tqdm(cases, desc="recording", unit="case", file=sys.stderr):
        rng = np.random.default_rng(seed_of(case))
        scorer.explain(rec, case, None, rng)
        z.append(rec.kept[0]); y.append(rec.kept[1]); target.append(case.target); ids.append(case.case_id)
    np.savez_compressed(args.out, z=np.stack(z), y=np.stack(y), target=np.array(target), ids=np.array(ids),
                        paired=np.array(args.paired))
    design = "antithetic pairs" if args.paired else "independent masks"
    print(f"wrote {args.out} ({len(ids)} cases x {args.max} masks, {design})")
    return 0


def _answers(z: np.ndarray, y: np.ndarray):
    """A query function answering masks from a recording (every mask asked must be in it)."""
    index = {row.tobytes(): i for i, row in reversed(list(enumerate(np.packbits(z, axis=1))))}

    def query(masks: np.ndarray) -> np.ndarray:
        keys = np.packbits(masks.astype(bool), axis=1)
        return y[[index[k.tobytes()] for k in keys]].astype(np.float64)

    return query


def top_set(weights: np.ndarray, k: int) -> frozenset:
    return frozenset(np.argsort(-weights, kind="stable")[:k].tolist())


def replay(args: argparse.Namespace) -> int:
    data = [np.load(p) for p in args.recordings]
    designs = {bool(d["paired"]) if "paired" in d else False for d in data}
    if len(designs) > 1:
        raise SystemExit("replay: the recordings mix independent and paired masks; replay each design on its own")
    paired = designs.pop()
    zs = [z for d in data for z in d["z"]]
    ys = [y for d in data for y in d["y"]]
    targets = [int(t) for d in data for t in d["target"]]
    n_max = zs[0].shape[0]
    finals = [top_set(fit_surrogate(z.astype(np.float32), y.astype(np.float64), t).weights, args.k)
              for z, y, t in zip(zs, ys, targets)]
    print(f"{len(zs)} cases ({'paired' if paired else 'independent'} masks); reference: n_samples = {n_max}; "
          f"top-{args.k} set")
    for conf in args.confidence:
        auto = AutoSampling(n_max, args.first, args.growth, conf)
        if args.bonferroni:
            looks = len(auto.schedule(n_max))
            auto = AutoSampling(n_max, args.first, args.growth, 1 - (1 - conf) / looks)
        agree, queries = [], []
        for z, y, t, final in zip(zs, ys, targets, finals):
            run = sample_adaptively(_answers(z, y), RecordedStream(z, paired), t, k=args.k, auto=auto, cap=n_max,
                                    predict_rest=args.predict_rest)
            agree.append(top_set(run.fit.weights, args.k) == final)
            queries.append(run.queried)
        q = np.array(queries, dtype=float)
        name = (f"confidence {conf}" + (" (Bonferroni over looks)" if args.bonferroni else " (per look)")
                + (", predict_rest" if args.predict_rest else ""))
        print(f"{name}: agreement {100 * np.mean(agree):.1f} % ({len(agree) - sum(agree)} of {len(agree)} differ); "
              f"queries mean {q.mean():.0f}, 95th percentile {np.percentile(q, 95):.0f}, "
              f"{n_max / q.mean():.2f}x fewer than {n_max}")
    return 0


class RecordedStream:
    """The masks of a recording handed out in order, as :class:`MaskStream` hands out its draws."""

    def __init__(self, z: np.ndarray, paired: bool = False) -> None:
        self.z, self.taken, self.paired = z, 0, bool(paired)

    def take(self, m: int) -> np.ndarray:
        rows = self.z[self.taken: self.taken + int(m)].astype(np.float32)
        self.taken += len(rows)
        return rows

    pairs = MaskStream.pairs  # the same units as the stream that was recorded


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("record", help="query the model on LIME's first masks of each case")
    r.add_argument("--suite", default="paper")
    r.add_argument("--cases", type=int, default=64)
    r.add_argument("--skip", type=int, default=0, help="leave out the first SKIP cases of the suite (a fresh set)")
    r.add_argument("--max", type=int, default=8192)
    r.add_argument("--out", required=True)
    r.add_argument("--benchmark", action="store_true",
                   help="the cases and seeds of tests/benchmarks/test_adaptive.py instead of a suite's")
    r.add_argument("--paired", action="store_true", help="record LIME's antithetic stream (paired = true)")
    r.set_defaults(func=record)
    s = sub.add_parser("replay", help="run adaptive stopping on recordings")
    s.add_argument("recordings", nargs="+")
    s.add_argument("--confidence", type=float, nargs="+", default=[0.97])
    s.add_argument("--first", type=int, default=256)
    s.add_argument("--growth", type=float, default=1.25)
    s.add_argument("--k", type=int, default=3)
    s.add_argument("--bonferroni", action="store_true", help="split 1 - confidence over the looks (the old rule)")
    s.add_argument("--predict-rest", action="store_true",
                   help="aim at the N-sample fit through the predicted answers of the unqueried masks")
    s.set_defaults(func=replay)
    args = p.parse_args(argv)
    if args.command == "replay":
        torch.set_num_threads(1)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
