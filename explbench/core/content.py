"""Content types: what replaces a removed segment.

Each content type maps an input ``x`` (explanation domain) to a baseline ``b`` of the same
shape; a removed segment shows ``b`` instead of ``x``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

ContentType = Callable[[torch.Tensor, np.random.Generator], torch.Tensor]


def zero(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """All zeros (after per-band normalisation this is the training mean)."""
    return torch.zeros_like(x)


def minimum(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """The excerpt's smallest value everywhere (silence, in a log-magnitude domain)."""
    return torch.full_like(x, float(x.min()))


def mean(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """The excerpt's scalar mean everywhere (the paper's default)."""
    return torch.full_like(x, float(x.mean()))


def noise(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Gaussian noise with the excerpt's mean and standard deviation, drawn from ``rng``."""
    z = rng.standard_normal(tuple(x.shape)).astype(np.float32)
    return torch.from_numpy(z) * float(x.std()) + float(x.mean())


CONTENT_TYPES: dict[str, ContentType] = {"zero": zero, "min": minimum, "mean": mean, "noise": noise}


def get(name: str) -> ContentType:
    """The content type called ``name``; unknown names list the known ones."""
    try:
        return CONTENT_TYPES[name]
    except KeyError:
        raise ValueError(
            f"unknown content type {name!r}; known: {', '.join(CONTENT_TYPES)}"
        ) from None
