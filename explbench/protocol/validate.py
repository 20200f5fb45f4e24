"""Validating what an explainer returns: one finite weight per segment (a dense map projected onto the grid), or a failure that says why."""

from __future__ import annotations

import traceback

import math
import numpy as np
import torch
from explbench.api.explainer import Explanation
from explbench.core.segmentation import REDUCTIONS, Segmentation


class ExplainerFailure(RuntimeError):
    """An explanation the harness cannot score (wrong shape, NaN, …)."""


def _shape_words(segments: Segmentation) -> str:
    return f"({segments.d},): one weight per segment of the scoring segmentation ({segments.kind}), in segment order"


def validate_explanation(exp: object, segments: Segmentation, name: str,
                         aggregation: str = "mean") -> np.ndarray:
    """The weights the harness scores for an explanation, or an error saying what is wrong.

    One function for the protocol and the conformance check. Rules: ``exp`` is an
    :class:`Explanation`; ``weights``, when given, is a real array of shape exactly ``(d,)``
    (a ``(4, 5)`` or ``(1, 20)`` array is refused, not flattened: its order is not known);
    ``dense``, when given, has exactly the domain's shape; neither holds NaN or infinity. Without
    weights, the dense map is projected by ``aggregation``.

    Parameters
    ----------
    exp : object
        What ``explain`` returned.
    segments : Segmentation
        The scoring segmentation (``d`` segments over ``domain_shape``).
    name : str
        The explainer's name, for the messages.
    aggregation : str
        How a dense map without weights is projected (:meth:`Segmentation.project`).

    Returns
    -------
    np.ndarray, shape (d,), float64, finite

    Raises
    ------
    ExplainerFailure
        Naming the explainer, the shape (or values) got and what was expected.
    """
    if not isinstance(exp, Explanation):
        raise ExplainerFailure(f"{name}.explain returned {type(exp).__name__}, not an "
                               f"explbench.Explanation; return Explanation(weights=...)")
    dense = None
    if exp.dense is not None:
        dense = _real_array(exp.dense, name, "dense map")
        if dense.shape != segments.shape:
            raise ExplainerFailure(
                f"{name} returned a dense map of shape {dense.shape}; expected the domain shape "
                f"{segments.shape} (the shape of the input x)")
        _finite(dense, name, "dense map", dense.size)
    if exp.weights is None:
        if dense is None:
            raise ExplainerFailure(
                f"{name} returned an Explanation with neither weights nor a dense map; set weights "
                f"to an array of shape {_shape_words(segments)}, or dense to an array of the domain "
                f"shape {segments.shape}")
        return segments.project(dense, reduce=aggregation)
    w = _real_array(exp.weights, name, "weights")
    if w.shape != (segments.d,):
        hint = ""
        if w.size == segments.d:
            hint = (f"; it has the right number of values, but the harness does not guess their "
                    f"order: flatten it yourself (e.g. .reshape(-1)) only if it is segment order "
                    f"(segments.names)")
        raise ExplainerFailure(
            f"{name} returned weights of shape {w.shape}; expected {_shape_words(segments)}{hint}")
    _finite(w, name, "weights", segments.d)
    return w


def _real_array(value: object, name: str, what: str) -> np.ndarray:
    if torch.is_tensor(value):
        value = value.detach().cpu().numpy()
    a = np.asarray(value)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool) \
            or np.issubdtype(a.dtype, np.complexfloating):
        raise ExplainerFailure(f"{name} returned {what} of dtype {a.dtype}; expected real numbers")
    return a.astype(np.float64)


def _finite(a: np.ndarray, name: str, what: str, n: int) -> None:
    nan, inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
    if nan or inf:
        where = ""
        if a.ndim == 1:
            bad = np.flatnonzero(~np.isfinite(a))
            where = f" (segments {', '.join(map(str, bad[:8].tolist()))}{', …' if bad.size > 8 else ''})"
        raise ExplainerFailure(
            f"{name} returned {what} with {nan} NaN and {inf} infinite values of {n}{where}; check "
            f"divisions by zero (e.g. normalising by a zero norm) and the surrogate fit")


def finite_or_none(value: object) -> float | None:
    """``float(value)`` when it is a finite real number, else None (records hold no NaN)."""
    if value is None:
        return None
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def split_name(name: str) -> tuple[str, str | None]:
    """``"saliency[mean_abs]"`` -> ``("saliency", "mean_abs")``; ``"lime"`` -> ``("lime", None)``."""
    if name.endswith("]") and "[" in name:
        base, _, agg = name[:-1].rpartition("[")
        if agg in REDUCTIONS:
            return base, agg
    return name, None


#: characters of a traceback kept in a failed record (its last ones: where it was raised)
TRACEBACK_CHARS = 4000


def traceback_text(exc: BaseException) -> str:
    """The exception's traceback as text, at most :data:`TRACEBACK_CHARS` (its end)."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return text[-TRACEBACK_CHARS:]
