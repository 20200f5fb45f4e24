"""Interpretable components over the explanation domain.

A :class:`Segmentation` holds ``d`` binary masks over the explanation domain: 2-D time-frequency
(bands x frames, or frames x bands for a time-major domain) or 1-D (a waveform). A binary
vector ``z`` of length ``d`` selects segments; the composition of an input ``x`` with a
baseline ``b`` is ``x * M(z) + b * (1 - M(z))`` where ``M(z) = sum_i z_i M_i``.

Rankings. :func:`top_k` orders segments by weight, largest first. Tied weights are ordered by
segment index unless a ``numpy.random.Generator`` is passed, in which case every order of a tie
is equally likely; the protocol always passes one (see :mod:`explbench.protocol.scorer`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: the ways a dense map is aggregated onto segments (:meth:`Segmentation.project`)
REDUCTIONS: tuple[str, ...] = ("sum", "mean", "mean_pos", "mean_abs")
#: aggregations whose result is never negative
UNSIGNED_REDUCTIONS: frozenset[str] = frozenset({"mean_pos", "mean_abs"})


@dataclass(frozen=True)
class Segmentation:
    """Disjoint segments covering an explanation domain.

    Attributes
    ----------
    masks : torch.Tensor, shape (d, *domain_shape), float32 in {0, 1}
        E.g. (d, n_bands, n_frames).
        One mask per segment; masks do not overlap.
    names : tuple of str
        Human-readable name per segment, e.g. ``"t2 f0"``.
    kind : str
        Short description used in provenance, e.g. ``"grid 5x4"``.
    time_axis : int, optional
        Which axis of the domain is time (0 for a time-major or 1-D domain, 1 for bands x
        frames); None means the last axis. Explainers that build their own time or frequency
        components (SLIME) follow it.
    """

    masks: torch.Tensor
    names: tuple[str, ...]
    kind: str
    time_axis: int | None = None

    @property
    def d(self) -> int:
        """Number of segments."""
        return int(self.masks.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the domain the masks cover."""
        return tuple(self.masks.shape[1:])

    @property
    def time_dim(self) -> int:
        """The index of the time axis of the domain (:attr:`time_axis`, else the last axis)."""
        n = len(self.shape)
        return (n - 1) if self.time_axis is None else int(self.time_axis) % n

    def mask(self, z: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Masks ``M(z)`` for a batch of selections.

        Parameters
        ----------
        z : array, shape (N, d) or (d,)
            Segment selections (binary or real weights).

        Returns
        -------
        torch.Tensor, shape (N, *domain_shape) (or domain_shape for 1-D ``z``)
        """
        z_t = torch.as_tensor(np.asarray(z) if not torch.is_tensor(z) else z, dtype=torch.float32)
        single = z_t.ndim == 1
        z_t = z_t.reshape(-1, self.d)
        flat = self.masks.reshape(self.d, -1)
        out = (z_t @ flat).reshape(-1, *self.shape)
        return out[0] if single else out

    def compose(
        self, x: torch.Tensor, z: torch.Tensor | np.ndarray, baseline: torch.Tensor
    ) -> torch.Tensor:
        """``x * M(z) + baseline * (1 - M(z))`` for every row of ``z``, in one tensor expression.

        Parameters
        ----------
        x : torch.Tensor, shape domain_shape
        z : array, shape (N, d)
        baseline : torch.Tensor, shape domain_shape (or broadcastable to it)

        Returns
        -------
        torch.Tensor, shape (N, *domain_shape)
        """
        m = self.mask(np.atleast_2d(np.asarray(z)) if not torch.is_tensor(z) else z.reshape(-1, self.d))
        return m.mul_(x - baseline).add_(baseline)  # in place on the fresh mask: 2.5x faster

    def apply_delta(self, x: torch.Tensor, delta: torch.Tensor, z: torch.Tensor | np.ndarray) -> torch.Tensor:
        """``x + M(z) * delta`` for every row of ``z`` (adding a perturbation on chosen segments).

        Returns
        -------
        torch.Tensor, shape (N, *domain_shape)
        """
        m = self.mask(np.atleast_2d(np.asarray(z)) if not torch.is_tensor(z) else z.reshape(-1, self.d))
        return m.mul_(delta).add_(x)

    def project(self, dense: torch.Tensor | np.ndarray, reduce: str = "sum") -> np.ndarray:
        """Aggregate a dense relevance map onto the segments.

        Parameters
        ----------
        dense : array, shape domain_shape or (N, *domain_shape)
        reduce : {"sum", "mean", "mean_pos", "mean_abs"}
            Per segment: the signed sum, the signed mean, the mean of the positive part
            ``max(dense, 0)``, or the mean of ``|dense|`` of the relevance inside it (the
            aggregations of Hoedt, Praher et al., 2023). The last two are never negative.

        Returns
        -------
        np.ndarray, shape (d,) or (N, d), float64
        """
        if reduce not in REDUCTIONS:
            raise ValueError(f"reduce must be one of {', '.join(map(repr, REDUCTIONS))}, got {reduce!r}")
        a = torch.as_tensor(np.asarray(dense) if not torch.is_tensor(dense) else dense).double()
        single = a.ndim == len(self.shape)
        a = a.reshape(-1, int(np.prod(self.shape)))
        if reduce == "mean_pos":
            a = a.clamp_min(0.0)
        elif reduce == "mean_abs":
            a = a.abs()
        flat = self.masks.reshape(self.d, -1).double()
        out = a @ flat.T
        if reduce != "sum":
            out = out / flat.sum(dim=1).clamp_min(1.0)
        res = out.numpy()
        return res[0] if single else res

    def energy(self, delta: torch.Tensor | np.ndarray) -> np.ndarray:
        """Segment energies ``E_i = sum(M_i * delta**2)`` of a perturbation, shape (d,)."""
        d = torch.as_tensor(np.asarray(delta) if not torch.is_tensor(delta) else delta).double()
        return self.project(d**2, reduce="sum")

    def labels(self) -> np.ndarray:
        """Integer map of shape domain_shape giving each cell's segment index (-1 if uncovered)."""
        covered = self.masks.sum(0) > 0
        lab = self.masks.argmax(0).numpy().astype(np.int64)
        lab[~covered.numpy()] = -1
        return lab


def _edges(n: int, parts: int) -> np.ndarray:
    if not 1 <= parts <= n:
        raise ValueError(f"cannot split an axis of length {n} into {parts} segments")
    return np.linspace(0, n, parts + 1).round().astype(int)


def _axes(shape: tuple[int, ...], time_axis: int | None) -> int:
    """The index of the time axis of ``shape`` (see :func:`grid`)."""
    if len(shape) not in (1, 2):
        raise ValueError(f"a segmentation needs a 1-D (samples) or 2-D (time-frequency) domain, "
                         f"got shape {tuple(shape)}")
    if len(shape) == 1:
        if time_axis not in (None, 0, -1):
            raise ValueError(f"a 1-D domain has only axis 0, got time_axis={time_axis}")
        return 0
    t = 1 if time_axis is None else time_axis
    if t not in (0, 1, -1, -2):
        raise ValueError(f"time_axis must be 0 (time-major) or 1 (bands x frames), got {time_axis}")
    return t % 2


def grid(shape: tuple[int, ...], n_time: int = 5, n_freq: int = 4, *,
         time_axis: int | None = None) -> Segmentation:
    """Time x frequency grid over a 2-D domain (or time blocks over a 1-D one).

    Segment ``i = n_freq * t + f`` covers time block ``t`` and frequency block ``f``
    (frequency fastest, ``f = 0`` the lowest bands), whatever the axis order, so a segment's
    index and name mean the same on every domain. For an 80 x 115 log-mel excerpt the
    default gives the protocol's 20 segments of 20 bands x 23 frames.

    Parameters
    ----------
    shape : (n_bands, n_frames), (n_frames, n_bands) with ``time_axis=0``, or (n_samples,)
    n_time, n_freq : int
        Number of blocks along time and frequency (``n_freq`` must be 1 on a 1-D domain).
    time_axis : int, optional
        Which axis of a 2-D ``shape`` is time: 1 (the default, bands x frames) or 0 (time-major,
        frames x bands, as PANNs and AST inputs are). Ignored for a 1-D domain.
    """
    t_ax = _axes(tuple(shape), time_axis)
    if len(shape) == 1:
        if n_freq != 1:
            raise ValueError(f"a 1-D domain of shape {tuple(shape)} has no frequency axis; use "
                             f"'time:N' (or grid:{n_time}x1)")
        n_frames, n_bands = int(shape[0]), 1
    else:
        n_frames, n_bands = int(shape[t_ax]), int(shape[1 - t_ax])
    te, fe = _edges(n_frames, n_time), _edges(n_bands, n_freq)
    masks = torch.zeros(n_time * n_freq, *shape)
    names = []
    for t in range(n_time):
        for f in range(n_freq):
            i = n_freq * t + f
            if len(shape) == 1:
                masks[i, te[t] : te[t + 1]] = 1.0
            elif t_ax == 1:
                masks[i, fe[f] : fe[f + 1], te[t] : te[t + 1]] = 1.0
            else:
                masks[i, te[t] : te[t + 1], fe[f] : fe[f + 1]] = 1.0
            names.append(f"t{t} f{f}")
    return Segmentation(masks, tuple(names), f"grid {n_time}x{n_freq}", time_axis=t_ax)


def time_segments(shape: tuple[int, ...], n: int = 10, *, time_axis: int | None = None) -> Segmentation:
    """``n`` segments along time, each covering every band (SLIME time); on a 1-D domain,
    ``n`` blocks of samples."""
    seg = grid(shape, n_time=n, n_freq=1, time_axis=time_axis)
    return Segmentation(seg.masks, tuple(f"t{t}" for t in range(n)), f"time {n}", time_axis=seg.time_axis)


def freq_segments(shape: tuple[int, ...], n: int = 10, *, time_axis: int | None = None) -> Segmentation:
    """``n`` segments along bands (lowest first), each covering every frame (SLIME frequency)."""
    if len(shape) == 1:
        raise ValueError(f"a 1-D domain of shape {tuple(shape)} has no frequency axis; use 'time:N'")
    seg = grid(shape, n_time=1, n_freq=n, time_axis=time_axis)
    return Segmentation(seg.masks, tuple(f"f{f}" for f in range(n)), f"freq {n}", time_axis=seg.time_axis)


def spec_for_shape(spec: str, shape: tuple[int, ...]) -> tuple[str, str | None]:
    """``spec`` as it applies to a domain of ``shape``, and a note when it had to change.

    A 1-D (waveform) domain has no frequency axis, so ``grid:TxF`` with F > 1 becomes
    ``time:T*F``: the same number of segments, all along time. Anything else is returned as is.

    Returns
    -------
    spec : str
    note : str or None
    """
    kind, _, arg = spec.partition(":")
    if len(tuple(shape)) != 1 or kind != "grid":
        return spec, None
    try:
        t, f = (int(v) for v in (arg or "5x4").split("x"))
    except ValueError:
        return spec, None  # from_spec says what is wrong with it
    if f == 1:
        return spec, None
    new = f"time:{t * f}"
    return new, (f"the domain {tuple(shape)} is a waveform with no frequency axis: segmentation "
                 f"{spec!r} becomes {new!r} (the same {t * f} segments, along time)")


def from_spec(spec: str, shape: tuple[int, ...], *, time_axis: int | None = None) -> Segmentation:
    """Build a segmentation from a config string: ``"grid:5x4"``, ``"time:10"``, ``"freq:8"``.

    ``time_axis`` as in :func:`grid` (1, bands x frames, by default; 0 for time-major).
    """
    kind, _, arg = spec.partition(":")
    try:
        if kind == "grid":
            t, f = (int(v) for v in (arg or "5x4").split("x"))
            return grid(shape, t, f, time_axis=time_axis)
        if kind == "time":
            return time_segments(shape, int(arg or 10), time_axis=time_axis)
        if kind == "freq":
            return freq_segments(shape, int(arg or 10), time_axis=time_axis)
    except ValueError as exc:
        raise ValueError(f"bad segmentation {spec!r} ({exc}); use 'grid:TxF' (e.g. grid:5x4), "
                         f"'time:N' or 'freq:N'") from None
    raise ValueError(
        f"unknown segmentation {spec!r}; use 'grid:TxF' (e.g. grid:5x4), 'time:N' or 'freq:N'"
    )


def top_k(weights: np.ndarray, k: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Indices of the ``k`` largest weights, descending.

    Parameters
    ----------
    weights : np.ndarray, shape (d,)
    k : int
    rng : numpy.random.Generator, optional
        Breaks ties: with it, tied weights come in a uniformly random order (one permutation
        of all ``d`` segments is drawn, whether or not there are ties, so the generator's
        state afterwards does not depend on the weights); without it, by lower index.

    Returns
    -------
    np.ndarray of int, shape (k,)
    """
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    tiebreak = np.arange(w.size) if rng is None else rng.permutation(w.size)
    order = np.lexsort((tiebreak, -w))
    return order[:k]


def selection_matrix(order: np.ndarray, d: int) -> np.ndarray:
    """Nested selections from a ranking: row ``k-1`` selects the first ``k`` entries of ``order``.

    Returns
    -------
    np.ndarray, shape (len(order), d), float32
    """
    z = np.zeros((len(order), d), dtype=np.float32)
    for k, idx in enumerate(order):
        z[k:, idx] = 1.0
    return z
