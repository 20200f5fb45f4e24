"""Batched Carlini–Wagner-style attack with sign-of-gradient steps (the core of both C&W generators).

For every item the attack minimises ``||delta||^2 + alpha * BCE(p_target, 1)`` over a perturbation
``delta`` that lives in an *attack space* (waveform samples, |STFT| magnitudes, …) with the update
``delta <- clip(delta - eta * sign(grad), -eps, eps)``. Items run in a batch; an item leaves the
batch as soon as the model's decision on it equals its target with probability at least
``confidence`` (or after ``max_iter`` steps), and its slot is refilled from a source, so no
compute is spent on finished items.

Speed. Nearly all of an attack's time is the classifier's forward and backward pass, once per
item and step (voice-to-no-voice spectrogram attacks take hundreds of steps). With
``precision="bfloat16"`` that pass runs the classifier under bfloat16 autocast (the mapping to
the domain and the loss stay in float32), which on CPUs with AMX or AVX512-BF16 (and on recent
GPUs) is much faster (svd-synth CNN, one core of a Xeon with AMX: 2.6x at 4-8 items, 1.5x at one). Only the *search direction* is then computed in reduced
precision: whether an item stops, and whether it flipped, is decided by a float32 forward of
its final perturbation, so every outcome meets the same ``eps``, ``confidence`` and
``max_iter`` as a float32 attack. ``precision="auto"`` (the default) picks bfloat16 where the
hardware computes it natively and float32 elsewhere; the resolved value is part of the config
(and so of the case-cache key). ``precision="float32"`` reproduces the float32 attack exactly.

On a CPU the batch is also cut into ``threads`` sub-batches that run at the same time in
Python threads, each with one torch thread, instead of one batch over torch's thread pool. Each
item's gradient is independent of the others', so this changes nothing mathematically (in
floating point, a convolution's rounding can depend on the batch size, as it already did when
items joined or left the batch); and a machine whose cores are shared with other processes no
longer stalls every parallel region on its slowest thread (measured on a 2-core machine at a
load of ~14: 3-4x faster per step; on an idle machine expected about equal).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol

import torch

PRECISIONS = ("float32", "bfloat16", "auto")


class ToDomain(Protocol):
    def __call__(self, base: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """Attack-space bases and perturbations ``(B, *space)`` to domain inputs ``(B, *domain)``."""


@dataclass
class Item:
    """One input to attack.

    Attributes
    ----------
    key : object
        Caller's identifier, handed back with the result.
    base : torch.Tensor, shape space_shape
        The clean input in the attack space (e.g. a waveform ``(n_samples,)``).
    target : int
        The class the attack aims for.
    """

    key: object
    base: torch.Tensor
    target: int


@dataclass
class Outcome:
    """Result of attacking one item.

    Attributes
    ----------
    key : object
    delta : torch.Tensor, shape space_shape
        The final perturbation in the attack space, ``|delta| <= eps``.
    iterations : int
        Gradient steps taken.
    flipped : bool
        Whether the (float32) decision on ``base + delta`` is the target.
    """

    key: object
    delta: torch.Tensor
    iterations: int
    flipped: bool


def native_bfloat16(device: str | torch.device = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 convolutions natively (CPU: AMX or AVX512-BF16)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if dev.type != "cpu":
        return False
    probes = [getattr(torch.cpu, n, None) for n in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(bool(p()) for p in probes if callable(p))


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """``"auto"`` to ``"bfloat16"`` where :func:`native_bfloat16`, else ``"float32"``; others unchanged."""
    if precision not in PRECISIONS:
        raise ValueError(f"attack precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bfloat16" if native_bfloat16(device) else "float32"
    return precision


@dataclass(frozen=True)
class AttackConfig:
    """Step size ``eta``, bound ``eps`` and weight ``alpha`` of the loss, in attack-space units.

    ``precision`` is resolved on construction (``"auto"`` becomes ``"float32"`` or
    ``"bfloat16"`` for this machine's CPU), so the stored config says what was used.
    """

    eps: float
    eta: float
    alpha: float
    max_iter: int = 1000
    batch_size: int = 16
    #: probability of the target class an attack must reach before it stops (C&W's margin);
    #: 0.5 stops at the first flip, which leaves cases on the decision boundary
    confidence: float = 0.0
    #: arithmetic of the classifier's forward/backward during the search (see the module doc)
    precision: str = "auto"
    #: CPU sub-batches computed at once, one torch thread each (0: torch's thread count; 1: the
    #: whole batch on torch's thread pool); changes speed, and results only by float rounding
    threads: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", resolve_precision(self.precision))
        if self.batch_size < 1:
            raise ValueError(f"attack batch_size must be >= 1, got {self.batch_size}")
        if self.threads < 0:
            raise ValueError(f"attack threads must be >= 0 (0: torch's thread count), got {self.threads}")


def _direction(clf: torch.nn.Module, to_domain: ToDomain, base: torch.Tensor, delta: torch.Tensor,
               target: torch.Tensor, alpha: float, reduced: bool
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Probabilities ``(B, C)``, ``p_target`` ``(B,)`` and the loss gradient ``(B, *space)`` at ``delta``."""
    with torch.enable_grad():  # grad and autocast modes are per thread: set both here
        d = delta.detach().requires_grad_(True)
        x = to_domain(base, d)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=reduced):
            probs = clf(x)
        probs = probs.float()
        p_t = probs.gather(1, target[:, None]).squeeze(1).clamp_min(1e-12)
        loss = (d**2).flatten(1).sum(1) + alpha * -torch.log(p_t)
        (grad,) = torch.autograd.grad(loss.sum(), d)
    return probs.detach(), p_t.detach(), grad


