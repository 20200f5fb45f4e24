"""The attack loop's speed options keep its outcomes: parallel sub-batches change nothing, and a
bfloat16 search still stops and reports flips by float32 verdicts. A white-box model: the target
logit is a weighted sum of the input, so which perturbation flips it is known."""

from __future__ import annotations

import pytest
import torch

from explbench.generators.attack import AttackConfig, Item, Outcome, attack_stream, resolve_precision

D = 64


class WeightedSum(torch.nn.Module):
    """Inputs ``(B, D)`` to probabilities ``(B, 2)`` with logit ``w . x + b`` for class 1."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = torch.nn.Parameter(torch.randn(D, generator=g), requires_grad=False)
        self.b = -1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x * self.w).sum(1) + self.b
        p = torch.sigmoid(z)
        return torch.stack([1 - p, p], 1)


def decide(probs: torch.Tensor) -> torch.Tensor:
    return probs.argmax(1)


def items(n: int = 12) -> list[Item]:
    g = torch.Generator().manual_seed(1)
    return [Item(i, 0.3 * torch.randn(D, generator=g), i % 2) for i in range(n)]


def run(config: AttackConfig, clf=None, batch_items=None) -> dict[int, Outcome]:
    clf = clf or WeightedSum()
    queue = list(batch_items or items())
    out: dict[int, Outcome] = {}
    attack_stream(clf, decide, lambda b, d: b + d, lambda: queue.pop(0) if queue else None,
                  lambda os_: out.update({o.key: o for o in os_}), config)
    return out


def reference(config: AttackConfig) -> dict[int, Outcome]:
    """The algorithm written out item by item: sign steps until confident or max_iter."""
    clf = WeightedSum()
    out = {}
    for it in items():
        delta = torch.zeros(D)
        t = torch.tensor([it.target])
        for k in range(config.max_iter + 1):
            d = delta[None].clone().requires_grad_(True)
            probs = clf(it.base[None] + d)
            p_t = probs[0, it.target].clamp_min(1e-12)
            loss = (d**2).sum() + config.alpha * -torch.log(p_t)
            (g,) = torch.autograd.grad(loss, d)
            flipped = bool(decide(probs.detach())[0] == t[0])
            if (flipped and float(p_t.detach()) >= config.confidence) or k == config.max_iter:
                out[it.key] = Outcome(it.key, delta, k, flipped)
                break
            delta = (delta - config.eta * g[0].sign()).clamp(-config.eps, config.eps)
    return out


CASE = dict(eps=0.1, eta=0.005, alpha=2.0, max_iter=60, confidence=0.9, batch_size=5)


def test_float32_matches_the_algorithm_item_by_item():
    got = run(AttackConfig(**CASE, precision="float32", threads=1))
    ref = reference(AttackConfig(**CASE, precision="float32"))
    assert got.keys() == ref.keys()
    for k in ref:
        assert got[k].iterations == ref[k].iterations and got[k].flipped == ref[k].flipped
        torch.testing.assert_close(got[k].delta, ref[k].delta, rtol=0, atol=1e-6)
    # some items stop on the margin early, some run to max_iter: both paths are exercised
    its = sorted(o.iterations for o in got.values())
    assert its[0] < CASE["max_iter"] and its[-1] == CASE["max_iter"]


def test_parallel_sub_batches_change_no_outcome():
    one = run(AttackConfig(**CASE, precision="float32", threads=1))
    for threads in (2, 3):
        many = run(AttackConfig(**CASE, precision="float32", threads=threads))
        for k in one:
            assert many[k].iterations == one[k].iterations and many[k].flipped == one[k].flipped
            assert torch.equal(many[k].delta, one[k].delta)
    assert torch.get_num_threads() >= 1  # torch's thread count is restored (checked below too)


def test_threads_are_restored_after_an_attack():
    before = torch.get_num_threads()
    run(AttackConfig(**CASE, precision="float32", threads=2))
    assert torch.get_num_threads() == before


def test_bfloat16_search_keeps_float32_verdicts():
    cfg = AttackConfig(**CASE, precision="bfloat16", threads=2)
    clf = WeightedSum()
    out = run(cfg, clf)
    assert len(out) == len(items())
    for it in items():
        o = out[it.key]
        assert float(o.delta.abs().max()) <= CASE["eps"] + 1e-7
        with torch.no_grad():
            p = clf((it.base + o.delta)[None]).float()[0]
        assert o.flipped == bool(decide(p[None])[0] == it.target)
        if o.iterations < CASE["max_iter"]:  # stopped on the margin: float32 agrees
            assert o.flipped and float(p[it.target]) >= CASE["confidence"]


def test_precision_is_resolved_and_checked():
    assert AttackConfig(eps=1, eta=1, alpha=1).precision in ("float32", "bfloat16")
    assert resolve_precision("float32") == "float32"
    with pytest.raises(ValueError, match="attack precision 'half'"):
        AttackConfig(eps=1, eta=1, alpha=1, precision="half")
    with pytest.raises(ValueError, match="threads"):
        AttackConfig(eps=1, eta=1, alpha=1, threads=-1)
