"""predict_rest: LIME's N-sample fit from fewer queries, with the unqueried answers predicted.

White-box models on 20 segments whose answers are known functions of the masks.
"""

import numpy as np
import pytest

from explbench.explainers._common import AutoSampling
from explbench.explainers._predicted import RestPredictor, interaction_features, lime_linear_map
from explbench.explainers.lime import cosine_to_ones, fit_surrogate, lime_kernel, sample_adaptively
from explbench.core.neighbourhood import MaskStream

D = 20
KERNEL = lime_kernel(0.25)


def pairwise_model(masks: np.ndarray) -> np.ndarray:
    """Class 1 rises with segment 5, with segments 5 and 9 together, and a little with 2: by
    construction LIME's top 3 are {5, 9, 2}, and the answers are exactly pairwise."""
    z = masks.astype(np.float64)
    p = 0.1 + 0.5 * z[:, 5] + 0.3 * z[:, 5] * z[:, 9] + 0.08 * z[:, 2]
    return np.stack([1.0 - p, p], axis=1)


def sigmoid_model(masks: np.ndarray) -> np.ndarray:
    """A saturating model of segments 3, 7, 12 (known top 3) plus a term no pairwise surrogate
    can fit, so the predicted answers carry error."""
    w = np.full(D, 0.01)
    w[[3, 7, 12]] = [0.30, 0.20, 0.12]
    z = masks.astype(np.float64)
    p = 1.0 / (1.0 + np.exp(-(z @ w * 4.0 - 1.0 + 0.05 * np.sin(3.0 * z.sum(1)))))
    return np.stack([1.0 - p, p], axis=1)


def masks(seed: int, n: int) -> np.ndarray:
    return MaskStream(np.random.default_rng(seed), D).take(n)


