"""Batched Carlini–Wagner-style attack with sign-of-gradient steps (the core of both C&W generators).

For every item the attack minimises ``||delta||^2 + alpha * BCE(p_target, 1)`` over a perturbation
``delta`` that lives in an *attack space* (waveform samples, |STFT| magnitudes, …) with the update
``delta <- clip(delta - eta * sign(grad), -eps, eps)``. Items run in a batch; an item leaves the
batch as soon as the model's decision on it equals its target (or after ``max_iter`` steps),
and its slot is refilled from a source, so no compute is spent on finished items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch


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
        Whether the decision during the attack reached the target.
    """

    key: object
    delta: torch.Tensor
    iterations: int
    flipped: bool


@dataclass(frozen=True)
class AttackConfig:
    """Step size ``eta``, bound ``eps`` and weight ``alpha`` of the loss, in attack-space units."""

    eps: float
    eta: float
    alpha: float
    max_iter: int = 1000
    batch_size: int = 16
    #: probability of the target class an attack must reach before it stops (C&W's margin);
    #: 0.5 stops at the first flip, which leaves cases on the decision boundary
    confidence: float = 0.0


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
            else:
                base, delta = torch.cat([base, nb]), torch.cat([delta, nd])
                target, iters = torch.cat([target, nt]), torch.cat([iters, ni])
        if not keys:
            return work
        # one forward/backward over the whole active batch
        with torch.enable_grad():
            d = delta.detach().requires_grad_(True)
            probs = clf(to_domain(base, d))
            p_t = probs.gather(1, target[:, None]).squeeze(1).clamp_min(1e-12)
            loss = (d**2).flatten(1).sum(1) + config.alpha * -torch.log(p_t)
            (grad,) = torch.autograd.grad(loss.sum(), d)
        work += len(keys)
        with torch.no_grad():
            flipped = (decide(probs.detach()) == target).cpu()
            confident = flipped & (p_t.detach().cpu() >= config.confidence)
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