def _verdict(clf: torch.nn.Module, decide: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
             target: torch.Tensor, confidence: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 ``(flipped, confident)`` ``(B,)`` for domain inputs ``x``."""
    with torch.no_grad():
        probs = clf(x).float()
        p_t = probs.gather(1, target[:, None]).squeeze(1)
        flipped = decide(probs).to(target.device) == target
    return flipped, flipped & (p_t >= confidence)


class _Lanes:
    """``n`` Python threads computing sub-batches, with torch at one thread meanwhile (CPU only)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._before = torch.get_num_threads()
        torch.set_num_threads(1)
        self._pool = ThreadPoolExecutor(n, thread_name_prefix="explbench-attack")

    def map(self, fn: Callable, calls: list[tuple]) -> list:
        """``[fn(*args) for args in calls]``, computed at once; a single call runs here with
        torch's own thread count (one item alone gains nothing from the sub-batch split)."""
        if len(calls) == 1:
            torch.set_num_threads(self._before)
            try:
                return [fn(*calls[0])]
            finally:
                torch.set_num_threads(1)
        return [f.result() for f in [self._pool.submit(fn, *args) for args in calls]]

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        torch.set_num_threads(self._before)


@contextmanager
def _lanes(threads: int, device: torch.device) -> Iterator[_Lanes | None]:
    n = threads or torch.get_num_threads()
    if device.type != "cpu" or n <= 1:
        yield None
        return
    lanes = _Lanes(n)
    try:
        yield lanes
    finally:
        lanes.close()


def attack_stream(
    clf: torch.nn.Module,
    decide: Callable[[torch.Tensor], torch.Tensor],
    to_domain: ToDomain,
    source: Callable[[], Item | None],
    on_done: Callable[[list[Outcome]], None],
    config: AttackConfig,
) -> int:
    """Attack items drawn from ``source`` in a rolling batch until the source is empty.

    Parameters
    ----------
    clf : torch.nn.Module
        Domain inputs ``(B, *domain)`` to probabilities ``(B, C)``, in eval mode.
    decide : callable
        Probabilities ``(B, C)`` to decisions ``(B,)``.
    to_domain : callable
        ``(base, delta) -> domain input``, differentiable in ``delta``.
    source : callable
        Returns the next item to attack, or ``None`` when there is none *right now*; it is asked
        again after every ``on_done`` call, so it may admit items depending on results.
    on_done : callable
        Receives the outcomes of the items that left the batch in one iteration.
    config : AttackConfig

    Returns
    -------
    int
        Total item-iterations computed (forward + backward passes per item).
    """
    keys: list[object] = []
    base = delta = target = iters = None
    work = 0
    reduced = config.precision == "bfloat16"
    lanes: _Lanes | None = None
    with ExitStack() as stack:
        while True:
            # refill free slots
            new = []
            while len(keys) + len(new) < config.batch_size:
                item = source()
                if item is None:
                    break
                new.append(item)
            if new:
                nb = torch.stack([it.base for it in new]).detach()
                keys += [it.key for it in new]
                nt = torch.tensor([it.target for it in new], device=nb.device)
                nd = torch.zeros_like(nb)
                ni = torch.zeros(len(new), dtype=torch.long)
                if base is None:
                    base, delta, target, iters = nb, nd, nt, ni
                    lanes = stack.enter_context(_lanes(config.threads, nb.device))
                else:
                    base, delta = torch.cat([base, nb]), torch.cat([delta, nd])
                    target, iters = torch.cat([target, nt]), torch.cat([iters, ni])
            if not keys:
                return work
            # one forward/backward over the whole active batch (in parallel sub-batches on a CPU)
            if lanes is None:
                probs, p_t, grad = _direction(clf, to_domain, base, delta, target, config.alpha, reduced)
            else:
                parts = torch.arange(len(keys)).tensor_split(min(lanes.n, len(keys)))
                kp = [p.to(base.device) for p in parts]
                done = lanes.map(_direction, [(clf, to_domain, base[p], delta[p], target[p], config.alpha,
                                               reduced) for p in kp])
                probs, p_t, grad = (torch.cat(t) for t in zip(*done))
            work += len(keys)
            with torch.no_grad():
                flipped = (decide(probs) == target).cpu()
                confident = flipped & (p_t.cpu() >= config.confidence)
                finished = confident | (iters >= config.max_iter)
                if reduced and finished.any():
                    # the float32 verdict on the candidates' current perturbation decides
                    idx = finished.nonzero().flatten()
                    di = idx.to(base.device)
                    f32, c32 = _verdict(clf, decide, to_domain(base[di], delta[di]), target[di],
                                        config.confidence)
                    flipped[idx], confident[idx] = f32.cpu(), c32.cpu()
                    finished = confident | (iters >= config.max_iter)
                step = ~finished
                delta = torch.where(
                    step.to(delta.device).view(-1, *[1] * (delta.ndim - 1)),
                    (delta - config.eta * grad.sign()).clamp(-config.eps, config.eps),
                    delta,
                )
                iters = iters + step.long()
            if finished.any():
                idx = finished.nonzero().flatten().tolist()
                on_done([Outcome(keys[i], delta[i].clone(), int(iters[i]), bool(flipped[i])) for i in idx])
                keep = step.nonzero().flatten()
                keys = [keys[i] for i in keep.tolist()]
                kd = keep.to(base.device)
                base, delta, target, iters = base[kd], delta[kd], target[kd], iters[keep]
