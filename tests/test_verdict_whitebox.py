"""The verdict end to end on a white-box model whose cause is known by construction.

The classifier looks at one segment only (``SEEN``). Every parent case perturbs that segment
and two segments the model cannot see, with more energy on the unseen ones, so the energy
reference ("norm") points at the wrong segment first, and the localised k = 3 cause claimed by
energy holds two segments the model does not need. Real generators, the real scorer and the
real aggregator run on it; every expected number follows from the construction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from explbench.api import registry
from explbench.api.explainer import Explainer, Explanation
from explbench.core.cases import Case
from explbench.metrics import aggregate
from explbench.core.segmentation import from_spec
from explbench.api.task import Excerpt, Task

SHAPE = (8, 10)  # 4 x 5 grid of 2 x 2 cells: d = 20
SEEN = 6
N_PARENTS = 24


class OneSegmentTask(Task):
    """P(on) = sigmoid(8 * (mean of x over segment SEEN) - 4); nothing else matters."""

    name = "one-segment"
    classes = ("off", "on")
    domain_shape = SHAPE
    domain_axes = ("mel band", "frame")
    excerpt_samples = 16

    def __init__(self) -> None:
        self.segments = from_spec("grid:5x4", SHAPE)
        mask = self.segments.masks[SEEN].float()
        self._mask = mask / mask.sum()

    def to_domain(self, audio: torch.Tensor) -> torch.Tensor:
        return torch.zeros(audio.shape[0], *SHAPE)

    def classifier(self) -> torch.nn.Module:
        mask = self._mask

        class _Net(torch.nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                p = torch.sigmoid(8.0 * (x * mask).flatten(1).sum(1) - 4.0)
                return torch.stack([1 - p, p], dim=1)

        return _Net().eval()

    def excerpts(self, split: str, n: int, seed: int):
        return iter([Excerpt(np.zeros(16, np.float32), 0, i, 0.0) for i in range(n)])

    def model_hash(self) -> str:
        return "one-segment-v1"


def parents(task: OneSegmentTask, rng: np.random.Generator) -> list[Case]:
    """Cases whose delta is 1.5 on SEEN and larger on two segments the model cannot see."""
    masks = task.segments.masks.numpy().astype(np.float32)
    out = []
    for i in range(N_PARENTS):
        blind = rng.choice([s for s in range(20) if s != SEEN], size=2, replace=False)
        delta = 1.5 * masks[SEEN] + 3.0 * masks[blind[0]] + 2.0 * masks[blind[1]]
        x = np.zeros(SHAPE, np.float32)
        out.append(Case(f"adv/{i:03d}", "adv", x, x + delta, 0, 1, "spectrogram",
                        info={"cluster": f"song-{i}", "blind": [int(b) for b in blind]}))
    return out


class Perfect(Explainer):
    """Weight 1 on the segment the model reads, 0 (tied) elsewhere."""

    def explain(self, model, x, target, *, segments, budget, rng, context):
        w = np.zeros(segments.d)
        w[SEEN] = 1.0
        return Explanation(weights=w)


class Flat(Explainer):
    """Every weight tied: must score exactly like a random ranking."""

    signed = False

    def explain(self, model, x, target, *, segments, budget, rng, context):
        return Explanation(weights=np.zeros(segments.d))


@pytest.fixture(scope="module")
def verdict():
    from explbench.protocol.scorer import Scorer

    task = OneSegmentTask()
    adv = parents(task, np.random.default_rng(0))
    loc, stats = registry.generators.get("localized")(ks=(1, 3, 5)).derive(
        task, task.segments, adv, seed=0, progress=False)
    scorer = Scorer(task, task.segments, agnostic_samples=64, batch_size=8, seed=0)
    explainers = {"perfect": Perfect(), "flat": Flat(),
                  "oracle-norm": registry.explainers.get("oracle-norm")()}
    rows = []
    for case in [*adv, *loc]:
        ctx = scorer.context(case, seed=1)
        for name, e in explainers.items():
            rng = np.random.default_rng(2)
            for record, _ in scorer.records(case, name, e, ctx, None, rng, task.classes):
                rows.append(record)
    table = aggregate(pd.DataFrame(rows), seed=0, n_boot=200)
    return adv, loc, stats, table


def value(table, explainer, metric, k, generator):
    sel = table[(table.explainer == explainer) & (table.metric == metric) & (table.k == k)
                & (table.direction == "all") & (table.generator == generator)]
    assert len(sel) == 1, (explainer, metric, k, generator)
    return sel.iloc[0]


def test_localised_cases_claim_only_segments_that_carry_the_perturbation(verdict):
    adv, loc, stats, _ = verdict
    by_k = {}
    for c in loc:
        by_k.setdefault(len(c.true_segments), []).append(c)
    # k = 1 by energy is a blind segment: nothing flips; k = 5 exceeds the support of 3
    assert sorted(by_k) == [3]
    assert len(by_k[3]) == N_PARENTS
    for c in by_k[3]:
        parent = next(p for p in adv if p.case_id == c.info["parent"])
        assert set(c.true_segments) == {SEEN, *parent.info["blind"]}
        assert set(c.necessary_segments) == {SEEN}
        energy = verdict_energy(c)
        assert all(energy[s] > 0 for s in c.true_segments)


def verdict_energy(case: Case) -> np.ndarray:
    return from_spec("grid:5x4", SHAPE).energy(case.delta)


def test_flip_rates_follow_the_construction(verdict):
    _, _, _, t = verdict
    assert value(t, "perfect", "flip-rate", 1, "adv").value == 1.0
    assert value(t, "oracle-norm", "flip-rate", 1, "adv").value == 0.0  # energy picks a blind one
    assert value(t, "oracle-norm", "flip-rate", 3, "adv").value == 1.0
    assert value(t, "perfect", "flip-rate-norm", 1, "adv").value == 0.0  # the reference curve
    # the flat explainer breaks ties at random: FR(1) is about 1/20, FR(20) is 1
    flat1 = value(t, "flat", "flip-rate", 1, "adv")
    assert flat1.value <= 0.25 and flat1.n == N_PARENTS and flat1.n_clusters == N_PARENTS
    assert value(t, "flat", "flip-rate", 20, "adv").value == 1.0
    # intervals: Clopper-Pearson, never zero width
    p = value(t, "perfect", "flip-rate", 1, "adv")
    assert p.ci_high == 1.0 and 0.8 < p.ci_low < 1.0


def test_recovery_against_claimed_and_necessary_causes(verdict):
    _, _, _, t = verdict
    # perfect: SEEN certain; 2 more places among 19 tied segments, 2 of them claimed
    claimed = value(t, "perfect", "recovery", 3, "localized").value
    assert claimed == pytest.approx((1 + 2 * 2 / 19) / 3)
    assert value(t, "perfect", "recovery-necessary", 3, "localized").value == 1.0
    assert value(t, "oracle-norm", "recovery", 3, "localized").value == 1.0
    # the flat explainer scores exactly the random expectation k / d
    assert value(t, "flat", "recovery", 3, "localized").value == pytest.approx(3 / 20)
    assert value(t, "flat", "recovery-necessary", 3, "localized").value == pytest.approx(3 / 20)
    assert value(t, "perfect", "minimal-cause-rate", 3, "localized").value == 0.0


def test_positive_flip_not_applicable_to_unsigned(verdict):
    _, _, _, t = verdict
    sel = t[(t.explainer == "flat") & (t.metric == "positive-flip-rate")]
    assert sel.empty
    pos = t[(t.explainer == "perfect") & (t.metric == "positive-flip-rate") & (t.direction == "all")
            & (t.generator == "adv")]
    assert pos.value.tolist() == [1.0]  # its one positive segment is the cause
