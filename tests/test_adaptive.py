"""Adaptive sampling (``n_samples = "auto"``): stop when the top-k set is settled, not before.

White-box models whose causes are known by construction: :class:`AdditiveModel` decides by a
weighted sum of segment means, so the segments with the largest coefficients are the top-k
set, and two nearly equal coefficients make a near tie. The statistics (the sandwich
covariances, the swap bound) are checked against the spread over repeated samples.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy.stats import norm
from torch import nn

import explbench.explainers  # noqa: F401 - registers the explainers
from explbench.api.explainer import ExplainContext
from explbench.api.model_access import ModelAccess
from explbench.checks.explainer_checks import assert_conforms
from explbench.explainers._common import AutoSampling, ridge_covariance, settle, swap_bound
from explbench.explainers.kernelshap import CoalitionCache, KernelShap, shap_covariance
from explbench.explainers.lime import fit_surrogate, projection_matrix, sample_adaptively
from explbench.core.neighbourhood import MaskStream, kernel_weights, sample_masks
from explbench.run.params import problem, specs
from explbench.api.registry import explainers
from explbench.core.segmentation import grid, time_segments
from toy import DOMAIN, run_explainer

with warnings.catch_warnings():
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    import shap

SEG = grid(DOMAIN)
SAMPLING = ("lime", "slime-time", "slime-freq", "kernelshap", "audiolime", "audiolime-oracle")
CLEAR = {3: 3.0, 9: 2.5, 14: 2.0}  # three causes far above the rest (0)
TIE = {3: 3.0, 9: 2.5, 14: 1.0, 15: 0.97}  # third and fourth place nearly tied


class AdditiveModel(nn.Module):
    """``p(1) = sigmoid(sum_j c_j * (mean of x over segment j) + b)``; (N, 80, 115) -> (N, 2)."""

    def __init__(self, coef: dict[int, float], bias: float = -3.0) -> None:
        super().__init__()
        c = torch.zeros(SEG.d)
        for j, v in coef.items():
            c[j] = v
        m = SEG.masks.reshape(SEG.d, -1).float()
        self.register_buffer("w", c @ (m / m.sum(dim=1, keepdim=True)))
        self.bias = bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.reshape(len(x), -1) @ self.w + self.bias
        return torch.stack([torch.sigmoid(-s), torch.sigmoid(s)], dim=1)


def additive_input(coef: dict[int, float], seed: int = 0) -> torch.Tensor:
    """Noise (std 0.1) with every segment that has a coefficient raised to 1."""
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(0.1 * rng.standard_normal(DOMAIN).astype(np.float32))
    for j in coef:
        x = x + SEG.masks[j]
    return x


def auto(name: str, coef: dict[int, float], seed: int = 0, budget: int | None = None, k: int = 3, **params):
    ex = explainers.get(name)(n_samples="auto", **params)
    return run_explainer(ex, AdditiveModel(coef), additive_input(coef), SEG, budget=budget, seed=seed,
                         context=ExplainContext(headline_k=k))


def top(e, k: int = 3) -> set[int]:
    return set(np.argsort(-e.weights, kind="stable")[:k].tolist())


# --------------------------------------------------------------------------- stopping


@pytest.mark.parametrize("name", ["lime", "kernelshap"])
def test_a_clear_cause_stops_early_with_the_right_top_k(name):
    e, access = auto(name, CLEAR)
    assert top(e) == set(CLEAR)
    assert e.extra["stopped_because"] == "settled" and e.extra["rounds"] == 1
    assert access.queries <= 8192 / 16  # the first round of 256 (+2 for kernelshap) settles it
    assert e.extra["p_change"] <= 0.05


@pytest.mark.parametrize("name", ["lime", "kernelshap"])
def test_a_near_tie_runs_longer_and_a_single_cause_settles_at_k_1(name):
    # the level holds per look, so a near tie can stop on a lucky look: compare over seeds
    clear = [auto(name, CLEAR, seed=s)[1].queries for s in range(6)]
    ties = [auto(name, TIE, seed=s, max_samples=4096) for s in range(6)]
    assert np.mean([a.queries for _, a in ties]) >= 2.5 * np.mean(clear)
    assert sum(e.extra["rounds"] >= 2 for e, _ in ties) >= 5
    assert all(top(e, 2) == {3, 9} for e, _ in ties)  # the clear part is found
    # the same near tie is no obstacle when only the top two count
    e2, a2 = auto(name, TIE, k=2)
    assert e2.extra["stopped_because"] == "settled" and a2.queries <= 600 and top(e2, 2) == {3, 9}


def test_auto_equals_fixed_sampling_on_the_same_samples():
    e, access = auto("lime", TIE, max_samples=2048)
    n = e.extra["n_samples"]
    assert n > 256 and access.queries <= n  # repeated masks are not queried again
    fixed, fa = run_explainer(explainers.get("lime")(n_samples=n), AdditiveModel(TIE), additive_input(TIE),
                              SEG, seed=0)
    assert fa.queries == n
    # the same estimator on the same masks; only float32 round-off of batched forwards differs
    np.testing.assert_allclose(e.weights, fixed.weights, rtol=0, atol=1e-7)
    assert e.intercept == pytest.approx(fixed.intercept, abs=1e-7) and e.score == pytest.approx(fixed.score)

    ks, _ = auto("kernelshap", TIE, max_samples=2048)
    nk = ks.extra["nsamples"]
    ksf, _ = run_explainer(KernelShap(n_samples=nk), AdditiveModel(TIE), additive_input(TIE), SEG, seed=0)
    np.testing.assert_allclose(ks.weights, ksf.weights, rtol=0, atol=1e-7)


@pytest.mark.parametrize("penalty", [1.0, 50.0])
def test_every_look_fits_the_estimator_of_fixed_sampling(penalty):
    """The fit behind each stopping decision is the one returned: same kernel, same ridge penalty."""
    run = sample_adaptively(lambda z: _synthetic_y(z), MaskStream(np.random.default_rng(1), 8), 1, k=2,
                            auto=AutoSampling(max_samples=2048, first=64), cap=2048, alpha=penalty)
    again = fit_surrogate(run.z, run.labels, 1, 0.25, penalty)
    np.testing.assert_array_equal(run.fit.weights, again.weights)
    assert run.fit.intercept == again.intercept
    np.testing.assert_array_equal(run.labels, _synthetic_y(run.z))


@pytest.mark.parametrize("name", ["lime", "kernelshap", "slime-time"])
def test_same_seed_same_result_and_another_seed_other_samples(name):
    a, qa = auto(name, TIE, seed=5, max_samples=1024)
    b, qb = auto(name, TIE, seed=5, max_samples=1024)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert a.extra == b.extra and qa.queries == qb.queries
    c, _ = auto(name, TIE, seed=6, max_samples=1024)
    assert not np.array_equal(a.weights, c.weights)


@pytest.mark.parametrize("name", ["lime", "kernelshap", "slime-freq"])
@pytest.mark.parametrize("budget", [100, 700])
def test_the_budget_is_respected(name, budget):
    e, access = auto(name, TIE, budget=budget)
    assert access.queries <= budget
    assert e.extra["stopped_because"] in ("budget", "settled")
    if budget == 100 and name != "kernelshap":  # below the first round: one round of 100
        assert e.extra["rounds"] == 1 and e.extra["n_samples"] == 100
        assert e.extra["stopped_because"] == "budget"


def test_a_repeated_mask_costs_no_query():
    # slime-time has 10 components: 8192 masks hold at most 1024 distinct ones
    e, access = auto("slime-time", TIE, max_samples=4096, first_samples=4096)
    assert e.extra["n_samples"] == 4096 and access.queries == e.extra["distinct_masks"] <= 1024


def test_a_model_the_masks_cannot_move_stops_as_exact():
    const = nn.Sequential(nn.Flatten(), nn.Linear(80 * 115, 2), nn.Softmax(dim=1)).requires_grad_(False)
    with torch.no_grad():
        const[1].weight.zero_()
    e, access = run_explainer(explainers.get("lime")(n_samples="auto"), const, additive_input(CLEAR), SEG,
                              context=ExplainContext(headline_k=3))
    assert e.extra["stopped_because"] == "exact" and access.queries == 256


def test_audiolime_settles_its_top_components():
    from test_audiolime import HIGH, context, domain, high_band_model, threshold_between

    ctx = context()
    model = high_band_model(threshold_between(ctx))
    for k, stop in ((5, "settled"), (1, None)):
        access = ModelAccess(model, batch_size=256)
        ex = explainers.get("audiolime-oracle")(n_samples="auto", max_samples=2048)
        e = ex.explain(access, domain(ctx), 1, segments=SEG, budget=None, rng=np.random.default_rng(0),
                       context=ExplainContext(audio=ctx, headline_k=k))
        w = np.asarray(e.extra["component_weights"])
        if stop:  # the five components of stem "b" against those of "a"
            assert e.extra["stopped_because"] == stop and access.queries <= 256
            assert w[5:].min() > w[:5].max() and e.dense[HIGH].sum() > 0.9 * w[5:].sum()
        else:  # which of b's five equal parts comes first is a tie: it runs until the samples
            # still to come are too few to change the answer (the last looks)
            assert e.extra["rounds"] > 1 and e.extra["n_samples"] >= 0.9 * 2048
        assert access.queries == e.extra["distinct_masks"] <= 1024  # 10 components


@pytest.mark.parametrize("name", SAMPLING)
def test_auto_conforms(name):
    assert_conforms(explainers.get(name)(n_samples="auto", max_samples=256, first_samples=64))


# --------------------------------------------------------------------------- the statistics


def test_schedule_and_required_separation():
    a = AutoSampling(max_samples=8192, first=256, growth=2.0)
    assert a.schedule(10**6) == [256, 512, 1024, 2048, 4096, 8192]
    assert a.schedule(700) == [256, 512, 700] and a.schedule(100) == [100]
    assert AutoSampling(first=256, growth=1.5).schedule(1000) == [256, 384, 576, 864, 1000]
    # the level holds per look, whatever the number of looks
    assert a.level() == pytest.approx(0.03) and AutoSampling(confidence=0.8).level() == pytest.approx(0.2)
    assert AutoSampling().schedule(1000) == [256, 320, 400, 500, 625, 782, 978, 1000]


def test_settle_bounds_the_chance_of_a_change_by_the_sum_over_pairs():
    w = np.array([5.0, 4.0, 3.0, 1.0, 0.9])
    cov = np.eye(5)  # every difference has sd 1.41
    s = settle(w, cov, 3, 0.05)  # against the population's order: Phi(-r) per pair
    pairs = [(i, j) for i in range(3) for j in range(3, 5)]
    expected = sum(norm.sf((w[i] - w[j]) / np.sqrt(2.0)) for i, j in pairs)
    assert s.p_change == pytest.approx(expected, rel=1e-12) and s.p_change > 0.05 and not s.settled
    assert s.margin == pytest.approx(2 / np.sqrt(2.0)) and s.top == (0, 1, 2)
    # aiming at the fit on N nested samples of which half are drawn: a smaller chance of change
    half = settle(w, cov, 3, 0.05, fraction=0.5)
    assert half.p_change < s.p_change / 10 and half.settled
    assert settle(w, cov, 3, 0.05, fraction=1.0).p_change == 0.0  # nothing left to draw
    # a strong common component (correlation 0.99) leaves the differences small
    cor = np.full((5, 5), 0.99)
    np.fill_diagonal(cor, 1.0)
    assert settle(w, cor, 3, 0.05).settled
    assert settle(w, cov, 5, 0.05).settled


def test_swap_bound_covers_the_least_favourable_true_difference():
    r = np.array([0.5, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(swap_bound(r, 0.0), norm.sf(r), rtol=1e-12)
    assert np.all(np.diff(swap_bound(r, 0.3)) < 0)  # farther apart, less likely to swap
    b = [float(swap_bound(np.array([2.0]), f)[0]) for f in (0.05, 0.2, 0.5, 0.8)]
    assert all(x > y for x, y in zip(b, b[1:]))  # more of the answer drawn, less left to change it
    assert swap_bound(np.array([0.0, -1.0, np.inf]), 0.5).tolist() == [1.0, 1.0, 0.0]
    # Monte Carlo over true differences: the sup the bound claims, within 10 % and not below it
    rng = np.random.default_rng(0)
    n, N, m = 819, 8192, 400_000
    f = n / N
    worst = 0.0
    for mu in np.linspace(-3.0, 2.0, 21):  # true difference in standard errors at n
        a = mu + rng.standard_normal(m)
        b_rest = mu + rng.standard_normal(m) * np.sqrt(n / (N - n))
        worst = max(worst, float(np.mean((a >= 2.0) & (f * a + (1 - f) * b_rest < 0))))
    bound = float(swap_bound(np.array([2.0]), f)[0])
    assert worst <= bound * 1.05 and bound <= worst * 1.15


def test_settle_exempts_weights_tied_by_construction():
    comps = time_segments(DOMAIN, 4)
    P = projection_matrix(comps, SEG)  # 5 bands x 4 frames: each time component fills one column
    assert P.shape == (20, 4)
    b = np.array([3.0, 0.0, 0.0, 0.0])  # one column of five equal grid cells leads
    s = settle(b, np.eye(4) * 1e-4, 3, 0.01, projection=P)
    assert s.settled and len(set(np.flatnonzero(P[:, 0] > 0)) & set(s.top)) == 3


def _synthetic_y(z: np.ndarray) -> np.ndarray:
    """A non-additive function of the masks: logistic with one interaction."""
    s = 2.0 * z[:, 0] + 1.0 * z[:, 1] + 0.5 * z[:, 2] - 1.5 * z[:, 0] * z[:, 3] - 1.0
    p = 1.0 / (1.0 + np.exp(-s))
    return np.stack([1 - p, p], axis=1)


@pytest.mark.parametrize("paired", [False, True])
def test_ridge_sandwich_matches_the_spread_over_repeated_samples(paired):
    d, n, reps = 8, 400, 300
    weights, covs = [], []
    for seed in range(reps):
        stream = MaskStream(np.random.default_rng(seed), d, paired)
        z = stream.take(n)
        y = _synthetic_y(z)
        fit = fit_surrogate(z, y, 1)
        weights.append(fit.weights)
        covs.append(ridge_covariance(z, y[:, 1], kernel_weights(z), fit.weights, fit.intercept, 1.0,
                                     stream.pairs(n)))
    emp = np.cov(np.array(weights).T)
    est = np.mean(covs, axis=0)
    for i, j in ((0, 1), (1, 2), (2, 4), (0, 3)):
        e_var = emp[i, i] + emp[j, j] - 2 * emp[i, j]
        s_var = est[i, i] + est[j, j] - 2 * est[i, j]
        assert 0.75 < s_var / e_var < 1.35, (i, j, s_var / e_var)


def test_shap_sandwich_matches_the_spread_over_repeated_runs():
    d, reps = 10, 120
    f = lambda z: _synthetic_y(np.asarray(z))[:, 1]  # noqa: E731
    phis, covs = [], []
    for seed in range(reps):
        np.random.seed(seed)
        ex = shap.KernelExplainer(f, np.zeros((1, d)))
        phi = np.asarray(ex.shap_values(np.ones((1, d)), nsamples=200, l1_reg=False, silent=True)).reshape(-1)
        phis.append(phi)
        covs.append(shap_covariance(ex, phi))
    emp = np.cov(np.array(phis).T)
    est = np.mean(covs, axis=0)
    for i, j in ((0, 1), (1, 2), (0, 3), (2, 5)):
        e_var = emp[i, i] + emp[j, j] - 2 * emp[i, j]
        s_var = est[i, i] + est[j, j] - 2 * est[i, j]
        assert 0.7 < s_var / e_var < 1.6, (i, j, s_var / e_var)


def test_coalition_cache_queries_each_coalition_once_and_guards_the_budget():
    calls = []

    def f(z):
        calls.append(len(z))
        return z.sum(axis=1)

    cache = CoalitionCache(f, budget=5)
    z = np.array([[1, 0, 1], [1, 0, 1], [0, 0, 0], [1, 1, 1]], dtype=float)
    np.testing.assert_array_equal(cache(z), [2, 2, 0, 3])
    np.testing.assert_array_equal(cache(z[::-1]), [3, 0, 2, 2])
    assert calls == [3] and len(cache) == 3
    with pytest.raises(Exception, match="budget"):
        cache(np.eye(3))  # three new coalitions past a budget of 5
    assert calls == [3]


def test_mask_stream_in_rounds_equals_one_draw():
    for paired in (False, True):
        whole = sample_masks(np.random.default_rng(3), 101, 7, paired)
        stream = MaskStream(np.random.default_rng(3), 7, paired)
        parts = np.concatenate([stream.take(m) for m in (1, 2, 33, 0, 65)])
        np.testing.assert_array_equal(parts, whole)
    z = sample_masks(np.random.default_rng(0), 64, 7, paired=True)
    assert np.all(z[0] == 1) and np.all(z[1] == 0) and np.all(z[2::2] + z[3::2] == 1)
    plain = np.random.default_rng(3).binomial(1, 0.5, size=(101, 7)).astype(np.float32)
    plain[0] = 1
    np.testing.assert_array_equal(sample_masks(np.random.default_rng(3), 101, 7), plain)


# --------------------------------------------------------------------------- settings


def test_sampling_settings_are_checked_with_the_fix_named():
    for name in SAMPLING:
        cls = explainers.get(name)
        spec = specs(cls)
        if spec is not None:  # what the suite validation reads from the constructor
            assert problem(spec["n_samples"], "auto") is None and problem(spec["n_samples"], 512) is None
            assert problem(spec["n_samples"], "many") is not None
            assert problem(spec["max_samples"], 0) is not None
        with pytest.raises(ValueError, match="n_samples must be a positive integer or \"auto\""):
            cls(n_samples="many")
        with pytest.raises(ValueError, match="first_samples"):
            cls(n_samples="auto", first_samples=4)
        with pytest.raises(ValueError, match="growth"):
            cls(n_samples="auto", growth=1.0)
    with pytest.raises(ValueError, match="l1_reg = False"):
        KernelShap(n_samples="auto", l1_reg="num_features(10)")
