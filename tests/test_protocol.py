"""The protocol's records on white-box models whose cause is known by construction."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import explbench.explainers  # noqa: F401 - registers the explainers
from explbench.api.explainer import ExplainContext, Explainer, Explanation
from explbench.core.cases import Case
from explbench.checks.explainer_checks import check_explainer
from explbench.api.metric import HEADLINE_K
from explbench.protocol.scorer import CaseContext, Scorer
from explbench.protocol.validate import ExplainerFailure, validate_explanation
from explbench.api.registry import explainers
from explbench.core.segmentation import Segmentation, grid
from toy import ToyTask, segment_model

SMALL = (20, 25)
SEG = grid(SMALL, 5, 4)
CAUSE = 13  # t3 f1: the only segment the model looks at
CLASSES = ("off", "on")
BASE_FIELDS = {"case_id", "generator", "direction", "explainer", "oracle", "d", "true_segments",
               "flip_norm_at_k", "cluster", "necessary_segments", "signed", "flip_absmean_at_k",
               "status", "error"}


def scorer(model: nn.Module, seg: Segmentation = SEG, **kwargs) -> Scorer:
    return Scorer(ToyTask(model, seg.shape), seg, agnostic_samples=0, batch_size=64, **kwargs)


def cause_case(i: int, seg: Segmentation = SEG, cause: int = CAUSE, info: dict | None = None) -> Case:
    """Decided "off" on x; x + delta on the cause segment alone is decided "on"."""
    rng = np.random.default_rng(i)
    x = (0.1 * rng.standard_normal(seg.shape)).astype(np.float32)
    delta = seg.masks[cause].numpy().astype(np.float32)
    return Case(case_id=f"cause/{i:04d}", generator="planted", x=x, x_mod=x + delta, original=0,
                target=1, domain="planted", true_segments=(cause,),
                info={"song_seed": i // 4} if info is None else info)


class Fixed(Explainer):
    """Returns the weights (or dense map) it was built with; counts its calls."""

    def __init__(self, weights=None, dense=None, dense_map: bool = False, intercept=None, signed=True):
        self.weights, self.dense, self.intercept, self.calls = weights, dense, intercept, 0
        self.dense_map, self.signed = dense_map, signed

    def explain(self, model, x, target, *, segments, budget, rng, context):
        self.calls += 1
        model.predict(x[None])
        return Explanation(weights=None if self.weights is None else np.array(self.weights),
                           dense=None if self.dense is None else np.array(self.dense),
                           intercept=self.intercept, extra={"note": "fixed"})


# --------------------------------------------------------------------------- ties


def test_a_fully_tied_explainer_flips_at_the_random_rate():
    """With every weight equal, FR(k) must be k/d (a random ranking), not 1{k > CAUSE} (index order)."""
    s = scorer(segment_model(SEG, CAUSE, SMALL, threshold=0.5), seed=7)
    tied = Fixed(weights=np.zeros(SEG.d))
    n = 400
    flips = np.zeros((n, SEG.d))
    assert s.context(cause_case(0), seed=0).flip_norm_at_k[0]  # the energy reference finds the cause
    ctx = CaseContext(flip_norm_at_k=np.zeros(SEG.d, dtype=bool))  # (not needed for flip_at_k)
    for i in range(n):
        case = cause_case(i)
        (record, _), = s.records(case, "tied", tied, ctx, None, np.random.default_rng(i), CLASSES)
        flips[i] = record["flip_at_k"]
    for k in (1, 3, 5, 10):
        p = k / SEG.d
        sd = np.sqrt(p * (1 - p) / n)
        assert abs(flips[:, k - 1].mean() - p) < 4 * sd, (k, flips[:, k - 1].mean(), p)
    # the same seed gives the same records; another run seed another tie order
    again = s.records(cause_case(0), "tied", tied, ctx, None, np.random.default_rng(0), CLASSES)[0][0]
    assert again["flip_at_k"] == flips[0].tolist()


def test_a_tie_at_the_top_is_broken_uniformly():
    """The cause tied with four others at the top: FR(1) = 1/5, and FR(5) = 1."""
    s = scorer(segment_model(SEG, CAUSE, SMALL), seed=0)
    w = np.zeros(SEG.d)
    w[[2, 5, CAUSE, 17, 19]] = 1.0
    ex = Fixed(weights=w)
    first = []
    ctx = CaseContext(flip_norm_at_k=np.zeros(SEG.d, dtype=bool))
    for i in range(200):
        (r, _), = s.records(cause_case(i), "top-tie", ex, ctx, None, np.random.default_rng(i), CLASSES)
        first.append(r["flip_at_k"][0])
        assert r["flip_at_k"][4] and r["n_positive"] == 5 and r["flip_positive"]
    assert abs(np.mean(first) - 0.2) < 4 * np.sqrt(0.2 * 0.8 / 200)


# --------------------------------------------------------------------------- base fields


def test_every_record_carries_the_base_fields_ok_and_failed():
    s = scorer(segment_model(SEG, CAUSE, SMALL))
    case = cause_case(3, info={"cluster": "song-a", "song_seed": 9})
    case.necessary_segments = (CAUSE,)  # Contract B (cases.py); read when present
    ctx = s.context(case, 0)
    ok, _ = s.records(case, "lime", explainers.get("lime")(n_samples=64), ctx, 64, np.random.default_rng(0), CLASSES)[0]
    bad, _ = s.records(case, "broken", Fixed(weights=[np.nan] * SEG.d), ctx, 64, np.random.default_rng(0), CLASSES)[0]
    for r in (ok, bad):
        assert BASE_FIELDS <= set(r), BASE_FIELDS - set(r)
        assert r["cluster"] == "song-a" and r["necessary_segments"] == [CAUSE]
        assert len(r["flip_absmean_at_k"]) == SEG.d and r["signed"] is True
        json.dumps(r, allow_nan=False)
    assert ok["status"] == "ok" and ok["flip_at_k"][0] and ok["aggregation"] is None
    assert bad["status"] == "failed" and "broken returned weights with 20 NaN" in bad["error"]
    assert s.failure(case, "broken", Fixed(), ctx, CLASSES, "Timeout: too slow")["error"] == "Timeout: too slow"
    # the cluster falls back to the song, then to the case
    assert s.failure(cause_case(9), "x", Fixed(), ctx, CLASSES, "e")["cluster"] == "2"
    assert s.failure(cause_case(9, info={}), "x", Fixed(), ctx, CLASSES, "e")["cluster"] == "cause/0009"
    unsigned = s.records(case, "saliency", explainers.get("saliency")(), ctx, 64, np.random.default_rng(0), CLASSES)[0][0]
    assert unsigned["signed"] is False


def test_the_absmean_reference_is_not_fooled_by_a_large_segment():
    """A large segment carrying a weak delta outweighs, in energy, the small segment that is the
    cause; the mean-|delta| reference ranks the cause first."""
    masks = torch.zeros(2, 10, 10)
    masks[0, :9] = 1.0  # 90 cells
    masks[1, 9] = 1.0   # 10 cells: the cause
    seg = Segmentation(masks, ("big", "small"), "custom")
    model = segment_model(seg, 1, (10, 10), threshold=0.5)
    x = np.zeros((10, 10), dtype=np.float32)
    delta = (0.5 * masks[0] + 1.0 * masks[1]).numpy()  # energies 22.5 vs 10; mean |delta| 0.5 vs 1
    case = Case("big/0", "planted", x, x + delta, 0, 1, "planted", true_segments=(0, 1))
    ctx = scorer(model, seg).context(case, 0)
    assert ctx.flip_norm_at_k.tolist() == [False, True]
    assert ctx.flip_absmean_at_k.tolist() == [True, True]


# --------------------------------------------------------------------------- dense maps


def alternating_model(seg: Segmentation, cause: int) -> tuple[nn.Module, np.ndarray]:
    """p(on) = sigmoid(sum over the cause of s_i x_i) with signs s_i alternating +-1: the
    gradient inside the cause has mean 0 but a large mean |.|; elsewhere it is 0."""
    m = seg.masks[cause].reshape(-1)
    signs = torch.where(torch.arange(m.numel()) % 2 == 0, 1.0, -1.0) * m
    cells = int(m.sum())
    if int((signs > 0).sum()) != int((signs < 0).sum()):  # balance exactly
        signs[torch.nonzero(signs > 0)[-1]] = 0.0
    lin = nn.Linear(m.numel(), 2)
    with torch.no_grad():
        lin.weight.copy_(torch.stack([-signs, signs]) * (4.0 / cells))
        lin.bias.copy_(torch.tensor([1.0, -1.0]))
    model = nn.Sequential(nn.Flatten(), lin, nn.Softmax(dim=1)).eval().requires_grad_(False)
    return model, signs.reshape(seg.shape).numpy()


def test_aggregations_rank_a_known_segment_and_come_from_one_explanation():
    model, signs = alternating_model(SEG, CAUSE)
    x = np.zeros(SMALL, dtype=np.float32)
    case = Case("alt/0", "planted", x, x + 2.0 * signs.astype(np.float32), 0, 1, "planted",
                true_segments=(CAUSE,))
    s = scorer(model, aggregation="mean", extra_aggregations=("mean_pos", "mean_abs", "sum"))
    assert s.decide(torch.from_numpy(case.x_mod)[None])[0] == 1 and s.decide(torch.from_numpy(x)[None])[0] == 0
    calls = []
    sal = explainers.get("saliency")(abs=False)
    original = sal.explain

    def counted(*a, **k):
        calls.append(1)
        return original(*a, **k)

    sal.explain = counted
    ctx = s.context(case, 0)
    out = s.records(case, "saliency", sal, ctx, None, np.random.default_rng(0), CLASSES)
    assert len(calls) == 1  # one explanation, four records
    recs = {r["explainer"]: r for r, _ in out}
    assert list(recs) == ["saliency", "saliency[mean_pos]", "saliency[mean_abs]", "saliency[sum]"]
    for name in ("saliency[mean_pos]", "saliency[mean_abs]"):
        w = np.asarray(recs[name]["weights"])
        assert int(np.argmax(w)) == CAUSE and np.delete(w, CAUSE).max() == 0.0
        assert recs[name]["flip_at_k"][0] and recs[name]["signed"] is False
        assert recs[name]["aggregation"] == name[9:-1]
    # the signed aggregations cancel inside the cause: it is not found at k = 1 by its weight
    for name in ("saliency", "saliency[sum]"):
        assert abs(recs[name]["weights"][CAUSE]) < 1e-9 and recs[name]["signed"] is True
    assert recs["saliency"]["aggregation"] == "mean"
    assert all(r["queries"] == 1 and r["status"] == "ok" for r in recs.values())
    assert [a for _, a in out] == [None] * 4


def test_a_dense_explainer_that_fails_fails_under_every_aggregation():
    s = scorer(segment_model(SEG, CAUSE, SMALL), extra_aggregations=("mean_abs",))
    case = cause_case(1)
    ctx = s.context(case, 0)
    bad = Fixed(dense=np.full((3, 3), 1.0), dense_map=True)
    out = s.records(case, "bad", bad, ctx, None, np.random.default_rng(0), CLASSES)
    assert [(r["explainer"], r["status"], r["signed"]) for r, _ in out] == [
        ("bad", "failed", True), ("bad[mean_abs]", "failed", False)]
    assert s.unit_names("bad", bad) == ["bad", "bad[mean_abs]"]
    assert s.unit_names("lime", explainers.get("lime")()) == ["lime"]
    # a map without declared dense_map still gets its aggregation records when it succeeds
    dense = np.zeros(SMALL)
    dense[SEG.masks[CAUSE].bool().numpy()] = 1.0
    out = s.records(case, "plain", Fixed(dense=dense), ctx, None, np.random.default_rng(0), CLASSES)
    assert [r["explainer"] for r, _ in out] == ["plain", "plain[mean_abs]"]
    assert all(r["flip_at_k"][0] for r, _ in out)


def test_unknown_aggregation_is_refused():
    with pytest.raises(ValueError, match="mean_abs"):
        scorer(segment_model(SEG, CAUSE, SMALL), aggregation="max")


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("weights, words", [
    (np.zeros((4, 5)), "shape (4, 5); expected (20,)"),
    (np.zeros((1, 20)), "shape (1, 20); expected (20,)"),
    (np.zeros(5), "shape (5,); expected (20,)"),
    (np.array([0.0] * 19 + [np.inf]), "0 NaN and 1 infinite values of 20 (segments 19)"),
])
def test_one_validation_for_the_protocol_and_the_conformance_check(weights, words):
    s = scorer(segment_model(SEG, CAUSE, SMALL))
    with pytest.raises(ExplainerFailure) as info:
        s.explain(Fixed(weights=weights), cause_case(0), None, np.random.default_rng(0), name="my-plugin")
    assert str(info.value).startswith("my-plugin returned weights ") and words in str(info.value)
    with pytest.raises(ExplainerFailure) as direct:
        validate_explanation(Explanation(weights=weights), SEG, "my-plugin")
    assert str(direct.value) == str(info.value)
    if weights.size != SEG.d:
        assert "one weight per segment of the scoring segmentation (grid 5x4)" in str(info.value)
    # the conformance check says the same thing in its weights rule
    if weights.shape == (4, 5):
        msgs = {r.name: r.message for r in check_explainer(Fixed(weights=weights)) if not r.passed}
        assert "returned weights of shape (4, 5); expected (20,)" in msgs["weights of shape (d,), finite"]


def test_dense_map_of_the_wrong_shape_is_named():
    s = scorer(segment_model(SEG, CAUSE, SMALL))
    with pytest.raises(ExplainerFailure, match=r"dense map of shape \(25, 20\); expected the domain shape \(20, 25\)"):
        s.explain(Fixed(dense=np.zeros((25, 20))), cause_case(0), None, np.random.default_rng(0), name="dm")
    with pytest.raises(ExplainerFailure, match="neither weights nor a dense map"):
        s.explain(Fixed(), cause_case(0), None, np.random.default_rng(0), name="dm")


def test_harness_counts_queries_and_time_and_stores_no_nan():
    s = scorer(segment_model(SEG, CAUSE, SMALL))
    e = s.explain(Fixed(weights=np.arange(20.0), intercept=float("nan")), cause_case(0), None,
                  np.random.default_rng(0))
    assert e.queries == 1 and e.seconds > 0
    case = cause_case(0)
    r, _ = s.records(case, "f", Fixed(weights=np.arange(20.0), intercept=float("nan")), s.context(case, 0),
                    None, np.random.default_rng(0), CLASSES)[0]
    assert r["intercept"] is None and r["queries"] == 1
    json.dumps(r, allow_nan=False)


def test_old_signature_fails_with_the_fix_in_the_message():
    class Old(Explainer):
        def explain(self, model, x, target, segments, budget, rng, delta=None):
            return Explanation(weights=np.zeros(segments.d))

    s = scorer(segment_model(SEG, CAUSE, SMALL))
    case = cause_case(0)
    r, _ = s.records(case, "old", Old(), s.context(case, 0), None, np.random.default_rng(0), CLASSES)[0]
    assert r["status"] == "failed"
    assert "does not take context" in r["error"] and "context.delta" in r["error"]


def test_oracles_get_delta_and_ranked_explainers_do_not():
    seen = {}

    class Peek(Explainer):
        def explain(self, model, x, target, *, segments, budget, rng, context):
            seen[type(self).__name__] = context
            return Explanation(weights=np.zeros(segments.d))

    class PeekOracle(Peek):
        oracle = True

    s = scorer(segment_model(SEG, CAUSE, SMALL))
    for ex in (Peek(), PeekOracle()):
        s.explain(ex, cause_case(2), None, np.random.default_rng(0))
    assert seen["Peek"].delta is None and seen["Peek"].audio is None
    np.testing.assert_array_equal(seen["PeekOracle"].delta.numpy(), cause_case(2).delta)
    assert isinstance(seen["Peek"], ExplainContext) and seen["Peek"].headline_k == HEADLINE_K
    assert ExplainContext().headline_k == HEADLINE_K
