"""Conformance check for explainers: does a plug-in keep the contract the harness relies on?

Runs an explainer a few times on small deterministic toy problems and reports one
:class:`CheckResult` per rule, each failure worded as what is wrong and how to fix it::

    from explbench.checks.explainer_checks import check_explainer, format_report
    print(format_report(check_explainer("lime")))

or, in pytest, ``assert_conforms(MyExplainer())``.

The problems.

- The *basic* problem: a random two-class MLP (:func:`toy_classifier`) on an 80 x 115 domain
  with the protocol's 5 x 4 grid, target 1. Shape, storage, budget, determinism, random state,
  model access and input rules run on it.
- The *probes* (:data:`PROBES`): a white-box classifier whose only cause is one known segment
  (:func:`known_cause_model`), on two geometries -- 80 x 115 bands x frames with a 5 x 4 grid,
  and a time-major 50 x 37 domain with an uneven 3 x 2 grid -- and for both targets (the cause is
  evidence for class 0 in some probes, for class 1 in others). Every probe's explanation must be
  valid, and the sign convention "larger weight = more evidence for the target" must hold: an
  explainer fails when the known cause gets the lowest weight in every probe of a target (what a
  sign-flipped explainer does; a noisy one passes). Explainers that never query the model
  (``random``, ``oracle-norm``) carry no evidence; for them the sign rule does not apply.

Every run uses a small budget (:data:`SMALL_BUDGET`, :data:`PROBE_BUDGET`) except the first,
which checks that ``budget=None`` works, so the check stays cheap.

Explainers that declare ``needs_audio = True`` receive ``context.audio``, a synthetic
:class:`~explbench.api.explainer.AudioContext` (:func:`toy_audio`: two seeded stems, 36934 samples at
22.05 kHz, a log band spectrogram as ``to_domain``), and explain its domain image. As in the
harness, only oracles see its stems, and only oracles see ``context.delta``.
"""

from __future__ import annotations

import math
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from explbench.api.explainer import ExplainContext, Explainer, Explanation, call_explain, signature_problem
from explbench.api.model_access import BudgetExceeded, ModelAccess
from explbench.checks.kernel import CheckResult, assert_passing, format_report  # noqa: F401 - format_report is this module's API
from explbench.checks.fixtures import GEOMETRIES, PROBES, Probe, _Problem, _basic_problem, _probe_problem

#: the small budget the budget and determinism checks impose
SMALL_BUDGET = 64
#: the budget of each probe (known-cause) explanation
PROBE_BUDGET = 128
#: sample rate and length (samples) of the toy audio: one svd excerpt of 115 frames

#: the rules, in the order :func:`check_explainer` reports them
RULES: tuple[str, ...] = (
    "explain signature", "returns an Explanation", "weights of shape (d,), finite", "storable as JSON",
    "queries and seconds left to the harness", f"respects a budget of {SMALL_BUDGET}",
    "deterministic under a seed", "leaves global random state alone",
    "model-agnostic: no differentiable()", "does not modify its input",
    "other geometries and both targets", "larger weight = more evidence for the target",
    "signed declared truthfully", "dense_map declared truthfully",
)




# --------------------------------------------------------------------------- toy problems


