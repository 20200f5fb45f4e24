"""Attack wall time per excerpt, before and after (``attack_speed.compare``), as a ratio in one run.

Target: the default attack is at least 2x faster per attacked excerpt than the float32 attack
on torch's thread pool, on the same excerpts with the same eps, eta, alpha, margin and max_iter.
"""

import json

from attack_speed import compare


def test_attack_speedup(benchmark):
    report = benchmark.pedantic(lambda: compare(per_direction=4, max_iter=1000, rounds=1), rounds=1, iterations=1)
    benchmark.extra_info.update(report)
    print("\n" + json.dumps(report, indent=1))
    print(f"attack: before {report['before']['excerpts_per_second']:.3f} excerpts/s, after "
          f"{report['after']['excerpts_per_second']:.3f} excerpts/s, speed-up {report['speedup']:.2f}x "
          f"(after = {report['precision_after']})")
    assert report["speedup"] >= 2.0
