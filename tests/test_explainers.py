"""Behaviour of the shipped explainers on toy models whose cause is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lime.lime_base import LimeBase
from sklearn.linear_model import Ridge
from sklearn.metrics import pairwise_distances
from torch import nn

import explbench.explainers  # noqa: F401 - registers the explainers
from explbench.api.explainer import ExplainContext
from explbench.api.model_access import ModelAccess
from explbench.checks.fixtures import toy_audio
from explbench.api.registry import explainers
from explbench.core.segmentation import from_spec, grid, time_segments, top_k
from explbench.explainers.lime import cosine_to_ones, fit_surrogate, lime_core, sample_masks
from toy import DOMAIN, lime_overhead, run_explainer, segment_input, segment_model, weights_of

SEG = grid(DOMAIN)
INDEX = 6  # t1 f2: the segment the toy model looks at


def explain(name, index=INDEX, budget=None, seed=0, model=None, x=None, seg=SEG, target=1, **params):
    """Explain with the registered explainer ``name``; the Explanation's weights are those the
    protocol scores (a dense map projected by the default aggregation, "mean")."""
    ex = explainers.get(name)(**params)
    model = model if model is not None else segment_model(seg, index, seg.shape, target=target)
    x = segment_input(seg, index) if x is None else x
    e, access = run_explainer(ex, model, x, seg, target=target, budget=budget, seed=seed)
    e.weights = weights_of(e, seg)
    return e, access


# --------------------------------------------------------------------------- lime


def test_cosine_distance_of_zero_row_is_one_and_otherwise_sklearn():
    z = np.array([[1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 1]], dtype=np.float32)
    d = cosine_to_ones(z)
    assert np.all(np.isfinite(d))
    assert d[0] == pytest.approx(0.0, abs=1e-12) and d[1] == 1.0
    exact = pairwise_distances(z.astype(np.float64), z[:1].astype(np.float64), metric="cosine").ravel()
    np.testing.assert_allclose(d[2:], exact[2:], rtol=0, atol=1e-15)
    assert d[3] == pytest.approx(1 - 3 / np.sqrt(12), abs=1e-15)


def test_sample_masks_first_row_all_ones():
    z = sample_masks(np.random.default_rng(0), 500, 20)
    assert z.shape == (500, 20) and np.all(z[0] == 1) and set(np.unique(z)) <= {0.0, 1.0}
    assert 0.45 < z[1:].mean() < 0.55


def test_lime_core_equals_limebase_on_fixed_neighbourhood():
    model = segment_model(SEG, INDEX, threshold=0.3)
    x = segment_input(SEG, INDEX, seed=3)
    rng = np.random.default_rng(7)
    z = rng.binomial(1, 0.5, size=(300, SEG.d)).astype(np.float32)
    z[0] = 1.0
    z[5] = 0.0  # an all-zero row
    baseline = torch.full_like(x, float(x.mean()))
    fit = lime_core(ModelAccess(model), x, 1, SEG, z, baseline, kernel_width=0.25, alpha=1.0)

    # the same neighbourhood straight through LimeBase, distances from the formula
    with torch.no_grad():
        labels = model(baseline + SEG.mask(z) * (x - baseline)).double().numpy()
    norms = np.linalg.norm(z, axis=1)
    cos = z.sum(1) / (np.where(norms > 0, norms, 1.0) * np.sqrt(SEG.d))
    dist = np.where(norms > 0, 1.0 - cos, 1.0)
    base = LimeBase(lambda d: np.sqrt(np.exp(-(d**2) / 0.25**2)))
    intercept, coefs, score, _ = base.explain_instance_with_data(
        z.astype(np.float64), labels, dist, 1, SEG.d, feature_selection="none",
        model_regressor=Ridge(alpha=1, fit_intercept=True),
    )
    expected = np.zeros(SEG.d)
    for i, c in coefs:
        expected[i] = c
    np.testing.assert_allclose(fit.weights, expected, rtol=0, atol=1e-8)
    assert fit.intercept == pytest.approx(intercept, abs=1e-8)
    assert fit.score == pytest.approx(score, abs=1e-8)


def test_lime_distances_and_fit_match_the_lime_package_in_float64():
    """The ``lime`` package draws integer masks, so scikit-learn computes its cosine distances in
    float64; ours (float32 masks) must give the same distances and surrogate to 1e-9."""
    rng = np.random.default_rng(11)
    data = rng.integers(0, 2, size=(2000, SEG.d))  # as lime_image.LimeImageExplainer.data_labels
    data[0, :] = 1
    data[7, :] = 0
    lime_dist = pairwise_distances(data, data[0].reshape(1, -1), metric="cosine").ravel()
    z = data.astype(np.float32)
    ours = cosine_to_ones(z)
    assert ours.dtype == np.float64
    assert np.max(np.abs(ours[np.arange(2000) != 7] - lime_dist[np.arange(2000) != 7])) <= 1e-12
    assert ours[7] == 1.0

    steep = 1 / (1 + np.exp(-4 * (z @ rng.standard_normal(SEG.d))))  # float32 distances move this fit by 3e-9
    labels = np.stack([1 - steep, steep], axis=1)
    fit = fit_surrogate(z, labels, 1, kernel_width=0.25, alpha=1.0)
    base = LimeBase(lambda d: np.sqrt(np.exp(-(d**2) / 0.25**2)))
    intercept, coefs, score, _ = base.explain_instance_with_data(
        data, labels, np.where(data.any(axis=1), lime_dist, 1.0), 1, SEG.d,
        feature_selection="none", model_regressor=Ridge(alpha=1, fit_intercept=True))
    expected = np.zeros(SEG.d)
    for i, c in coefs:
        expected[i] = c
    np.testing.assert_allclose(fit.weights, expected, rtol=0, atol=1e-9)
    assert abs(fit.intercept - intercept) <= 1e-9 and abs(fit.score - score) <= 1e-9


@pytest.mark.parametrize("index", [0, 6, 19])
def test_lime_ranks_the_deciding_segment_first(index):
    e, access = explain("lime", index=index)
    assert top_k(e.weights, 1)[0] == index
    assert e.weights.shape == (SEG.d,) and e.weights.dtype == np.float64
    assert e.queries == access.queries == 1024
    assert 0 < e.score <= 1 and e.intercept is not None and e.seconds > 0
    raw = explainers.get("lime")().explain(ModelAccess(segment_model(SEG, index)), segment_input(SEG, index), 1,
                                            segments=SEG, budget=64, rng=np.random.default_rng(0),
                                            context=ExplainContext())
    assert raw.queries == 0 and raw.seconds == 0  # bookkeeping is the harness's


def test_lime_sizes_samples_to_budget():
    e, access = explain("lime", budget=100)
    assert e.queries == access.queries == 100 and e.extra["n_samples"] == 100


def test_lime_overhead_beside_a_realistic_forward():
    """Everything but the forward must stay under 10 % of a 7 ms-per-input CNN at 1024 samples."""
    lime_overhead(64, model=segment_model(SEG, INDEX))  # warm-up
    r = lime_overhead(1024, model=segment_model(SEG, INDEX), batch_size=8)
    assert r["overhead_s"] < 0.10 * 0.007 * 1024, r


@pytest.mark.parametrize("name, axis", [("slime-time", "t"), ("slime-freq", "f")])
def test_slime_finds_the_block_and_keeps_total_weight(name, axis):
    e, _ = explain(name)
    t, f = divmod(INDEX, 4)
    by_block = e.weights.reshape(5, 4).sum(axis=1 if axis == "t" else 0)
    assert np.argmax(by_block) == (t if axis == "t" else f)
    assert e.weights.sum() == pytest.approx(sum(e.extra["component_weights"]), rel=1e-9)
    assert e.dense.shape == DOMAIN and len(e.extra["components"]) == 10


# --------------------------------------------------------------------------- references


def test_random_is_seeded_and_free():
    a, access = explain("random", seed=5)
    b, _ = explain("random", seed=5)
    c, _ = explain("random", seed=6)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert not np.array_equal(a.weights, c.weights)
    assert a.queries == access.queries == 0 and a.weights.shape == (SEG.d,)


def test_oracle_norm_is_segment_energy():
    rng = np.random.default_rng(1)
    delta = torch.from_numpy(rng.standard_normal(DOMAIN).astype(np.float32))
    ex = explainers.get("oracle-norm")()
    assert ex.oracle and not ex.signed
    e, access = run_explainer(ex, segment_model(SEG, INDEX), segment_input(SEG, INDEX), SEG,
                              context=ExplainContext(delta=delta))
    np.testing.assert_allclose(e.weights, SEG.energy(delta))
    expected = np.array([(delta.double() ** 2 * SEG.masks[i]).sum().item() for i in range(SEG.d)])
    np.testing.assert_allclose(e.weights, expected, rtol=1e-9)
    assert e.queries == access.queries == 0


# --------------------------------------------------------------------------- the zoo


RANKERS = [
    "lime", "kernelshap", "occlusion", "integrated-gradients", "saliency", "input-x-gradient",
    "smoothgrad", "gradient-shap", "deeplift",
]


@pytest.mark.parametrize("name", RANKERS)
@pytest.mark.parametrize("index", [3, 17])
def test_explainers_rank_the_deciding_segment_first(name, index):
    e, access = explain(name, index=index)
    assert top_k(e.weights, 1)[0] == index, e.weights
    assert e.queries == access.queries


def test_kernelshap_keeps_all_features_and_fits_budget():
    class MeanModel(nn.Module):  # every segment matters
        def forward(self, x):
            p = torch.sigmoid(4 * x.mean(dim=(1, 2)))[:, None]
            return torch.cat([1 - p, p], dim=1)

    x = segment_input(SEG, INDEX) + 0.5
    e, access = explain("kernelshap", model=MeanModel(), x=x, n_samples=400)
    assert np.count_nonzero(np.abs(e.weights) > 1e-6) > 10  # shap's default would keep 10
    assert e.queries == access.queries <= 402
    e, access = explain("kernelshap", model=MeanModel(), x=x, budget=50)
    assert e.queries == access.queries <= 50


def test_kernelshap_efficiency_sums_to_output_difference():
    e, access = explain("kernelshap")
    model = segment_model(SEG, INDEX)
    x = segment_input(SEG, INDEX)
    with torch.no_grad():
        fx = model(x[None])[0, 1].item()
    assert e.weights.sum() + e.intercept == pytest.approx(fx, abs=1e-6)


def test_occlusion_is_drop_per_segment_with_d_plus_one_queries():
    e, access = explain("occlusion")
    assert e.queries == access.queries == SEG.d + 1
    model = segment_model(SEG, INDEX)
    x = segment_input(SEG, INDEX)
    b = torch.full_like(x, float(x.mean()))
    with torch.no_grad():
        p = model(x[None])[0, 1]
        p_off = model(SEG.compose(x, 1 - np.eye(SEG.d, dtype=np.float32)[[INDEX]], b))[0, 1]
    assert e.weights[INDEX] == pytest.approx(float(p - p_off), abs=1e-6)
    assert np.allclose(np.delete(e.weights, INDEX), 0.0, atol=1e-6)


@pytest.mark.parametrize("name, param, budget", [
    ("integrated-gradients", "n_steps", 10), ("smoothgrad", "nt_samples", 7),
    ("gradient-shap", "n_samples", 5),
])
def test_gradient_methods_size_to_budget(name, param, budget):
    e, access = explain(name, budget=budget)
    assert e.queries == access.queries == budget and e.extra[param] == budget
    assert e.dense.shape == DOMAIN  # no weights of their own: the harness aggregates the map
    np.testing.assert_allclose(e.weights, SEG.project(e.dense, "mean"))


def test_smoothgrad_is_seeded_and_leaves_global_rng():
    state = torch.get_rng_state()
    a, _ = explain("smoothgrad", seed=1)
    b, _ = explain("smoothgrad", seed=1)
    c, _ = explain("smoothgrad", seed=2)
    assert torch.equal(state, torch.get_rng_state())
    np.testing.assert_array_equal(a.dense, b.dense)
    assert not np.array_equal(a.dense, c.dense)


def test_deeplift_falls_back_when_a_module_is_reused():
    class Reused(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1, self.l2, self.l3 = nn.Linear(9200, 8), nn.Linear(8, 8), nn.Linear(8, 2)
            self.act, self.out = nn.Tanh(), nn.Softmax(dim=1)

        def forward(self, x):
            return self.out(self.l3(self.act(self.l2(self.act(self.l1(x.flatten(1)))))))

    e, access = explain("deeplift", model=Reused().eval())
    assert e.extra["fallback"] == "integrated-gradients"
    assert e.queries == access.queries
    with pytest.raises(RuntimeError, match="DeepLift rejected"):
        explain("deeplift", model=Reused().eval(), fallback=False)


def test_every_explainer_leaves_input_untouched_and_leaves_bookkeeping_to_the_harness():
    x = segment_input(SEG, INDEX)
    for name in explainers.names():
        before = x.clone()
        ex = explainers.get(name)()
        context = ExplainContext(delta=torch.ones(DOMAIN) if ex.oracle else None,
                                 audio=toy_audio(stems=ex.oracle) if ex.needs_audio else None)
        e = ex.explain(ModelAccess(segment_model(SEG, INDEX), batch_size=256), x, 1, segments=SEG,
                       budget=64, rng=np.random.default_rng(0), context=context)
        assert torch.equal(x, before), name
        assert e.queries == 0 and e.seconds == 0, name


# --------------------------------------------------------------------------- declarations


@pytest.mark.parametrize("name, params, signed", [
    ("saliency", {}, False), ("saliency", {"abs": False}, True), ("smoothgrad", {}, False),
    ("smoothgrad", {"abs": False}, True), ("oracle-norm", {}, False), ("lime", {}, True),
    ("kernelshap", {}, True), ("occlusion", {}, True), ("integrated-gradients", {}, True),
    ("input-x-gradient", {}, True), ("gradient-shap", {}, True), ("deeplift", {}, True),
    ("random", {}, True), ("audiolime", {}, True), ("slime-time", {}, True),
])
def test_signed_says_whether_weights_can_be_negative(name, params, signed):
    ex = explainers.get(name)(**params)
    assert ex.signed is signed
    if name in ("saliency", "smoothgrad") and not signed:
        e, _ = explain(name, **params)  # absolute gradients: never negative
        assert e.dense.min() >= 0 and e.weights.min() >= 0


def test_every_explainer_is_declared_signed_or_unsigned_truthfully_on_a_signed_model():
    """Explainers declared signed show negative weights somewhere on a model with positive and
    negative evidence (the input x gradient of a linear model pointing both ways)."""
    lin = nn.Linear(DOMAIN[0] * DOMAIN[1], 2)
    with torch.no_grad():
        w = torch.from_numpy(np.random.default_rng(0).standard_normal(DOMAIN[0] * DOMAIN[1]).astype(np.float32))
        lin.weight.copy_(torch.stack([-w, w]) / 100)
        lin.bias.zero_()
    model = nn.Sequential(nn.Flatten(), lin, nn.Softmax(dim=1)).eval()
    e, _ = explain("saliency", model=model, x=torch.ones(DOMAIN), abs=False)
    assert e.weights.min() < 0 < e.weights.max()
    e, _ = explain("saliency", model=model, x=torch.ones(DOMAIN))
    assert e.weights.min() >= 0


# --------------------------------------------------------------------------- other geometries


ONE_D = (1800,)


@pytest.mark.parametrize("name", ["lime", "kernelshap", "occlusion", "integrated-gradients", "saliency",
                                  "smoothgrad", "deeplift", "slime-time"])
def test_explainers_work_on_a_waveform_domain_with_time_segments(name):
    seg = from_spec("time:6", ONE_D)
    assert seg.shape == ONE_D and seg.d == 6
    e, access = explain(name, index=4, seg=seg, budget=128)
    assert e.weights.shape == (6,) and top_k(e.weights, 1)[0] == 4, e.weights


def test_slime_freq_refuses_a_domain_without_frequencies():
    with pytest.raises(ValueError, match="no frequency axis"):
        explain("slime-freq", index=4, seg=from_spec("time:6", ONE_D))


@pytest.mark.parametrize("target", [0, 1])
def test_slime_time_follows_a_time_major_domain(target):
    seg = grid((115, 80), 5, 4, time_axis=0)  # frames x bands
    assert seg.time_dim == 0
    e, _ = explain("slime-time", index=INDEX, seg=seg, target=target)
    comps = time_segments((115, 80), 10, time_axis=0)
    assert comps.masks[0, :11].all() and not comps.masks[0, 12:].any()  # time blocks along axis 0
    by_time_block = e.weights.reshape(5, 4).sum(axis=1)
    assert np.argmax(by_time_block) == INDEX // 4
