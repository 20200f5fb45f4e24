"""Batch-size tuning logic, on a model whose speed per batch size is known by construction: it
advances a fake clock by a set cost per call, so choices can be checked without timing anything."""

from __future__ import annotations

import json

import pytest
import torch

from explbench.run import batching as tuning
from explbench.run.batching import DEFAULT_BATCH, BatchChoice, best_batch_size, machine_key, measure, pick

SHAPE = (3,)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CostModel(torch.nn.Module):
    """Seconds per call = ``cost[batch]``, times ``slow`` while the clock is inside a busy spell."""

    def __init__(self, clock: Clock, cost: dict[int, float], spells: tuple[tuple[float, float], ...] = (),
                 slow: float = 10.0) -> None:
        super().__init__()
        self.clock, self.cost, self.spells, self.slow = clock, cost, spells, slow
        self.calls: dict[int, int] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        self.calls[b] = self.calls.get(b, 0) + 1
        busy = any(t0 <= self.clock.now < t1 for t0, t1 in self.spells)
        self.clock.now += self.cost[b] * (self.slow if busy else 1.0)
        return x


def per_input(rates: dict[int, float]) -> dict[int, float]:
    """Costs per call giving ``rates`` inputs per second."""
    return {b: b / r for b, r in rates.items()}


CANDS = (4, 16, 64)


def test_pinned_measures_nothing(tmp_path):
    clock = Clock()
    model = CostModel(clock, per_input({4: 10, 16: 20, 64: 15}))
    choice = best_batch_size(model, SHAPE, "m", candidates=CANDS, pinned=7, cache_file=tmp_path / "t.json",
                             timer=clock)
    assert choice == 7 and choice.how == "pinned" and model.calls == {}
    assert choice.to_dict()["how"] == "pinned"
    with pytest.raises(ValueError, match="--batch-size must be >= 1"):
        best_batch_size(model, SHAPE, "m", pinned=0, timer=clock)


def test_measures_once_then_uses_the_cache_after_a_check(tmp_path):
    clock = Clock()
    model = CostModel(clock, per_input({4: 10.0, 16: 30.0, 64: 20.0}))
    path = tmp_path / "t.json"
    first = best_batch_size(model, SHAPE, "m", candidates=CANDS, cache_file=path, timer=clock)
    assert (first, first.how) == (16, "measured")
    assert first.rates[16] == pytest.approx(30.0) and first.rates[64] == pytest.approx(20.0)
    stored = json.loads(path.read_text())
    assert list(stored.values())[0]["batch_size"] == 16
    model.calls.clear()
    second = best_batch_size(model, SHAPE, "m", candidates=CANDS, cache_file=path, timer=clock)
    assert (second, second.how) == (16, "cached")
    assert set(model.calls) == {16, 64}  # only the re-check against the default ran
    assert second.check["cached"] == pytest.approx(30.0) and second.check["default"] == pytest.approx(20.0)
    # it is an int wherever an int is expected
    assert json.loads(json.dumps({"b": second})) == {"b": 16} and list(range(0, 40, second)) == [0, 16, 32]


def test_interleaved_medians_survive_a_busy_spell(tmp_path):
    """A spell 10x slower while batch 16 is timed in the first round makes a one-pass measurement
    pick batch 64; five interleaved rounds and their medians still pick the truly fastest, 16."""
    rates = {4: 1000.0, 16: 3000.0, 64: 2000.0}
    # warm-up ends at 0.041 s; round 1 times batch 4 until 0.141 s, then batch 16 from there
    spell = ((0.15, 0.24),)
    clock = Clock()
    one_pass = measure(CostModel(clock, per_input(rates), spells=spell), SHAPE, CANDS, rounds=1, timer=clock)
    assert pick({b: r[0] for b, r in one_pass.items()}, DEFAULT_BATCH, 0.05) == 64
    clock = Clock()
    choice = best_batch_size(CostModel(clock, per_input(rates), spells=spell), SHAPE, "m", candidates=CANDS,
                             rounds=5, seconds=0.1, cache_file=tmp_path / "t.json", timer=clock)
    assert (choice, choice.how) == (16, "measured")
    assert choice.rates[16] == pytest.approx(3000.0, rel=0.01)