class _SpyAccess(ModelAccess):
    """ModelAccess that records whether ``differentiable()`` was asked for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.differentiable_calls = 0

    def differentiable(self) -> nn.Module:
        self.differentiable_calls += 1
        return super().differentiable()


# --------------------------------------------------------------------------- running


def _resolve(explainer: Explainer | type | str) -> Explainer:
    if isinstance(explainer, str):
        from explbench.api.registry import explainers

        explainer = explainers.get(explainer)
    if isinstance(explainer, type):
        if not issubclass(explainer, Explainer):
            raise TypeError(f"{explainer.__name__} is not a subclass of explbench.Explainer")
        explainer = explainer()
    if not isinstance(explainer, Explainer):
        raise TypeError(
            f"expected an Explainer instance, class or registered name, got {type(explainer).__name__}"
        )
    return explainer


@dataclass
class _Run:
    problem: _Problem
    explanation: Any = None
    access: _SpyAccess | None = None
    error: BaseException | None = None
    trace: str = ""
    x_unchanged: bool = True
    weights: np.ndarray | None = None
    invalid: str = ""  # why the explanation cannot be scored ("" when it can)
    state_kept: bool = True

    @property
    def ok(self) -> bool:
        return self.error is None and isinstance(self.explanation, Explanation)


#: seconds one explain() call may take during the check before it counts as hanging
CHECK_SECONDS = 60.0


def _run(explainer: Explainer, name: str, problem: _Problem, seed: int, budget: int | None) -> _Run:
    from explbench.protocol.validate import ExplainerFailure, validate_explanation
    from explbench.protocol.unit import UnitTimeout, time_limit

    oracle = bool(getattr(explainer, "oracle", False))
    context = ExplainContext(audio=problem.audio, delta=problem.delta.clone() if oracle else None)
    x_before = problem.x.clone()
    audio_before = None if problem.audio is None else problem.audio.audio.copy()
    access = _SpyAccess(problem.model, budget=budget, batch_size=256)
    run = _Run(problem=problem, access=access)
    state = _global_state()
    try:
        with time_limit(CHECK_SECONDS, what=f"{name}'s explain() on a small conformance problem"):
            run.explanation, _ = call_explain(explainer, access, problem.x, problem.target,
                                              segments=problem.segments, budget=budget,
                                              rng=np.random.default_rng(seed), context=context)
    except (Exception, UnitTimeout) as exc:  # reported, never propagated
        run.error = exc
        run.trace = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    run.state_kept = _same_global_state(state, _global_state())
    run.x_unchanged = torch.equal(problem.x, x_before)
    if oracle and context.delta is not None:
        run.x_unchanged = run.x_unchanged and torch.equal(context.delta, problem.delta)
    if problem.audio is not None:
        run.x_unchanged = run.x_unchanged and np.array_equal(problem.audio.audio, audio_before)
    if run.ok:
        try:
            run.weights = validate_explanation(run.explanation, problem.segments, name)
        except ExplainerFailure as exc:
            run.invalid = str(exc)
    elif run.error is None:
        run.invalid = (f"{name}.explain returned {type(run.explanation).__name__}, not an "
                       f"explbench.Explanation")
    return run


def _global_state() -> tuple[Any, torch.Tensor]:
    return np.random.get_state(), torch.get_rng_state()


def _same_global_state(a: tuple[Any, torch.Tensor], b: tuple[Any, torch.Tensor]) -> bool:
    (na, ta), (nb, tb) = a, b
    same_np = na[0] == nb[0] and np.array_equal(na[1], nb[1]) and tuple(na[2:]) == tuple(nb[2:])
    return bool(same_np and torch.equal(ta, tb))


# --------------------------------------------------------------------------- storage


def storage_problems(e: Explanation) -> list[str]:
    """What in an Explanation would not be stored as given in a JSON record, in plain words.

    ``score`` and ``intercept`` must be None or finite numbers; ``extra`` plain JSON values
    (numbers, strings, booleans, None, lists and string-keyed dicts of them; numpy scalars pass);
    ``audio``, when given, a finite 1-D waveform.
    """
    problems = []
    for what in ("score", "intercept"):
        v = getattr(e, what)
        if v is None:
            continue
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            problems.append(f"{what} is a {type(v).__name__}; give a float, or None when there is none")
        elif not math.isfinite(float(v)):
            problems.append(f"{what} is {float(v)}; give None when there is no {what} (records hold no NaN)")
    if not isinstance(e.extra, dict):
        problems.append(f"extra is a {type(e.extra).__name__}; give a dict")
    else:
        _walk(e.extra, "extra", problems)
    if e.audio is not None:
        a = np.asarray(e.audio)
        if a.ndim != 1 or not np.issubdtype(a.dtype, np.number) or not np.all(np.isfinite(a)):
            problems.append(f"audio has shape {a.shape} and dtype {a.dtype}; give a finite waveform "
                            f"of shape (n_samples,)")
    return problems


def _walk(value: Any, where: str, problems: list[str]) -> None:
    if value is None or isinstance(value, (bool, str, int, np.bool_, np.integer)):
        return
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            problems.append(f"{where} is {float(value)}; records hold no NaN or infinity (it would "
                            f"be stored as null): give None or leave it out")
        return
    if isinstance(value, np.ndarray):
        problems.append(f"{where} is a numpy array of shape {value.shape}; keep extra to plain JSON "
                        f"values: store value.tolist() (or a small summary)")
        return
    if torch.is_tensor(value):
        problems.append(f"{where} is a torch tensor of shape {tuple(value.shape)}; store "
                        f"value.tolist() (or a small summary)")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _walk(v, f"{where}[{i}]", problems)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                problems.append(f"{where} has the key {k!r} of type {type(k).__name__}; JSON keys are strings")
            _walk(v, f"{where}[{k!r}]", problems)
        return
    problems.append(f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which a JSON "
                    f"record cannot hold; store numbers, strings, lists or dicts")


# --------------------------------------------------------------------------- the check


def check_explainer(explainer: Explainer | type | str, *, seed: int = 0) -> list[CheckResult]:
    """Run the conformance rules against ``explainer``.

    Parameters
    ----------
    explainer : Explainer instance, Explainer subclass (built with defaults) or registered name
    seed : int
        Seed of the toy inputs and of the ``rng`` passed to ``explain``.

    Returns
    -------
    list of CheckResult, one per rule (:data:`RULES`), in a fixed order; only the signature
    rule when ``explain`` cannot be called with the contract's arguments
    """
    ex = _resolve(explainer)
    name = explainer if isinstance(explainer, str) else type(ex).__name__
    results: list[CheckResult] = []

    def add(rule: str, ok: bool, good: str, bad: str) -> None:
        results.append(CheckResult(rule, bool(ok), good if ok else bad))

    # 1. the signature
    sig = signature_problem(ex)
    add("explain signature", sig is None,
        "explain(model, x, target, *, segments, budget, rng, context)", sig or "")
    if sig is not None:  # nothing else can be checked
        return results

    basic = _basic_problem(ex, seed)
    first = _run(ex, name, basic, seed, None)
    small = _run(ex, name, basic, seed, SMALL_BUDGET)
    again = _run(ex, name, basic, seed, SMALL_BUDGET)
    probes = [(p, _run(ex, name, _probe_problem(ex, p, seed), seed + 1 + i, PROBE_BUDGET))
              for i, p in enumerate(PROBES)]
    runs = [first, small, again, *(r for _, r in probes)]

    # 2. returns an Explanation
    if first.error is not None:
        add("returns an Explanation", False, "",
            f"{name}.explain raised {first.trace}. It must return an explbench.Explanation for "
            f"the toy input (80 x 115, 5 x 4 grid, target 1, no budget); fix the error above.")
    else:
        add("returns an Explanation", isinstance(first.explanation, Explanation),
            "explain returned an Explanation",
            f"explain returned {type(first.explanation).__name__}; return "
            f"explbench.Explanation(weights=...).")
    e = first.explanation if first.ok else None
    not_checked = "not checked: explain did not return an Explanation."

    # 3. weights (the protocol's own validation)
    if e is None:
        add("weights of shape (d,), finite", False, "", not_checked)
    else:
        add("weights of shape (d,), finite", not first.invalid,
            f"weights (or the dense map) give one finite weight per segment (d = {basic.segments.d})",
            first.invalid)

    # 4. storable
    if e is None:
        add("storable as JSON", False, "", not_checked)
    else:
        problems = storage_problems(e)
        add("storable as JSON", not problems,
            "score, intercept and extra are plain JSON values",
            "; ".join(problems) + ".")

    # 5. bookkeeping
    if e is None:
        add("queries and seconds left to the harness", False, "", not_checked)
    else:
        counted, q, s = first.access.queries, e.queries, e.seconds
        q_ok = isinstance(q, (int, np.integer)) and q in (0, counted)
        s_ok = isinstance(s, (int, float)) and math.isfinite(s) and s >= 0
        add("queries and seconds left to the harness", q_ok and s_ok,
            f"the harness counted {counted} queries" + ("" if q == 0 else ", as reported"),
            ("" if q_ok else f"the Explanation reports queries={q!r} but ModelAccess counted "
             f"{counted}; leave queries at 0: the harness counts them itself. ")
            + ("" if s_ok else f"It reports seconds={s!r}; leave seconds at 0: the harness times explain."))

    # 6. budget
    if isinstance(small.error, BudgetExceeded):
        add(f"respects a budget of {SMALL_BUDGET}", False, "",
            f"with budget={SMALL_BUDGET} it asked for more queries and got BudgetExceeded "
            f"({small.error}); size its samples to the `budget` argument, e.g. "
            f"n = min(n_samples, budget) minus any fixed queries.")
    elif small.error is not None:
        add(f"respects a budget of {SMALL_BUDGET}", False, "",
            f"with budget={SMALL_BUDGET} explain raised {small.trace}; it must still work with a "
            f"small budget by using fewer samples.")
    else:
        used = small.access.queries
        add(f"respects a budget of {SMALL_BUDGET}", used <= SMALL_BUDGET,
            f"used {used} of {SMALL_BUDGET} queries",
            f"with budget={SMALL_BUDGET} it used {used} queries; stay within the budget.")

    # 7. determinism
    if not (small.ok and again.ok):
        add("deterministic under a seed", False, "",
            "not checked: explain did not return an Explanation on both runs"
            + (f" (it raised {again.trace or small.trace})" if again.error or small.error else "") + ".")
    else:
        w1, w2 = small.weights, again.weights
        same = (w1 is not None and w2 is not None
                and np.allclose(w1, w2, rtol=1e-6, atol=1e-10, equal_nan=True))
        diff = float(np.nanmax(np.abs(w1 - w2))) if w1 is not None and w2 is not None else float("nan")
        add("deterministic under a seed", same,
            "two runs with the same seed gave the same weights",
            f"two runs with the same seed differ (largest weight difference {diff:.3g}); draw every "
            f"random number from the `rng` argument (numpy.random.Generator), never from "
            f"np.random, random or torch's global generator."
            if not math.isnan(diff) else "not checked: the weights could not be read on both runs.")

    # 8. global random state
    add("leaves global random state alone", all(r.state_kept for r in runs),
        "numpy's and torch's global generators are untouched",
        "explain changed numpy's or torch's global random state; use the `rng` argument, or wrap "
        "libraries that draw from the global generators so that their state is restored afterwards "
        "(e.g. torch.random.fork_rng and np.random.get_state/set_state).")

    # 9. model-agnostic explainers never ask for gradients
    calls = sum(r.access.differentiable_calls for r in runs)
    if ex.model_agnostic:
        add("model-agnostic: no differentiable()", calls == 0,
            "declared model_agnostic and only called predict",
            f"declared model_agnostic = True but called model.differentiable() {calls} time(s); use "
            f"only model.predict, or set model_agnostic = False on the class.")
    else:
        add("model-agnostic: no differentiable()", True,
            "declared white-box (model_agnostic = False); gradients allowed", "")

    # 10. input untouched
    add("does not modify its input", all(r.x_unchanged for r in runs),
        "x (and context.delta, context.audio) are unchanged after explaining",
        "explain modified its input x (or context.delta / the audio) in place; work on a copy, e.g. "
        "x = x.clone(), and avoid in-place ops (x += ..., x[...] = ..., .mul_()) on the arguments.")

    # 11. geometries and targets
    bad = [f"{p.label}: " + (f"raised {r.trace}" if r.error is not None else r.invalid)
           for p, r in probes if r.error is not None or r.invalid]
    add("other geometries and both targets", not bad,
        f"valid on {len(GEOMETRIES)} domains (time-major included) and both targets",
        "on the probes it did not return a valid explanation: " + " | ".join(bad)
        + ". Nothing may assume 80 x 115, 20 segments, bands x frames or target 1: use "
          "segments.d, segments.shape, x.shape and target.")

    # 12. sign convention
    add(*_sign_rule(name, probes))

    # 13. signed
    lows = [float(np.min(r.weights)) for r in runs if r.weights is not None]
    negative = min(lows) if lows else 0.0
    declared = bool(getattr(ex, "signed", True))
    add("signed declared truthfully", declared or negative >= 0,
        "declares signed = True" if declared else "declares signed = False and no weight is negative",
        f"declares signed = False (weights never negative) but returned a weight of {negative:.3g}; "
        f"remove signed = False, or return magnitudes only.")

    # 14. dense_map
    dense_seen = [r.explanation.dense is not None for r in runs if r.ok]
    flag = bool(getattr(ex, "dense_map", False))
    if not dense_seen:
        add("dense_map declared truthfully", False, "", not_checked)
    elif flag:
        add("dense_map declared truthfully", all(dense_seen),
            "declares dense_map = True and returns a dense map",
            f"declares dense_map = True but returned no dense map in {dense_seen.count(False)} of "
            f"{len(dense_seen)} runs; set Explanation.dense every time, or dense_map = False.")
    else:
        add("dense_map declared truthfully", not any(dense_seen),
            "returns no dense map (dense_map = False)",
            "returns a dense map but does not declare it; set dense_map = True on the class, so a "
            "failed explanation also counts as failed under every extra aggregation of a suite.")
    return results


def _is_last(w: np.ndarray, i: int) -> bool:
    """Whether segment ``i`` has strictly the lowest weight."""
    return bool(w[i] < np.delete(w, i).min())


def _sign_rule(name: str, probes: list[tuple[Probe, _Run]]) -> tuple[str, bool, str, str]:
    rule = "larger weight = more evidence for the target"
    if all(r.access.queries == 0 for _, r in probes if r.access is not None):
        return rule, True, "not applicable: it never queries the model, so its weights carry no evidence", ""
    by_target: dict[int, list[bool]] = {}
    for p, r in probes:
        if r.weights is None:
            return rule, False, "", "not checked: the probes did not all return valid weights."
        by_target.setdefault(p.target, []).append(_is_last(r.weights, p.cause))
    flipped = sorted(t for t, last in by_target.items() if all(last))
    n = {t: len(v) for t, v in by_target.items()}
    good = (f"on {len(probes)} known-cause probes the cause never got the lowest weight in every "
            f"probe of a target")
    if not flipped:
        return rule, True, good, ""
    if len(flipped) == len(by_target):
        bad = (f"on every known-cause probe (a model that looks only at one segment, for target 0 and "
               f"1) the cause got the lowest weight: {name}'s weights point the wrong way. Larger must "
               f"mean more evidence for `target` (e.g. a drop in p(target) when the segment is "
               f"removed is a positive weight); negate the weights.")
    else:
        t = flipped[0]
        bad = (f"for target {t} the known cause got the lowest weight in all {n[t]} probes, for the "
               f"other target it did not: {name} seems to explain a fixed class rather than "
               f"`target`; use the target argument (e.g. model.predict(...)[:, target]).")
    return rule, False, "", bad


def assert_conforms(explainer: Explainer | type | str, *, seed: int = 0) -> None:
    """Raise AssertionError listing every failed check (for pytest)."""
    label = explainer if isinstance(explainer, str) else getattr(explainer, "__name__", type(explainer).__name__)
    assert_passing(check_explainer(explainer, seed=seed), f"explainer {label}")
