"""GPU path: classifier forward and attack step throughput on CUDA against the CPU, as ratios.

Skipped, with its reason, where no CUDA GPU is present.
"""

import time

import pytest
import torch

from explbench.api import registry

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA GPU on this machine (torch.cuda.is_available() is False)")


def forward_rate(classify, device: str, batch: int, seconds: float = 1.0) -> float:
    x = torch.randn(batch, 80, 115, device=device)
    with torch.inference_mode():
        classify(x)
        if device == "cuda":
            torch.cuda.synchronize()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            classify(x)
            n += batch
        if device == "cuda":
            torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def test_gpu_forward_speedup(benchmark):
    cpu = registry.tasks.get("svd-synth")(device="cpu").classifier()
    gpu = registry.tasks.get("svd-synth")(device="cuda").classifier()
    r_gpu = benchmark.pedantic(lambda: forward_rate(gpu, "cuda", 1024), rounds=1, iterations=1)
    r_cpu = forward_rate(cpu, "cpu", 16)
    benchmark.extra_info.update(gpu_per_second=r_gpu, cpu_per_second=r_cpu, ratio=r_gpu / r_cpu)
    print(f"\nforward: cuda batch 1024 {r_gpu:.0f}/s; cpu batch 16 {r_cpu:.0f}/s; ratio {r_gpu / r_cpu:.1f}")
    assert r_gpu > r_cpu
