"""The conformance check: shipped explainers pass, broken plug-ins fail with useful messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import explbench.explainers  # noqa: F401 - registers the explainers
from explbench.api import Explainer, Explanation
from explbench.conformance import (
    SMALL_BUDGET,
    assert_conforms,
    check_explainer,
    format_report,
    toy_classifier,
    toy_problem,
)
from explbench.registry import UnknownName, explainers


@pytest.mark.parametrize("name", explainers.names())
def test_shipped_explainer_conforms(name):
    assert_conforms(name)


def test_toy_problem_is_deterministic_and_fast():
    x1, d1, seg = toy_problem(0)
    x2, d2, _ = toy_problem(0)
    assert torch.equal(x1, x2) and torch.equal(d1, d2) and seg.d == 20 and x1.shape == (80, 115)
    p1 = toy_classifier()(x1[None])
    p2 = toy_classifier()(x1[None])
    assert torch.equal(p1, p2) and p1.shape == (1, 2)
    assert 0.01 < float(p1[0, 1]) < 0.99


# --------------------------------------------------------------------------- broken plug-ins


class Good(Explainer):
    model_agnostic = True

    def explain(self, model, x, target, segments, budget, rng):
        with self.timed() as t:
            n = min(8, budget or 8)
            p = model.predict(x[None].repeat(n, 1, 1))
            w = rng.standard_normal(segments.d) + float(p[0, target])
        return Explanation(weights=w, queries=n, seconds=t.seconds)


class WrongShape(Good):
    def explain(self, *a):
        e = super().explain(*a)
        e.weights = e.weights[:5]
        return e


class NaNWeights(Good):
    def explain(self, *a):
        e = super().explain(*a)
        e.weights[3] = np.nan
        return e


class Greedy(Good):
    def explain(self, model, x, target, segments, budget, rng):
        model.predict(x[None].repeat(200, 1, 1))
        return Explanation(weights=np.zeros(segments.d), queries=200, seconds=0.1)


class GlobalRandom(Good):
    def explain(self, model, x, target, segments, budget, rng):
        return Explanation(weights=np.random.standard_normal(segments.d), queries=0, seconds=0.1)


class Misreports(Good):
    def explain(self, *a):
        e = super().explain(*a)
        e.queries = 0
        return e


class SecretlyWhiteBox(Good):
    def explain(self, model, x, target, segments, budget, rng):
        model.differentiable()
        return super().explain(model, x, target, segments, budget, rng)


class InPlace(Good):
    def explain(self, model, x, target, segments, budget, rng):
        x.mul_(2.0)
        return super().explain(model, x, target, segments, budget, rng)


class Crashes(Good):
    def explain(self, *a):
        raise ZeroDivisionError("oops")


class DenseOnly(Good):
    def explain(self, model, x, target, segments, budget, rng):
        e = super().explain(model, x, target, segments, budget, rng)
        return Explanation(weights=None, dense=np.ones(segments.shape), queries=e.queries, seconds=0.1)


def failed(explainer):
    return {r.name: r.message for r in check_explainer(explainer) if not r.passed}


def test_good_plugin_passes_as_instance_and_class():
    assert failed(Good()) == {}
    assert failed(Good) == {}
    assert failed(DenseOnly()) == {}


@pytest.mark.parametrize("cls, rule, words", [
    (WrongShape, "weights of shape (d,), finite", "shape (5,)"),
    (NaNWeights, "weights of shape (d,), finite", "NaN"),
    (Greedy, f"respects a budget of {SMALL_BUDGET}", "size its samples to the `budget`"),
    (GlobalRandom, "deterministic under a seed", "rng"),
    (GlobalRandom, "leaves global random state alone", "global"),
    (Misreports, "queries reported", "ModelAccess counted 8"),
    (SecretlyWhiteBox, "model-agnostic: no differentiable()", "model_agnostic = False"),
    (InPlace, "does not modify its input", "x.clone()"),
    (Crashes, "returns an Explanation", "ZeroDivisionError: oops"),
])
def test_broken_plugin_fails_with_a_helpful_message(cls, rule, words):
    msgs = failed(cls())
    assert rule in msgs, msgs
    assert words in msgs[rule]


def test_report_and_assert():
    report = format_report(check_explainer(NaNWeights()))
    lines = report.splitlines()
    assert any(line.startswith("✓ ") for line in lines)
    assert any(line.startswith("✗ weights") for line in lines)
    assert lines[-1] == "1 of 9 checks failed"
    with pytest.raises(AssertionError, match="NaN"):
        assert_conforms(NaNWeights())
    assert format_report(check_explainer("random")).endswith("all checks passed")


def test_unknown_name_is_reported():
    with pytest.raises(UnknownName, match="Did you mean 'lime'"):
        check_explainer("lmie")


def test_oracle_receives_delta():
    seen = {}

    class Oracle(Good):
        oracle = True

        def explain(self, model, x, target, segments, budget, rng, *, delta):
            seen["delta"] = delta
            return Explanation(weights=segments.energy(delta), queries=0, seconds=0.1)

    assert failed(Oracle()) == {}
    assert seen["delta"].shape == (80, 115) and float(seen["delta"].abs().sum()) > 0
