"""Attack throughput, before and after, on the same svd-synth excerpts (a script and a helper).

"before" is the float32 attack on torch's own thread pool (``precision="float32", threads=1``:
bit-for-bit the attack loop as it was); "after" is the default configuration (bfloat16 search
where the CPU has it natively, sub-batches in parallel threads). Both attack the same excerpts
— the first ``--per-direction`` excerpts of each clean decision in the seeded test stream —
with the spectrogram attack's eps, eta, alpha, margin 0.9 and max_iter, in a rolling batch of
16, interleaved over ``--rounds``. Run from the repository root:

    .venv/bin/python tests/benchmarks/attack_speed.py --per-direction 8

It prints excerpts per second for each, the ratio, and how the outcomes compare (iterations,
flips, float32 probability of the target at the end).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

import numpy as np
import torch

from explbench.api import registry
from explbench.generators.attack import AttackConfig, Item, Outcome, attack_stream
from explbench.generators.common import decided_excerpts

#: the spectrogram attack's case-defining parameters (cw-spectrogram defaults, margin 0.9)
CASE = {"eps": 0.1, "eta": 5e-4, "alpha": 15.0, "confidence": 0.9}
VARIANTS = {
    "before": {"precision": "float32", "threads": 1},
    "after": {},
    # the two changes apart (``--variants before,lanes,bf16,after``)
    "lanes": {"precision": "float32"},
    "bf16": {"precision": "bfloat16", "threads": 1},
}


@dataclass
class Timing:
    variant: str
    seconds: float
    cpu_seconds: float
    item_iterations: int
    outcomes: dict[int, Outcome]


def excerpts(task, per_direction: int, seed: int = 0) -> list[tuple[int, torch.Tensor, int, int]]:
    """``(draw index, |STFT| (513, 115), target, original)`` for the first ``per_direction`` excerpts
    of each clean decision in the seeded test stream."""
    clf = task.classifier().eval()
    got: dict[int, list] = {0: [], 1: []}
    for dr in decided_excerpts(task, clf, "test", 40 * per_direction, seed, 16):
        if len(got[dr.original]) < per_direction:
            audio = torch.from_numpy(np.asarray(dr.excerpt.audio, dtype=np.float32))[None]
            with torch.no_grad():
                got[dr.original].append((dr.index, task.magnitude(audio)[0], dr.target, dr.original))
        if all(len(v) >= per_direction for v in got.values()):
            break
    return sorted(got[0] + got[1])


def attack(task, clf, items, variant: str, max_iter: int = 1000, batch_size: int = 16) -> Timing:
    cfg = AttackConfig(max_iter=max_iter, batch_size=batch_size, **CASE, **VARIANTS[variant])
    queue = list(items)
    out: dict[int, Outcome] = {}

    def source() -> Item | None:
        if not queue:
            return None
        index, base, target, _ = queue.pop(0)
        return Item(index, base, target)

    def on_done(outcomes: list[Outcome]) -> None:
        out.update({o.key: o for o in outcomes})

    t0, c0 = time.perf_counter(), time.process_time()
    work = attack_stream(clf, task.decide, lambda b, d: task.magnitude_to_domain((b + d).clamp_min(0.0)),
                         source, on_done, cfg)
    return Timing(variant, time.perf_counter() - t0, time.process_time() - c0, work, out)


def final_p_target(task, clf, items, outcomes: dict[int, Outcome]) -> dict[int, float]:
    """Float32 probability of the target class at each outcome's final perturbation."""
    res = {}
    with torch.inference_mode():
        for index, base, target, _ in items:
            x = task.magnitude_to_domain((base + outcomes[index].delta).clamp_min(0.0))[None]
            res[index] = float(clf(x)[0, target])
    return res


def compare(per_direction: int = 8, max_iter: int = 1000, rounds: int = 1, seed: int = 0,
            variants: tuple[str, ...] = ("before", "after")) -> dict:
    """Time each variant ``rounds`` times, interleaved; return rates, the before/after ratio and
    an outcome summary per direction."""
    task = registry.tasks.get("svd-synth")()
    clf = task.classifier().eval()
    items = excerpts(task, per_direction, seed)
    unknown = set(variants) - set(VARIANTS)
    if unknown or not {"before", "after"} <= set(variants):
        raise ValueError(f"variants must include before and after, from {sorted(VARIANTS)}; got {variants}")
    runs: dict[str, list[Timing]] = {v: [] for v in variants}
    for _ in range(rounds):
        for v in variants:
            runs[v].append(attack(task, clf, items, v, max_iter))
    report: dict = {"excerpts": len(items), "max_iter": max_iter, "rounds": rounds,
                    "precision_after": AttackConfig(eps=1, eta=1, alpha=1).precision,
                    "torch_threads": torch.get_num_threads()}
    for v, ts in runs.items():
        wall = float(np.median([t.seconds for t in ts]))
        last = ts[-1]
        p = final_p_target(task, clf, items, last.outcomes)
        by_dir = {}
        for orig in (0, 1):
            keys = [i for i, _, _, o in items if o == orig]
            by_dir[f"{task.classes[orig]}-to-{task.classes[1 - orig]}"] = {
                "mean_iterations": float(np.mean([last.outcomes[k].iterations for k in keys])),
                "flipped": int(sum(last.outcomes[k].flipped for k in keys)),
                "confident": int(sum(p[k] >= CASE["confidence"] for k in keys)),
                "mean_p_target": round(float(np.mean([p[k] for k in keys])), 4),
            }
        report[v] = {"seconds": round(wall, 2), "cpu_seconds": round(float(np.median([t.cpu_seconds for t in ts])), 2),
                     "excerpts_per_second": round(len(items) / wall, 4),
                     "item_iterations": last.item_iterations,
                     "item_iterations_per_second": round(last.item_iterations / wall, 1),
                     "directions": by_dir}
    report["speedup"] = round(report["before"]["seconds"] / report["after"]["seconds"], 2)
    for v in variants:
        report[v]["speedup_over_before"] = round(report["before"]["seconds"] / report[v]["seconds"], 2)
    same = all(torch.equal(runs["before"][-1].outcomes[k].delta, runs["after"][-1].outcomes[k].delta)
               for k in runs["before"][-1].outcomes)
    report["identical_outcomes"] = same
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-direction", type=int, default=8)
    ap.add_argument("--max-iter", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", default="before,after", help=f"comma-separated, from {', '.join(VARIANTS)}")
    args = ap.parse_args()
    report = compare(args.per_direction, args.max_iter, args.rounds, args.seed, tuple(args.variants.split(",")))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
