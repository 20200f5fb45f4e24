"""The conformance check: shipped explainers pass, broken plug-ins fail with useful messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import explbench.explainers  # noqa: F401 - registers the explainers
from explbench.api.explainer import Explainer, Explanation
from explbench.checks.explainer_checks import RULES, SMALL_BUDGET, assert_conforms, check_explainer, format_report
from explbench.checks.fixtures import toy_classifier, toy_problem
from explbench.api.registry import UnknownName, explainers


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


def test_conformance_stays_cheap():
    """Every run but the first (budget None) is capped, so an expensive explainer stays cheap."""
    from explbench.checks.explainer_checks import PROBE_BUDGET
    from explbench.checks.fixtures import PROBES

    counted = []

    class Counting(Good):
        def explain(self, model, x, target, *, segments, budget, rng, context):
            e = super().explain(model, x, target, segments=segments, budget=budget, rng=rng, context=context)
            counted.append(budget)
            return e

    assert failed(Counting()) == {}
    assert counted.count(None) == 1 and max(b for b in counted if b is not None) <= PROBE_BUDGET
    assert len(counted) == 3 + len(PROBES)


# --------------------------------------------------------------------------- broken plug-ins


class Good(Explainer):
    model_agnostic = True

    def explain(self, model, x, target, *, segments, budget, rng, context):
        n = min(8, budget or 8)
        p = model.predict(x[None].repeat(n, *([1] * x.ndim)))
        return Explanation(weights=rng.standard_normal(segments.d) + float(p[0, target]))


class WrongShape(Good):
    def explain(self, *a, **k):
        e = super().explain(*a, **k)
        e.weights = e.weights[:5]
        return e


class Grid4x5(Good):
    def explain(self, *a, **k):
        e = super().explain(*a, **k)
        e.weights = e.weights.reshape(4, 5)
        return e


class NaNWeights(Good):
    def explain(self, *a, **k):
        e = super().explain(*a, **k)
        e.weights[3] = np.nan
        return e


class Greedy(Good):
    def explain(self, model, x, target, *, segments, budget, rng, context):
        model.predict(x[None].repeat(200, 1, 1))
        return Explanation(weights=np.zeros(segments.d))


class GlobalRandom(Good):
    def explain(self, model, x, target, *, segments, budget, rng, context):
        return Explanation(weights=np.random.standard_normal(segments.d))


class Misreports(Good):
    def explain(self, *a, **k):
        e = super().explain(*a, **k)
        e.queries = 3
        return e


class SecretlyWhiteBox(Good):
    def explain(self, model, *a, **k):
        model.differentiable()
        return super().explain(model, *a, **k)


class InPlace(Good):
    def explain(self, model, x, *a, **k):
        x.mul_(2.0)
        return super().explain(model, x, *a, **k)


class Crashes(Good):
    def explain(self, *a, **k):
        raise ZeroDivisionError("oops")


class DenseOnly(Good):
    dense_map = True

    def explain(self, model, x, target, *, segments, budget, rng, context):
        super().explain(model, x, target, segments=segments, budget=budget, rng=rng, context=context)
        return Explanation(weights=None, dense=np.ones(segments.shape))


class UndeclaredDense(DenseOnly):
    dense_map = False


class OldSignature(Explainer):
    def explain(self, model, x, target, segments, budget, rng, delta=None):
        return Explanation(weights=np.zeros(segments.d))


class NaNIntercept(Good):
    def explain(self, *a, **k):
        e = super().explain(*a, **k)
        e.intercept = float("nan")
        e.extra = {"coefs": np.zeros(20), "ok": [1, 2.5, "x"], "n": np.int64(3)}
        return e


class Hardcoded(Good):
    """Assumes the protocol's 20 segments of an 80 x 115 domain."""

    def explain(self, model, x, target, *, segments, budget, rng, context):
        return Explanation(weights=np.linspace(1.0, 0.0, 20))


class FalselyUnsigned(Good):
    signed = False


class SignFlippedLime(Explainer):
    """LIME with its weights negated: larger means *less* evidence for the target."""

    def explain(self, model, x, target, **kw):
        e = explainers.get("lime")().explain(model, x, target, **kw)
        e.weights = -e.weights
        return e


class AlwaysClassOne(Explainer):
    """LIME that explains class 1 whatever the target."""

    def explain(self, model, x, target, **kw):
        return explainers.get("lime")().explain(model, x, 1, **kw)


def failed(explainer):
    return {r.name: r.message for r in check_explainer(explainer) if not r.passed}


