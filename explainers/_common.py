"""Helpers shared by the shipped explainers (not part of the public API).

Everything random is derived from the ``rng`` argument of ``Explainer.explain``. Libraries
that draw from a *global* generator (shap from ``np.random``, captum from ``torch``'s default
generator and ``np.random``) run inside :func:`local_seed`, which seeds both global generators
from ``rng`` and restores their previous state afterwards, so an explanation is a function of
its seed and leaves no trace on the caller's random state.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator

import numpy as np
import torch

from explbench import baselines


def as_input(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A detached float32 CPU copy of ``x`` (explainers must never modify their input).

    Parameters
    ----------
    x : tensor or array, shape domain_shape

    Returns
    -------
    torch.Tensor, shape domain_shape, float32
    """
    return torch.as_tensor(x).detach().to("cpu", torch.float32).clone()


def content_baseline(content: str, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """The baseline ``b`` (shape of ``x``, float32) that replaces removed segments.

    Parameters
    ----------
    content : str
        A content type of :mod:`explbench.baselines` ("zero", "min", "mean", "noise").
    x : torch.Tensor, shape domain_shape
    rng : numpy.random.Generator
        Used only by random content types (``noise``).
    """
    return baselines.get(content)(x, rng).to(torch.float32)


def sized(n: int, budget: int | None, extra: int = 0, what: str = "samples") -> int:
    """``n`` reduced so that ``n + extra`` queries fit ``budget``.

    Raises
    ------
    ValueError
        When the budget cannot hold even one sample plus the fixed ``extra`` queries.
    """
    if budget is None:
        return int(n)
    m = min(int(n), int(budget) - extra)
    if m < 1:
        raise ValueError(
            f"a query budget of {budget} is too small: this explainer needs {extra} fixed "
            f"queries plus at least one of its {what}"
        )
    return m


@contextlib.contextmanager
def local_seed(rng: np.random.Generator) -> Iterator[None]:
    """Seed numpy's and torch's *global* generators from ``rng``; restore them on exit.

    For libraries (shap, captum) that only draw from the global generators. Not thread-safe
    across threads sharing the global state, as any use of the global generators is.
    """
    seed = int(rng.integers(0, 2**31 - 1))
    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        np.random.seed(seed)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)


@contextlib.contextmanager
def quiet_logger(name: str, level: int = logging.WARNING) -> Iterator[None]:
    """Raise the level of logger ``name`` to at least ``level`` for the duration."""
    logger = logging.getLogger(name)
    old = logger.level
    logger.setLevel(max(level, old))
    try:
        yield
    finally:
        logger.setLevel(old)


def spread(weights: np.ndarray, components: "object") -> np.ndarray:
    """Spread one weight per component uniformly over its cells (divided by its area).

    Parameters
    ----------
    weights : np.ndarray, shape (k,)
    components : Segmentation with k segments

    Returns
    -------
    np.ndarray, shape domain_shape, float64
        ``sum_j weights[j] * M_j / |M_j|``; projecting it with ``reduce="sum"`` onto another
        segmentation distributes each component's weight by overlapping area.
    """
    masks = components.masks.reshape(components.d, -1).double()
    area = masks.sum(dim=1).clamp_min(1.0)
    w = torch.as_tensor(np.asarray(weights, dtype=np.float64)) / area
    return (w @ masks).reshape(components.shape).numpy()
