"""Seeding for plug-ins whose libraries draw from numpy's or torch's *global* generators.

An explainer's only source of randomness is the ``rng`` it is given. Libraries such as shap and
captum draw from the global generators instead; run them inside :func:`local_seed`, which seeds
both from ``rng`` and restores them afterwards, so the explanation is the same for the same
case and seed, whatever ran before it.

The harness runs every ``explain`` call on one torch thread, one call at a time per process
(:func:`explbench.api.model_access.one_torch_thread`; a Dask worker must run ``--nthreads 1``).
That is what makes the global state safe to borrow here: nothing else in the process draws
from it while an explanation runs.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch


def draw_seed(rng: np.random.Generator) -> int:
    """One seed for a global generator, drawn from ``rng`` (what :func:`local_seed` draws)."""
    return int(rng.integers(0, 2**31 - 1))


@contextlib.contextmanager
def local_seed(rng: np.random.Generator | int) -> Iterator[None]:
    """Seed numpy's and torch's *global* generators from ``rng``; restore them on exit.

    For libraries (shap, captum) that only draw from the global generators. ``rng`` is a
    Generator (one integer is drawn from it: :func:`draw_seed`) or such an integer, to
    re-enter the same global state several times. Not thread-safe across threads sharing the
    global state, as any use of the global generators is.
    """
    seed = draw_seed(rng) if isinstance(rng, np.random.Generator) else int(rng)
    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        np.random.seed(seed)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)


__all__ = ["draw_seed", "local_seed"]