def test_good_plugin_passes_as_instance_and_class():
    assert failed(Good()) == {}
    assert failed(Good) == {}
    assert failed(DenseOnly()) == {}


@pytest.mark.parametrize("cls, rule, words", [
    (WrongShape, "weights of shape (d,), finite", "shape (5,); expected (20,)"),
    (Grid4x5, "weights of shape (d,), finite", "Grid4x5 returned weights of shape (4, 5); expected (20,)"),
    (NaNWeights, "weights of shape (d,), finite", "1 NaN"),
    (Greedy, f"respects a budget of {SMALL_BUDGET}", "size its samples to the `budget`"),
    (GlobalRandom, "deterministic under a seed", "rng"),
    (GlobalRandom, "leaves global random state alone", "global"),
    (Misreports, "queries and seconds left to the harness", "queries=3 but ModelAccess counted 8"),
    (SecretlyWhiteBox, "model-agnostic: no differentiable()", "model_agnostic = False"),
    (InPlace, "does not modify its input", "x.clone()"),
    (Crashes, "returns an Explanation", "ZeroDivisionError: oops"),
    (OldSignature, "explain signature", "does not take context"),
    (OldSignature, "explain signature", "context.delta"),
    (NaNIntercept, "storable as JSON", "intercept is nan; give None"),
    (NaNIntercept, "storable as JSON", "extra['coefs'] is a numpy array of shape (20,)"),
    (Hardcoded, "other geometries and both targets", "grid 3x2"),
    (Hardcoded, "other geometries and both targets", "expected (6,)"),
    (FalselyUnsigned, "signed declared truthfully", "declares signed = False"),
    (UndeclaredDense, "dense_map declared truthfully", "set dense_map = True"),
    (SignFlippedLime, "larger weight = more evidence for the target", "negate the weights"),
    (AlwaysClassOne, "larger weight = more evidence for the target", "use the target argument"),
])
def test_broken_plugin_fails_with_a_helpful_message(cls, rule, words):
    msgs = failed(cls())
    assert rule in msgs, msgs
    assert words in msgs[rule], msgs[rule]


def test_only_what_is_broken_fails():
    assert set(failed(NaNIntercept())) == {"storable as JSON"}
    assert set(failed(SignFlippedLime())) == {"larger weight = more evidence for the target"}
    assert set(failed(Hardcoded())) == {"other geometries and both targets"}  # it makes no queries
    assert list(failed(OldSignature())) == ["explain signature"]  # nothing else can be checked
    assert [r.name for r in check_explainer(Good())] == list(RULES)


def test_report_and_assert():
    report = format_report(check_explainer(NaNWeights()))
    lines = report.splitlines()
    assert any(line.startswith("✓ ") for line in lines)
    assert any(line.startswith("✗ weights") for line in lines)
    assert format_report(check_explainer(Misreports())).splitlines()[-1] == "1 of 14 checks failed"
    with pytest.raises(AssertionError, match="NaN"):
        assert_conforms(NaNWeights())
    assert format_report(check_explainer("random")).endswith("all checks passed")


def test_unknown_name_is_reported():
    with pytest.raises(UnknownName, match="Did you mean 'lime'"):
        check_explainer("lmie")


def test_oracle_receives_delta_and_ranked_explainers_do_not():
    seen = {}

    class Oracle(Good):
        oracle = True
        signed = False

        def explain(self, model, x, target, *, segments, budget, rng, context):
            seen.setdefault("oracle", context.delta)
            return Explanation(weights=segments.energy(context.delta))

    class Ranked(Good):
        def explain(self, model, x, target, *, segments, budget, rng, context):
            seen.setdefault("ranked", context)
            return super().explain(model, x, target, segments=segments, budget=budget, rng=rng,
                                   context=context)

    assert failed(Oracle()) == {}
    assert failed(Ranked()) == {}
    assert seen["oracle"].shape == (80, 115) and float(seen["oracle"].abs().sum()) > 0
    assert seen["ranked"].delta is None and seen["ranked"].audio is None


def test_a_hanging_explainer_fails_the_check_instead_of_blocking_it(monkeypatch):
    import time

    from explbench.checks import explainer_checks as conformance

    class Hangs(Explainer):
        def explain(self, model, x, target, *, segments, budget, rng, context):
            time.sleep(30)
            return Explanation(weights=np.zeros(segments.d))

    monkeypatch.setattr(conformance, "CHECK_SECONDS", 0.2)
    t0 = time.perf_counter()
    results = conformance.check_explainer(Hangs())
    assert time.perf_counter() - t0 < 20
    assert not all(r.passed for r in results)
    assert any("time limit" in r.message for r in results)