def test_the_linear_map_is_lime_s_fit():
    z = masks(0, 1024)
    y = sigmoid_model(z)
    lmap = lime_linear_map(z, KERNEL(cosine_to_ones(z)), alpha=1.0)
    np.testing.assert_allclose(lmap @ y[:, 1], fit_surrogate(z, y, 1).weights, rtol=1e-7, atol=1e-10)
    assert interaction_features(z).shape == (1024, 1 + D + D * (D - 1) // 2)


def test_with_every_answer_queried_it_is_the_fit_itself():
    z = masks(1, 1024)
    y = sigmoid_model(z)
    pred = RestPredictor(z, KERNEL(cosine_to_ones(z))).fit(y[:, 1])
    full = fit_surrogate(z, y, 1)
    np.testing.assert_allclose(pred.weights, full.weights, rtol=1e-7, atol=1e-10)
    assert pred.intercept == pytest.approx(full.intercept, abs=1e-9)
    assert pred.score == pytest.approx(full.score, abs=1e-9)
    assert np.abs(pred.cov).max() == 0.0  # nothing left to predict


def test_a_pairwise_model_is_predicted_from_the_first_round():
    auto = AutoSampling(max_samples=4096, first=256, growth=1.25, confidence=0.97)
    for seed in range(3):
        run = sample_adaptively(pairwise_model, MaskStream(np.random.default_rng(seed), D), 1, k=3, auto=auto,
                                cap=4096, predict_rest=True)
        z_all = masks(seed, 4096)
        full = fit_surrogate(z_all, pairwise_model(z_all), 1)
        assert run.stopped_because == "settled" and run.queried == 256 and run.predicted == 4096 - 256
        # the surrogate is ridge-penalised like LIME's fit (alpha 1), so close, not exact
        np.testing.assert_allclose(run.fit.weights, full.weights, atol=0.03)
        assert set(np.argsort(-run.fit.weights)[:3]) == {5, 9, 2}


def test_the_error_covariance_covers_the_n_sample_fit():
    """95 % intervals from the predicted covariance hold the fit on all N true answers, at the
    suites' N = 8192 (max_samples) and the sizes the rounds stop at (256 to 4096 queries)."""
    big_n = 8192
    data = []
    for seed in range(25):
        z = masks(100 + seed, big_n)
        y = sigmoid_model(z)
        data.append((RestPredictor(z, KERNEL(cosine_to_ones(z))), y[:, 1], fit_surrogate(z, y, 1).weights))
    for n in (256, 1024, 4096):
        hits = []
        for rest, y, full in data:
            pred = rest.fit(y[:n])
            hits.extend(np.abs(full - pred.weights) <= 1.96 * np.sqrt(np.diag(pred.cov)))
        assert 0.93 <= np.mean(hits), (n, np.mean(hits))  # conservative (over-covering) is allowed


def test_predicted_rounds_agree_with_the_cap_and_query_less():
    auto = AutoSampling(max_samples=4096, first=256, growth=1.25, confidence=0.95)
    queried = []
    for seed in range(6):
        run = sample_adaptively(sigmoid_model, MaskStream(np.random.default_rng(seed), D), 1, k=3, auto=auto,
                                cap=4096, predict_rest=True)
        z_all = masks(seed, 4096)
        full = fit_surrogate(z_all, sigmoid_model(z_all), 1).weights
        assert set(np.argsort(-run.fit.weights)[:3]) == set(np.argsort(-full)[:3]) == {3, 7, 12}
        assert run.predicted == (4096 - len(run.z) if run.stopped_because == "settled" else 0)
        queried.append(run.queried)
    assert max(queried) < 4096


def test_predict_rest_refuses_paired_masks():
    auto = AutoSampling(max_samples=1024)
    with pytest.raises(ValueError, match="predict_rest needs independent masks"):
        sample_adaptively(sigmoid_model, MaskStream(np.random.default_rng(0), D, True), 1, k=3, auto=auto,
                          cap=1024, predict_rest=True)
    from explbench.api import registry

    with pytest.raises(ValueError, match="paired=False"):
        registry.explainers.get("lime")(n_samples="auto", paired=True, predict_rest=True)


# --------------------------------------------------------------------------- through explain()

def test_lime_with_predict_rest_finds_the_known_causes_with_fewer_queries():
    from test_adaptive import CLEAR, SEG, TIE, auto, top

    e, access = auto("lime", CLEAR, predict_rest=True)
    assert top(e) == set(CLEAR) and e.extra["stopped_because"] == "settled"
    assert access.queries == e.extra["n_samples"] <= 512
    assert e.extra["predicted_answers"] == 8192 - e.extra["n_samples"]
    assert 0.0 < e.score <= 1.0
    # a near tie of the 3rd and 4th cause: the top-3 set is that of the fit on all 4096 masks
    from test_adaptive import AdditiveModel, additive_input
    from toy import run_explainer

    from explbench.api.explainer import ExplainContext
    from explbench.api.registry import explainers

    for seed in range(4):
        e, access = auto("lime", TIE, seed=seed, max_samples=4096, predict_rest=True)
        full, _ = run_explainer(explainers.get("lime")(n_samples=4096), AdditiveModel(TIE), additive_input(TIE),
                                SEG, seed=seed, context=ExplainContext(headline_k=3))
        assert top(e) == top(full) and top(e, 2) == {3, 9}
        assert e.extra["rounds"] >= 2  # a tie is not settled at the first look


def test_slime_with_predict_rest_settles_its_projected_weights():
    """SLIME's grid weights are a projection of its 10 time components: the predicted fit stops
    early and ranks the grid as the fit on all 2048 masks does."""
    from test_adaptive import CLEAR, SEG, additive_input, AdditiveModel, auto
    from toy import run_explainer

    from explbench.api.explainer import ExplainContext
    from explbench.api.registry import explainers

    e, access = auto("slime-time", CLEAR, predict_rest=True, max_samples=2048)
    full, _ = run_explainer(explainers.get("slime-time")(n_samples=2048), AdditiveModel(CLEAR),
                            additive_input(CLEAR), SEG, context=ExplainContext(headline_k=3))
    assert e.extra["stopped_because"] == "settled" and access.queries < 2048
    # every time segment's four grid cells share one weight: compare the order of the time
    # segments (which of the tied cells argsort puts first is float noise, not a ranking)
    by_time = lambda w: np.argsort(-np.asarray(w).reshape(5, 4).mean(1), kind="stable").tolist()
    assert by_time(e.weights) == by_time(full.weights)


@pytest.mark.parametrize("name", ["lime", "slime-freq"])
def test_predict_rest_conforms(name):
    from explbench.api import registry
    from explbench.checks.explainer_checks import assert_conforms

    assert_conforms(registry.explainers.get(name)(n_samples="auto", max_samples=256, first_samples=64,
                                                  predict_rest=True))
