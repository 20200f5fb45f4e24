"""Conformance check for explainers: does a plug-in keep the contract the harness relies on?

Runs an explainer a few times against a small deterministic toy classifier on an 80 x 115
domain with the protocol's 5 x 4 grid and reports one :class:`CheckResult` per rule, each
failure worded as what is wrong and how to fix it::

    from explbench.conformance import check_explainer, format_report
    print(format_report(check_explainer("lime")))

or, in pytest, ``assert_conforms(MyExplainer())``.

Explainers that declare ``needs_audio = True`` also receive ``audio=`` a synthetic
:class:`~explbench.api.AudioContext` (:func:`toy_audio`: two seeded stems, 36934 samples at
22.05 kHz, the singing-voice log-mel front-end as ``to_domain``), and explain its domain image.
"""

from __future__ import annotations

import math
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from explbench.api import AudioContext, BudgetExceeded, Explainer, Explanation, ModelAccess
from explbench.segmentation import Segmentation, grid

#: shape of the toy explanation domain (bands, frames), as for singing-voice detection
DOMAIN: tuple[int, int] = (80, 115)
#: the small budget the budget check imposes
SMALL_BUDGET = 64
#: sample rate and length (samples) of the toy audio: one svd excerpt of 115 frames
AUDIO_RATE, AUDIO_SAMPLES = 22050, 36934


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one conformance rule.

    Attributes
    ----------
    name : str
        Short name of the rule.
    passed : bool
    message : str
        Plain words: what was found and, on failure, how to fix it.
    """

    name: str
    passed: bool
    message: str


# --------------------------------------------------------------------------- toy problem


def toy_classifier() -> nn.Module:
    """A deterministic two-class classifier (N, 80, 115) -> (N, 2) probabilities.

    Flatten, Linear(9200, 16), Tanh, Linear(16, 2), Softmax, weights from a fixed seed; only
    ``torch.nn`` modules, so every captum method (DeepLift included) applies.
    """
    g = torch.Generator().manual_seed(1234)
    n_in = DOMAIN[0] * DOMAIN[1]
    with torch.random.fork_rng(devices=[]):  # nn.Linear's default init draws from torch's global RNG
        l1, l2 = nn.Linear(n_in, 16), nn.Linear(16, 2)
    with torch.no_grad():
        l1.weight.copy_(torch.randn(16, n_in, generator=g) * (2.0 / math.sqrt(n_in)))
        l1.bias.zero_()
        l2.weight.copy_(torch.randn(2, 16, generator=g))
        l2.bias.zero_()
    return nn.Sequential(nn.Flatten(), l1, nn.Tanh(), l2, nn.Softmax(dim=1)).eval().requires_grad_(False)


def toy_problem(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, Segmentation]:
    """The toy input ``x`` (80, 115), a perturbation ``delta`` (80, 115) and the 5 x 4 grid."""
    rng = np.random.default_rng(10_000 + seed)
    x = torch.from_numpy(rng.standard_normal(DOMAIN).astype(np.float32))
    seg = grid(DOMAIN, 5, 4)
    delta = torch.from_numpy(0.1 * rng.standard_normal(DOMAIN).astype(np.float32)) * seg.masks[6]
    return x, delta, seg


class _ToyFrontEnd(nn.Module):
    """Waveform ``(B, 36934)`` to a log band spectrogram ``(B, 80, 115)``: |STFT| (frame 1024, hop
    315, no padding) averaged over 80 equal groups of bins, then log(max(x, 1e-7)).

    Self-contained, so the conformance check depends on no particular task.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(1024), persistent=False)
        groups = np.array_split(np.arange(1, 513), DOMAIN[0])
        pool = torch.zeros(DOMAIN[0], 513)
        for band, bins in enumerate(groups):
            pool[band, bins] = 1.0 / len(bins)
        self.register_buffer("pool", pool, persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave, n_fft=1024, hop_length=315, window=self.window, center=False,
                          return_complex=True).abs()
        return torch.log(torch.clamp(self.pool @ spec, min=1e-7))