def test_a_stale_cached_choice_slower_than_the_default_is_measured_again(tmp_path):
    clock = Clock()
    path = tmp_path / "t.json"
    model = CostModel(clock, per_input({4: 10.0, 16: 30.0, 64: 40.0}))
    key = machine_key("m", "cpu", SHAPE)
    # a measurement taken on a busy machine once: batch 4 "won"
    path.write_text(json.dumps({key: {"batch_size": 4, "inputs_per_second": {"4": 50.0, "64": 20.0}}}))
    choice = best_batch_size(model, SHAPE, "m", candidates=CANDS, cache_file=path, timer=clock)
    assert (choice, choice.how) == (64, "remeasured")
    assert choice.check["default"] == pytest.approx(40.0) and choice.check["cached"] == pytest.approx(10.0)
    assert json.loads(path.read_text())[key]["batch_size"] == 64
    # a cached choice that still beats the default is kept
    path.write_text(json.dumps({key: {"batch_size": 16, "inputs_per_second": {}}}))
    model.cost = per_input({4: 10.0, 16: 50.0, 64: 40.0})
    kept = best_batch_size(model, SHAPE, "m", candidates=CANDS, cache_file=path, timer=clock)
    assert (kept, kept.how) == (16, "cached")


def test_a_candidate_must_beat_the_default_by_the_margin():
    assert pick({4: 10.0, 16: 20.9, 64: 20.0}, DEFAULT_BATCH, 0.05) == 64
    assert pick({4: 10.0, 16: 21.1, 64: 20.0}, DEFAULT_BATCH, 0.05) == 16
    assert pick({4: 30.0, 16: 30.0}, 64, 0.05) == 4  # ties go to the smaller batch; no default measured


def test_a_new_machine_or_torch_measures_again(tmp_path, monkeypatch):
    clock = Clock()
    path = tmp_path / "t.json"
    model = CostModel(clock, per_input({4: 10.0, 16: 30.0, 64: 20.0}))
    assert best_batch_size(model, SHAPE, "m", candidates=CANDS, cache_file=path, timer=clock).how == "measured"
    assert best_batch_size(model, SHAPE, "m", candidates=CANDS, cache_file=path, timer=clock).how == "cached"
    monkeypatch.setattr(torch, "__version__", "99.0.0")
    assert best_batch_size(model, SHAPE, "m", candidates=CANDS, cache_file=path, timer=clock).how == "measured"
    monkeypatch.setattr(tuning, "cpu_model", lambda: "Another CPU")
    assert best_batch_size(model, SHAPE, "m", candidates=CANDS, cache_file=path, timer=clock).how == "measured"
    assert best_batch_size(model, SHAPE, "other-model", candidates=CANDS, cache_file=path,
                           timer=clock).how == "measured"
    assert len(json.loads(path.read_text())) == 4


def test_measure_interleaves_rounds():
    clock = Clock()
    order: list[int] = []

    class Recorder(CostModel):
        def forward(self, x):
            if not order or order[-1] != x.shape[0]:
                order.append(x.shape[0])
            return super().forward(x)

    measure(Recorder(clock, per_input({1: 10.0, 2: 10.0, 3: 10.0})), SHAPE, [1, 2, 3], rounds=3, timer=clock)
    visits = order[3:]  # after the warm-up pass
    assert visits == [1, 2, 3, 1, 3, 2, 3, 1, 2]
    assert BatchChoice(8, "measured") == 8
    with pytest.raises(ValueError, match="how must be"):
        BatchChoice(8, "guessed")
