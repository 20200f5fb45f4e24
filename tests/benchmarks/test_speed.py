"""Speed, as ratios measured within one run (``make bench``).

- harness overhead of a LIME explanation beside the pure model forward of the same queries
  (target: at most 10 % at 1024 samples);
- attack throughput in excerpts per second, beside the model's forward+backward throughput;
- forward throughput of the tuned batch size with channels_last beside batch 256 contiguous.
"""

import time

import numpy as np
import pytest
import torch

from explbench.api import registry
from explbench.api.model_access import ModelAccess
from explbench.core.segmentation import grid
from explbench.run.batching import best_batch_size, throughput

SHAPE = (80, 115)


@pytest.fixture(scope="module")
def task():
    return registry.tasks.get("svd-synth")()


@pytest.fixture(scope="module")
def classify(task):
    return task.classifier()


@pytest.fixture(scope="module")
def batch(task, classify):
    return best_batch_size(classify, SHAPE, task.model_hash())


def pure_forward_seconds(classify, inputs, batch):
    """Seconds to classify ``inputs`` ``(n, 80, 115)`` in batches, nothing else."""
    with torch.inference_mode():
        t0 = time.perf_counter()
        for i in range(0, len(inputs), batch):
            classify(inputs[i : i + batch])
    return time.perf_counter() - t0


def test_lime_overhead_over_pure_forward(benchmark, classify, batch):
    n = 1024
    lime = registry.explainers.get("lime")(n_samples=n)
    segments = grid(SHAPE)
    x = torch.randn(*SHAPE)

    def explain():
        access = ModelAccess(classify, batch_size=batch)
        return lime.explain(access, x, 1, segments, n, np.random.default_rng(0))

    # the same kind of inputs LIME queries: random half-masked compositions of x
    rng = np.random.default_rng(1)
    z = (rng.random((n, segments.d)) < 0.5).astype(np.float32)
    inputs = segments.compose(x, z, torch.full_like(x, float(x.mean())))
    forwards, totals = [], []
    for _ in range(3):  # interleaved, so both see the same machine state
        forwards.append(pure_forward_seconds(classify, inputs, batch))
        t0 = time.perf_counter()
        explain()
        totals.append(time.perf_counter() - t0)
    benchmark.pedantic(explain, rounds=1, iterations=1)
    forward, total = float(np.median(forwards)), float(np.median(totals))
    ratio = (total - forward) / forward
    benchmark.extra_info.update(lime_seconds=total, forward_seconds=forward, overhead_ratio=ratio)
    print(f"\nLIME {n} samples: {total:.3f} s; pure forward {forward:.3f} s; overhead {100 * ratio:.1f} %")
    assert ratio <= 0.10


def test_attack_throughput(benchmark, task, classify, batch):
    gen = registry.generators.get("cw-spectrogram")(max_iter=100)
    excerpts = list(task.excerpts("test", 8, 0))
    audio = torch.from_numpy(np.stack([e.audio for e in excerpts]))

    def attack():
        return gen.generate(task, grid(SHAPE), 8, 0, progress=False)

    benchmark.pedantic(attack, rounds=1, iterations=1)
    cases, stats = attack()
    attempted = sum(v.get("attempted", 0) for v in stats.get("directions", stats).values()
                    if isinstance(v, dict))
    seconds = benchmark.stats.stats.min
    x = task.to_domain(audio).requires_grad_(True)
    t0 = time.perf_counter()
    for _ in range(3):
        classify(x)[:, 1].sum().backward()
    fb = 3 * len(x) / (time.perf_counter() - t0)
    rate = attempted / seconds if seconds else float("nan")
    benchmark.extra_info.update(excerpts_per_second=rate, forward_backward_per_second=fb)
    print(f"\nattack: {attempted} excerpts in {seconds:.1f} s = {rate:.2f} excerpts/s "
          f"(forward+backward {fb:.0f} excerpts/s)")
    assert rate > 0


def test_tuned_batch_beats_batch_256_contiguous(benchmark, task, batch):
    from explbench.tasks.svd.model import Probabilities, SchlueterCNN

    contiguous = SchlueterCNN()
    contiguous.load_state_dict(task.network().state_dict())
    contiguous.eval()
    contiguous.forward = lambda x, net=contiguous: net.classifier(net.features(net.normalise(x).unsqueeze(1))).squeeze(-1)
    plain = Probabilities(contiguous).eval()
    tuned = benchmark.pedantic(lambda: throughput(task.classifier(), SHAPE, batch, seconds=1.0),
                               rounds=1, iterations=1)
    big = throughput(plain, SHAPE, 256, seconds=1.0)
    benchmark.extra_info.update(tuned_batch=batch, tuned_per_second=tuned, batch256_per_second=big,
                                ratio=tuned / big)
    print(f"\nforward: batch {batch} channels_last {tuned:.0f}/s; batch 256 contiguous {big:.0f}/s; "
          f"ratio {tuned / big:.2f}")
    assert tuned >= big