def toy_audio(seed: int = 0) -> AudioContext:
    """A synthetic waveform for explainers that need audio, with its two stems.

    ``"tone"``: a harmonic tone changing pitch every 0.42 s; ``"noise"``: decaying noise bursts;
    both seeded, adding up to ``audio`` (36934 samples at 22.05 kHz).
    ``to_domain`` is :class:`_ToyFrontEnd`, waveforms ``(B, 36934)`` to ``(B, 80, 115)``, on
    which :func:`toy_classifier` works.
    """
    rng = np.random.default_rng(20_000 + seed)
    t = np.arange(AUDIO_SAMPLES) / AUDIO_RATE
    f0 = rng.uniform(150.0, 600.0, size=5)[np.minimum((t / 0.42).astype(int), 4)]
    phase = 2 * np.pi * np.cumsum(f0) / AUDIO_RATE
    tone = 0.2 * (np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.25 * np.sin(3 * phase))
    onsets = np.sort(rng.uniform(0.0, t[-1], size=6))
    env = sum(np.where(t >= o, np.exp(-(t - o) / 0.05), 0.0) for o in onsets)
    noise = 0.15 * env * rng.standard_normal(AUDIO_SAMPLES)
    stems = {"tone": tone.astype(np.float32), "noise": noise.astype(np.float32)}
    frontend = _ToyFrontEnd().eval()
    return AudioContext(audio=stems["tone"] + stems["noise"], stems=stems, sample_rate=AUDIO_RATE,
                        to_domain=frontend)


class _SpyAccess(ModelAccess):
    """ModelAccess that records whether ``differentiable()`` was asked for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.differentiable_calls = 0

    def differentiable(self) -> nn.Module:
        self.differentiable_calls += 1
        return super().differentiable()


# --------------------------------------------------------------------------- the check


def _resolve(explainer: Explainer | type | str) -> Explainer:
    if isinstance(explainer, str):
        from explbench.registry import explainers

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
    explanation: Any = None
    access: _SpyAccess | None = None
    error: BaseException | None = None
    trace: str = ""
    x_unchanged: bool = True


def _run(explainer: Explainer, seed: int, budget: int | None) -> _Run:
    x, delta, seg = toy_problem(seed)
    kwargs: dict[str, Any] = {}
    if getattr(explainer, "needs_audio", False):
        audio = toy_audio(seed)
        with torch.no_grad():
            x = audio.to_domain(torch.from_numpy(audio.audio)[None])[0].clone()
        kwargs["audio"] = audio
    x_before, delta_before = x.clone(), delta.clone()
    access = _SpyAccess(toy_classifier(), budget=budget, batch_size=256)
    if getattr(explainer, "oracle", False):
        kwargs["delta"] = delta
    run = _Run(access=access)
    try:
        run.explanation = explainer.explain(
            access, x, 1, seg, budget, np.random.default_rng(seed), **kwargs
        )
    except Exception as exc:  # reported, never propagated
        run.error = exc
        run.trace = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    run.x_unchanged = torch.equal(x, x_before) and torch.equal(delta, delta_before)
    if "audio" in kwargs:
        run.x_unchanged = run.x_unchanged and np.array_equal(kwargs["audio"].audio, toy_audio(seed).audio)
    return run


def _weights(e: Explanation, seg: Segmentation) -> np.ndarray | None:
    """The explanation's weights, or its dense map projected onto ``seg``."""
    if e.weights is not None:
        return np.asarray(e.weights)
    if e.dense is not None:
        dense = np.asarray(e.dense)
        if dense.shape != seg.shape:
            return None
        return seg.project(dense)
    return None


def _global_state() -> tuple[Any, torch.Tensor]:
    return np.random.get_state(), torch.get_rng_state()


