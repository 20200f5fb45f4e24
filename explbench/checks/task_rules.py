"""The task contract's rules, one function each: each takes the task and a probe of it and returns a CheckResult that says what was found and, on failure, what to change."""

from __future__ import annotations

import traceback
from functools import cached_property
from typing import Any, Callable, Iterable
import numpy as np
import torch
from explbench.api.task import AXIS_ORDERS, HOOKS, Excerpt, Task, axis_order, has_hook
from explbench.checks.kernel import CheckResult
from explbench.run.requirements import _lookup, inapplicable, missing_hooks, requirements


#: absolute tolerance on probabilities between a batch of one and larger batches
BATCH_TOLERANCE = 1e-5


#: absolute tolerance on probabilities between two forwards of the same batch
REPEAT_TOLERANCE = 1e-6


#: tolerance of magnitude_to_domain(magnitude(audio)) against to_domain(audio)
ROUND_TRIP_TOLERANCE = 1e-4


SPLITS = ("train", "valid", "test")


#: largest |sample| an excerpt may have (resampling may overshoot 1 a little)
PEAK_LIMIT = 1.1


class _Probe:
    """What the checks share: the task, its classifier and ``n`` test excerpts (built lazily)."""

    def __init__(self, task: Task, n: int, seed: int, split: str) -> None:
        self.task, self.n, self.seed, self.split = task, n, seed, split

    @cached_property
    def excerpts(self) -> list[Excerpt]:
        return list(self.task.excerpts(self.split, self.n, self.seed))

    @cached_property
    def audio(self) -> torch.Tensor:
        return torch.from_numpy(np.stack([np.asarray(e.audio, dtype=np.float32) for e in self.excerpts]))

    @cached_property
    def labels(self) -> np.ndarray:
        return np.array([int(e.label) for e in self.excerpts])

    @cached_property
    def clf(self) -> torch.nn.Module:
        return self.task.classifier()

    @cached_property
    def x(self) -> torch.Tensor:
        with torch.no_grad():
            return self.task.to_domain(self.audio).detach().float().cpu()

    @cached_property
    def probs(self) -> torch.Tensor:
        return self.forward(self.x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dev = getattr(self.task, "device", "cpu")
        clf = self.clf  # built outside inference mode: lazily loaded weights must stay normal tensors
        with torch.inference_mode():
            return clf(x.to(dev)).float().cpu()


def _failed(name: str, exc: BaseException, doing: str) -> CheckResult:
    what = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return CheckResult(name, False, f"{doing} raised {what}")


def _guard(name: str, doing: str):
    """Decorator: a check that raises is reported as failed, with what it was doing."""

    def wrap(fn: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
        def run(*args: Any, **kwargs: Any) -> CheckResult:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # reported, never propagated
                return _failed(name, exc, doing)

        run.__name__, run.__doc__ = fn.__name__, fn.__doc__
        return run

    return wrap


@_guard("declarations", "reading the class attributes")
def check_declarations(task: Task, probe: _Probe | None = None) -> CheckResult:
    """name, classes (two or more distinct strings), sample_rate, excerpt_samples, domain_shape."""
    bad = []
    if not getattr(task, "name", ""):
        bad.append("name is empty: set name = 'my-task' (the name you register it under)")
    classes = tuple(getattr(task, "classes", ()))
    if len(classes) < 2 or len(set(classes)) != len(classes) or not all(isinstance(c, str) for c in classes):
        bad.append(f"classes = {classes!r}: give two or more distinct class names, in the order of the "
                   f"classifier's outputs, e.g. classes = ('no-voice', 'voice')")
    sr = getattr(task, "sample_rate", 0)
    if not isinstance(sr, int) or sr <= 0:
        bad.append(f"sample_rate = {sr!r}: give the excerpts' sample rate in Hz, e.g. 16000")
    ns = getattr(task, "excerpt_samples", 0)
    if not isinstance(ns, int) or ns <= 0:
        bad.append(f"excerpt_samples = {ns!r}: give the samples in one excerpt, e.g. 16000 for 1 s at 16 kHz")
    shape = tuple(getattr(task, "domain_shape", ()))
    if not shape or not all(isinstance(s, int) and s > 0 for s in shape):
        bad.append(f"domain_shape = {shape!r}: give the shape of one domain input, e.g. (64, 101)")
    if bad:
        return CheckResult("declarations", False, "; ".join(bad))
    return CheckResult("declarations", True, f"{task.name!r}: {len(classes)} classes {classes}, "
                     f"{ns} samples at {sr} Hz ({ns / sr:.3f} s) per excerpt, domain {shape}")


@_guard("axis order", "reading domain_axes")
def check_axis_order(task: Task, probe: _Probe | None = None) -> CheckResult:
    """domain_axes names every axis of domain_shape, in an order the harness handles."""
    try:
        kinds = axis_order(tuple(getattr(task, "domain_axes", ())), tuple(getattr(task, "domain_shape", ())))
    except ValueError as exc:
        return CheckResult("axis order", False, str(exc))
    return CheckResult("axis order", True, f"domain_axes {tuple(task.domain_axes)}: {AXIS_ORDERS[kinds]}")


@_guard("excerpts", "drawing excerpts")
def check_excerpts(task: Task, probe: _Probe) -> CheckResult:
    """excerpts(split, n, seed): n Excerpts of the right length, finite, labels in range, deterministic."""
    ex = probe.excerpts
    n, ns, c = probe.n, task.excerpt_samples, len(task.classes)
    if len(ex) != n:
        return CheckResult("excerpts", False, f"excerpts({probe.split!r}, {n}, {probe.seed}) gave {len(ex)} "
                         f"excerpts; it must give exactly n")
    for i, e in enumerate(ex):
        if not isinstance(e, Excerpt):
            return CheckResult("excerpts", False, f"excerpt {i} is a {type(e).__name__}; yield explbench.Excerpt(audio=..., label=..., song_seed=..., offset=...)")
        a = np.asarray(e.audio)
        if a.shape != (ns,):
            return CheckResult("excerpts", False, f"excerpt {i} has audio of shape {a.shape}; every excerpt "
                             f"must be ({ns},) = excerpt_samples, mono")
        if not np.issubdtype(a.dtype, np.floating) or not np.isfinite(a).all():
            return CheckResult("excerpts", False, f"excerpt {i} has {a.dtype} audio with non-finite or "
                             f"non-float samples; give float32 samples in [-1, 1]")
        if float(np.abs(a).max()) > PEAK_LIMIT:
            return CheckResult("excerpts", False, f"excerpt {i} peaks at {float(np.abs(a).max()):.3g}; "
                             f"scale audio into [-1, 1]")
        if not isinstance(e.label, (int, np.integer)) or not 0 <= int(e.label) < c:
            return CheckResult("excerpts", False, f"excerpt {i} has label {e.label!r}; labels are class "
                             f"indices 0..{c - 1} into classes {tuple(task.classes)}")
        declared = tuple(getattr(task, "stems", ()) or ())
        if declared:
            if not e.stems or set(e.stems) != set(declared):
                return CheckResult("excerpts", False, f"the task declares stems {declared} but excerpt {i} "
                                 f"carries {sorted(e.stems) if e.stems else None}")
            err = float(np.abs(sum(np.asarray(v, np.float64) for v in e.stems.values()) - a).max())
            if err > 1e-4:
                return CheckResult("excerpts", False, f"excerpt {i}'s stems add up to its audio only within "
                                 f"{err:.2g}; stems must sum to the audio (within 1e-4)")
    again = list(task.excerpts(probe.split, n, probe.seed))
    same = len(again) == n and all(np.array_equal(a.audio, b.audio) and a.label == b.label
                                   for a, b in zip(ex, again))
    if not same:
        return CheckResult("excerpts", False, f"a second excerpts({probe.split!r}, {n}, {probe.seed}) gave "
                         f"other excerpts; draw them from a numpy Generator seeded by `seed` (no global "
                         f"random state, no file-system order)")
    counts = np.bincount(probe.labels, minlength=c)
    return CheckResult("excerpts", True, f"{n} excerpts of {ns} samples, labels "
                     f"{', '.join(f'{task.classes[k]}: {int(counts[k])}' for k in range(c))}; the same "
                     f"seed gives the same excerpts")


@_guard("splits", "drawing excerpts of every split")
def check_splits(task: Task, probe: _Probe) -> CheckResult:
    """The splits offered share no cluster (recording); 'test' is offered."""
    clusters: dict[str, set[str]] = {}
    absent: dict[str, str] = {}
    for split in SPLITS:
        try:
            clusters[split] = {str(task.cluster(e)) for e in task.excerpts(split, probe.n, probe.seed)}
        except (ValueError, NotImplementedError, KeyError) as exc:
            absent[split] = str(exc)
    if "test" not in clusters:
        return CheckResult("splits", False, f"the 'test' split is not offered ({absent.get('test')}); runs "
                         f"draw their cases from it")
    shared = []
    names = list(clusters)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            both = clusters[a] & clusters[b]
            if both:
                shared.append(f"{a} and {b} share {len(both)} cluster(s), e.g. {sorted(both)[0]!r}")
    if shared:
        return CheckResult("splits", False, "; ".join(shared) + ". No recording (cluster) may appear in two "
                         "splits: choose splits by recording, not by excerpt")
    offered = ", ".join(f"{s} ({len(v)} clusters in {probe.n} excerpts)" for s, v in clusters.items())
    note = f"; not offered: {', '.join(absent)}" if absent else ""
    return CheckResult("splits", True, f"disjoint: {offered}{note}")


@_guard("domain shape", "calling to_domain on a batch of excerpts")
def check_domain_shape(task: Task, probe: _Probe) -> CheckResult:
    """to_domain maps (B, excerpt_samples) to finite (B, *domain_shape)."""
    want = (len(probe.excerpts), *task.domain_shape)
    x = probe.x
    if tuple(x.shape) != want:
        return CheckResult("domain shape", False, f"to_domain gave shape {tuple(x.shape)} for {len(probe.excerpts)} "
                         f"excerpts; expected {want} = (B, *domain_shape). Fix domain_shape or the "
                         f"front-end (a batch axis first, then {tuple(task.domain_axes)})")
    if not torch.isfinite(x).all():
        return CheckResult("domain shape", False, f"to_domain gave {int((~torch.isfinite(x)).sum())} NaN or "
                         f"infinite values; floor logarithms, e.g. torch.log(x.clamp_min(1e-7))")
    return CheckResult("domain shape", True, f"to_domain: (B, {task.excerpt_samples}) -> (B, "
                     f"{', '.join(map(str, task.domain_shape))}), finite, values in "
                     f"[{float(x.min()):.3g}, {float(x.max()):.3g}]")


@_guard("probabilities", "calling the classifier on the excerpts' domain inputs")
def check_probabilities(task: Task, probe: _Probe) -> CheckResult:
    """classifier gives (B, C) probabilities in [0, 1], C = len(classes), rows summing to 1; decide gives labels."""
    p, c, b = probe.probs, len(task.classes), len(probe.excerpts)
    if tuple(p.shape) != (b, c):
        return CheckResult("probabilities", False, f"the classifier gave shape {tuple(p.shape)}; expected "
                         f"({b}, {c}): one probability per class of {tuple(task.classes)}")
    if not torch.isfinite(p).all() or float(p.min()) < 0 or float(p.max()) > 1:
        return CheckResult("probabilities", False, f"outputs range over [{float(p.min()):.3g}, {float(p.max()):.3g}]; "
                         f"return probabilities, e.g. end the classifier with torch.nn.Softmax(dim=1) "
                         f"(or a sigmoid for one logit: torch.stack([1 - p, p], 1))")
    sums = p.double().sum(dim=1)
    exclusive = not getattr(task, "multi_label", False)
    if exclusive and float((sums - 1).abs().max()) > 1e-4:
        return CheckResult("probabilities", False, f"rows sum to [{float(sums.min()):.4f}, {float(sums.max()):.4f}], "
                         f"not 1; use a softmax over the classes, or set multi_label = True when the "
                         f"classes are not exclusive")
    d = task.decide(p)
    if tuple(d.shape) != (b,) or d.dtype.is_floating_point or int(d.min()) < 0 or int(d.max()) >= c:
        return CheckResult("probabilities", False, f"decide() gave {tuple(d.shape)} {d.dtype} values; it must "
                         f"return ({b},) integer class indices in 0..{c - 1}")
    return CheckResult("probabilities", True, f"({b}, {c}) in [0, 1]" + (", rows sum to 1" if exclusive else "")
                     + f"; decide() gives {b} labels in 0..{c - 1}")


@_guard("eval mode", "running the classifier twice")
def check_eval_mode(task: Task, probe: _Probe) -> CheckResult:
    """Two forwards of the same batch agree (no dropout or batch statistics at inference)."""
    a, b = probe.probs, probe.forward(probe.x)
    diff = float((a - b).abs().max())
    if diff > REPEAT_TOLERANCE:
        return CheckResult("eval mode", False, f"two forwards of the same inputs differ by up to {diff:.3g}; "
                         f"return the classifier in eval mode (module.eval()), so dropout is off")
    return CheckResult("eval mode", True, f"two forwards agree (max difference {diff:.1g} <= {REPEAT_TOLERANCE:g})")


@_guard("batch invariance", "running the classifier at several batch sizes")
def check_batch_invariance(task: Task, probe: _Probe) -> CheckResult:
    """Each input alone (batch of 1) gets the probabilities it gets in larger batches."""
    x = probe.x
    alone = torch.cat([probe.forward(x[i : i + 1]) for i in range(len(x))])
    worst, where = 0.0, ""
    for size in sorted({len(x), 3}):
        together = torch.cat([probe.forward(x[i : i + size]) for i in range(0, len(x), size)])
        diff = float((alone - together).abs().max())
        if diff > worst:
            worst, where = diff, f"batches of {size}"
    if worst > BATCH_TOLERANCE:
        return CheckResult("batch invariance", False, f"probabilities in {where} differ from one input at a "
                         f"time by up to {worst:.3g} (tolerance {BATCH_TOLERANCE:g}); the harness picks the "
                         f"batch size by speed, so outputs must not depend on it: no batch statistics "
                         f"(BatchNorm in eval mode is fine), no padding to the longest input, no state "
                         f"carried between calls")
    return CheckResult("batch invariance", True, f"batch of 1 vs batches of {len(x)} and 3: max difference "
                     f"{worst:.1g} <= {BATCH_TOLERANCE:g}")


@_guard("gradient to the waveform", "back-propagating from the classifier to the waveform")
def check_gradient(task: Task, probe: _Probe) -> CheckResult:
    """d p(class) / d waveform is finite and non-zero on excerpts, and finite on silence."""
    dev = getattr(task, "device", "cpu")
    k = min(len(probe.excerpts), 4)
    wave = probe.audio[:k].clone().to(dev).requires_grad_(True)
    p = probe.clf(task.to_domain(wave))
    target = (probe.probs[:k].argmin(dim=1)).to(p.device)  # the least likely class: not saturated
    loss = p.gather(1, target[:, None]).sum()
    if loss.requires_grad:
        loss.backward()
    g = wave.grad
    if g is None:
        return CheckResult("gradient to the waveform", False, "no gradient reached the waveform; keep "
                         "to_domain and the classifier in torch (no numpy, no .detach(), no "
                         "torch.no_grad inside), so attacks and gradient explainers can run")
    if not torch.isfinite(g).all():
        return CheckResult("gradient to the waveform", False, f"the gradient has {int((~torch.isfinite(g)).sum())} "
                         f"NaN or infinite entries; guard square roots and logs, e.g. "
                         f"torch.sqrt(power.clamp_min(1e-14)), torch.log(x.clamp_min(1e-7))")
    nonzero = int((g.abs().flatten(1).max(dim=1).values > 0).sum())
    if nonzero == 0:
        return CheckResult("gradient to the waveform", False, f"the gradient is zero on all {k} excerpts; the "
                         f"front-end or the classifier cuts it (a hard threshold, argmax or rounding)")
    silent = torch.zeros(1, task.excerpt_samples, device=dev, requires_grad=True)
    probe.clf(task.to_domain(silent))[:, 0].sum().backward()
    if silent.grad is None or not torch.isfinite(silent.grad).all():
        return CheckResult("gradient to the waveform", False, "the gradient is NaN at an all-zero waveform "
                         "(typically sqrt or abs at 0); floor the power before the square root, e.g. "
                         "torch.sqrt(power.clamp_min(1e-14))")
    return CheckResult("gradient to the waveform", True, f"finite and non-zero on {nonzero} of {k} excerpts, "
                     f"finite at silence")


@_guard("hooks", "checking the optional hooks")
def check_hooks(task: Task, probe: _Probe, generators: Iterable[Any] = (), explainers: Iterable[Any] = ()) -> CheckResult:
    """The hooks the suite's generators and explainers need are present, and the present ones work.

    What cannot work on the task at all (:func:`inapplicable`) is not a failure: a run leaves
    it out, and the check says so.
    """
    generators, explainers = list(generators), list(explainers)
    left = inapplicable(task, generators, explainers)
    dropped = [g for g in generators if _lookup("generator", g)[0] in left]
    generators = [g for g in generators if g not in dropped]
    explainers = [e for e in explainers if _lookup("explainer", e)[0] not in left]
    # a hook only a left-out generator would use (a waveform task's inherited magnitude) is not checked
    magnitude_unused = any("magnitude" in requirements(g).hooks for g in dropped)
    bad = list(missing_hooks(task, generators, explainers))
    if has_hook(task, "magnitude") != has_hook(task, "magnitude_to_domain"):
        bad.append("magnitude and magnitude_to_domain come as a pair; define both or neither")
    elif has_hook(task, "magnitude") and not magnitude_unused:
        wave = probe.audio[:2].to(getattr(task, "device", "cpu"))
        with torch.no_grad():
            mag = task.magnitude(wave)  # type: ignore[misc]
            back = task.magnitude_to_domain(mag).float().cpu()  # type: ignore[misc]
        if float(mag.min()) < 0:
            bad.append("magnitude() gave negative values; it must be a magnitude (|STFT|)")
        if back.shape != probe.x[:2].shape:
            bad.append(f"magnitude_to_domain(magnitude(audio)) has shape {tuple(back.shape)}, not the "
                       f"domain's {tuple(probe.x[:2].shape)}")
        else:
            err = float((back - probe.x[:2]).abs().max())
            if err > ROUND_TRIP_TOLERANCE * max(1.0, float(probe.x.abs().max())):
                bad.append(f"magnitude_to_domain(magnitude(audio)) differs from to_domain(audio) by "
                           f"{err:.3g}; the spectrogram attack needs them to agree")
    if has_hook(task, "band_frequencies"):
        f = np.asarray(task.band_frequencies, dtype=np.float64)
        try:
            rows = task.domain_shape[axis_order(tuple(task.domain_axes)).index("frequency")]
        except ValueError:
            rows = None
        if rows is not None and f.shape != (rows,):
            bad.append(f"band_frequencies has shape {f.shape}; give one frequency per frequency row ({rows},)")
        elif np.any(np.diff(f) <= 0) or f.min() < 0 or f.max() > task.sample_rate / 2 + 1e-6:
            bad.append("band_frequencies must ascend and lie in [0, sample_rate / 2] Hz")
    present = [h for h in HOOKS if has_hook(task, h)]
    if bad:
        return CheckResult("hooks", False, "; ".join(bad))
    gens = [(_lookup("generator", g)[0]) for g in generators]
    skipped = "".join(f"; {n} is left out of runs ({why})" for n, why in left.items())
    return CheckResult("hooks", True, f"present: {', '.join(present) or 'none'}; enough for "
                     f"{', '.join(gens) or 'no generator named'}{skipped}")


@_guard("accuracy", "scoring the classifier on the excerpts")
def check_accuracy(task: Task, probe: _Probe) -> CheckResult:
    """Accuracy on the n test excerpts is above chance (the share of the most common label)."""
    labels = probe.labels
    dec = task.decide(probe.probs).numpy()
    acc = float((dec == labels).mean())
    chance = float(np.bincount(labels, minlength=len(task.classes)).max() / len(labels))
    from scipy.stats import binomtest

    pval = binomtest(int((dec == labels).sum()), len(labels), chance, alternative="greater").pvalue if chance < 1 else 1.0
    text = (f"accuracy {acc:.3f} on {len(labels)} {probe.split} excerpts; chance (most common label) "
            f"{chance:.3f}; one-sided binomial p = {pval:.2g}")
    if acc <= chance:
        return CheckResult("accuracy", False, text + ". The model is no better than always answering the most "
                         "common label: check that classes are in the classifier's output order, that "
                         "labels index classes, and that to_domain is the front-end the model was trained on")
    return CheckResult("accuracy", True, text)