def _same_global_state(a: tuple[Any, torch.Tensor], b: tuple[Any, torch.Tensor]) -> bool:
    (na, ta), (nb, tb) = a, b
    same_np = na[0] == nb[0] and np.array_equal(na[1], nb[1]) and tuple(na[2:]) == tuple(nb[2:])
    return bool(same_np and torch.equal(ta, tb))


def check_explainer(explainer: Explainer | type | str, *, seed: int = 0) -> list[CheckResult]:
    """Run the conformance rules against ``explainer``.

    Parameters
    ----------
    explainer : Explainer instance, Explainer subclass (built with defaults) or registered name
    seed : int
        Seed of the toy input and of the ``rng`` passed to ``explain``.

    Returns
    -------
    list of CheckResult, one per rule, in a fixed order
    """
    ex = _resolve(explainer)
    name = type(ex).__name__
    _, _, seg = toy_problem(seed)
    results: list[CheckResult] = []

    def add(rule: str, ok: bool, good: str, bad: str) -> None:
        results.append(CheckResult(rule, bool(ok), good if ok else bad))

    state_before = _global_state()
    first = _run(ex, seed, None)
    state_after = _global_state()

    # 1. returns an Explanation
    if first.error is not None:
        add("returns an Explanation", False, "",
            f"{name}.explain raised {first.trace}. It must return an explbench.Explanation for "
            f"the toy input (80 x 115, 5 x 4 grid, target 1, no budget); fix the error above.")
    else:
        add("returns an Explanation", isinstance(first.explanation, Explanation),
            "explain returned an Explanation",
            f"explain returned {type(first.explanation).__name__}; return "
            f"explbench.Explanation(weights=..., queries=..., seconds=...).")
    ok_first = bool(results[-1].passed)
    e = first.explanation if ok_first else None

    # 2. weights shape and finiteness
    if e is None:
        add("weights of shape (d,), finite", False, "", "not checked: explain did not return an Explanation.")
    else:
        w = _weights(e, seg)
        if w is None:
            add("weights of shape (d,), finite", False, "",
                f"the Explanation has neither weights nor a dense map of the domain shape {seg.shape} "
                f"(dense has shape {None if e.dense is None else np.shape(e.dense)}); set weights to "
                f"one float per segment (shape ({seg.d},)) or dense to an array of shape {seg.shape}.")
        elif w.shape != (seg.d,):
            add("weights of shape (d,), finite", False, "",
                f"weights have shape {w.shape} but the segmentation has d = {seg.d} segments; return "
                f"one weight per segment, in segment order, shape ({seg.d},).")
        elif not np.issubdtype(w.dtype, np.number) or not np.all(np.isfinite(w.astype(np.float64))):
            bad = int(np.sum(~np.isfinite(w.astype(np.float64)))) if np.issubdtype(w.dtype, np.number) else w.size
            add("weights of shape (d,), finite", False, "",
                f"{bad} of {seg.d} weights are NaN, infinite or not numbers; check divisions by zero "
                f"(e.g. normalising by a zero norm) and the surrogate fit.")
        else:
            add("weights of shape (d,), finite", True, f"weights have shape ({seg.d},) and are finite", "")

    # 3. queries reported == queries counted
    if e is None:
        add("queries reported", False, "", "not checked: explain did not return an Explanation.")
    else:
        counted = first.access.queries
        add("queries reported", e.queries == counted,
            f"reported {e.queries} queries, as counted",
            f"the Explanation reports queries={e.queries} but ModelAccess counted {counted}; set "
            f"queries to model.queries after explaining minus model.queries before.")

    # 4. seconds reported
    if e is None:
        add("seconds reported", False, "", "not checked: explain did not return an Explanation.")
    else:
        # reporting seconds is optional (the harness times every explanation itself), but a
        # reported value must be a real duration
        s = e.seconds
        ok = isinstance(s, (int, float)) and math.isfinite(s) and s >= 0
        add("seconds reported", ok,
            f"reported {s:.4g} s" if ok and s > 0 else "not reported; the harness measures it",
            f"the Explanation reports seconds={s!r}; leave it at 0 (the harness times explain) or "
            f"pass a measured duration, e.g. `with self.timed() as t: ...` and seconds=t.seconds.")

    # 5. budget
    small = _run(ex, seed, SMALL_BUDGET)
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
        rep = getattr(small.explanation, "queries", None)
        ok = used <= SMALL_BUDGET and rep == used
        add(f"respects a budget of {SMALL_BUDGET}", ok,
            f"used {used} of {SMALL_BUDGET} queries",
            f"with budget={SMALL_BUDGET} it used {used} queries and reported {rep}; stay within the "
            f"budget and report what ModelAccess counted.")

    # 6. determinism
    second = _run(ex, seed, None)
    if e is None or second.error is not None or not isinstance(second.explanation, Explanation):
        add("deterministic under a seed", False, "",
            "not checked: explain did not return an Explanation on both runs"
            + (f" (second run raised {second.trace})" if second.error is not None else "") + ".")
    else:
        w1, w2 = _weights(e, seg), _weights(second.explanation, seg)
        same = (w1 is not None and w2 is not None and w1.shape == w2.shape
                and np.allclose(w1.astype(np.float64), w2.astype(np.float64), rtol=1e-6, atol=1e-10,
                                equal_nan=True))
        diff = (float(np.nanmax(np.abs(w1.astype(float) - w2.astype(float))))
                if w1 is not None and w2 is not None and w1.shape == w2.shape else float("nan"))
        add("deterministic under a seed", same,
            "two runs with the same seed gave the same weights",
            f"two runs with the same seed differ (largest weight difference {diff:.3g}); draw every "
            f"random number from the `rng` argument (numpy.random.Generator), never from "
            f"np.random, random or torch's global generator.")

    # 7. global random state
    add("leaves global random state alone", _same_global_state(state_before, state_after),
        "numpy's and torch's global generators are untouched",
        "explain changed numpy's or torch's global random state; use the `rng` argument, or wrap "
        "libraries that draw from the global generators so that their state is restored afterwards "
        "(e.g. torch.random.fork_rng and np.random.get_state/set_state).")

    # 8. model-agnostic explainers never ask for gradients
    calls = sum(r.access.differentiable_calls for r in (first, small, second))
    if ex.model_agnostic:
        add("model-agnostic: no differentiable()", calls == 0,
            "declared model_agnostic and only called predict",
            f"declared model_agnostic = True but called model.differentiable() {calls} time(s); use "
            f"only model.predict, or set model_agnostic = False on the class.")
    else:
        add("model-agnostic: no differentiable()", True,
            "declared white-box (model_agnostic = False); gradients allowed", "")

    # 9. input untouched
    untouched = all(r.x_unchanged for r in (first, small, second))
    add("does not modify its input", untouched,
        "x (and delta) are unchanged after explaining",
        "explain modified its input x (or delta) in place; work on a copy, e.g. x = x.clone(), and "
        "avoid in-place ops (x += ..., x[...] = ..., .mul_()) on the arguments.")
    return results


def format_report(results: list[CheckResult]) -> str:
    """One line per check: ``✓ name: message`` or ``✗ name: message``."""
    lines = [f"{'✓' if r.passed else '✗'} {r.name}: {r.message}" for r in results]
    n_bad = sum(not r.passed for r in results)
    lines.append("all checks passed" if n_bad == 0 else f"{n_bad} of {len(results)} checks failed")
    return "\n".join(lines)


def assert_conforms(explainer: Explainer | type | str, *, seed: int = 0) -> None:
    """Raise AssertionError listing every failed check (for pytest)."""
    results = check_explainer(explainer, seed=seed)
    failed = [r for r in results if not r.passed]
    if failed:
        label = explainer if isinstance(explainer, str) else getattr(explainer, "__name__", type(explainer).__name__)
        raise AssertionError(
            f"explainer {label} fails {len(failed)} conformance check(s):\n"
            + "\n".join(f"✗ {r.name}: {r.message}" for r in failed)
        )
