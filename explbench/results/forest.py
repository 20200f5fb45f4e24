"""A forest plot of the headline, FR(3), for one attack generator.

One row per explainer: its flip rate as a point and its 95 % interval as a horizontal line,
rows sorted by flip rate (highest on top). The references are drawn beside them in their own
colour and marker and named as such: ``random`` is the floor, the oracle (which sees δ) the
ceiling; a dotted vertical line marks each reference's value across the plot. A row without
an interval (too few clusters) is drawn as a point only and labelled "(n too small)".

The figure is a :class:`matplotlib.figure.Figure` created directly (no pyplot, no global
state) and rendered by Agg; the PNG carries no software or time stamp, so the same rows give
the same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

__all__ = ["KINDS", "ForestRow", "display_label", "forest_figure", "forest_plot", "order", "width"]

#: what a row is: an explainer, the floor (random) or the ceiling (oracle)
KINDS = ("explainer", "floor", "ceiling")

#: per kind: (colour, marker, legend text)
_STYLE = {
    "explainer": ("#1f4e79", "o", "explainer (95 % interval)"),
    "floor": ("#7f7f7f", "s", "floor (random)"),
    "ceiling": ("#c0504d", "D", "ceiling (oracle)"),
}
_SUFFIX = {"explainer": "", "floor": " (floor)", "ceiling": " (ceiling)"}

_WIDTH_IN = 6.4
#: inches per character of a y tick label (10 pt DejaVu Sans, with some slack)
_INCH_PER_CHAR = 0.085
#: inches kept for the axes, the legend and the margins besides the labels
_PLOT_IN = 4.2
_DPI = 100


@dataclass(frozen=True)
class ForestRow:
    """One row of a forest plot.

    Attributes
    ----------
    label : str
        The explainer's name.
    value : float
        Its FR(3), in [0, 1]; NaN when it has none.
    low, high : float
        Its 95 % interval, within [0, 1]; NaN (either) when there is none ("n too small").
    kind : str
        ``"explainer"``, ``"floor"`` (random) or ``"ceiling"`` (oracle).
    """

    label: str
    value: float
    low: float
    high: float
    kind: str = "explainer"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind of row {self.label!r} must be one of {KINDS}, got {self.kind!r}")
        for name in ("value", "low", "high"):
            x = float(getattr(self, name))
            object.__setattr__(self, name, x)
            if math.isfinite(x) and not 0.0 <= x <= 1.0:
                raise ValueError(f"{name} of row {self.label!r} must lie in [0, 1] (a flip rate), got {x}")
            if math.isinf(x):
                raise ValueError(f"{name} of row {self.label!r} is infinite")
        if self.has_interval and self.low > self.high:
            raise ValueError(f"row {self.label!r} has low > high ({self.low} > {self.high})")

    @property
    def has_value(self) -> bool:
        return not math.isnan(self.value)

    @property
    def has_interval(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))


def order(rows: Sequence[ForestRow]) -> list[ForestRow]:
    """The rows as drawn from top to bottom: by value descending, rows without a value last.

    Ties keep their input order (the sort is stable).

    Parameters
    ----------
    rows : sequence of ForestRow, length r

    Returns
    -------
    list of ForestRow, length r
    """
    return sorted(rows, key=lambda r: (not r.has_value, -r.value if r.has_value else 0.0))


def display_label(row: ForestRow) -> str:
    """The row's label as shown: its name, ``(floor)``/``(ceiling)`` for references, and
    ``(n too small)`` when it has a value but no interval (``(no value)`` when it has neither)."""
    text = row.label + _SUFFIX[row.kind]
    if not row.has_value:
        return text + " (no value)"
    if not row.has_interval:
        return text + " (n too small)"
    return text


def width(rows: Sequence[ForestRow]) -> float:
    """The figure's width in inches: 6.4, or more when the longest label (e.g. a merged row
    ``"a = b = c"``) would leave the axes less than about 4 in.

    Parameters
    ----------
    rows : sequence of ForestRow

    Returns
    -------
    float
        ``max(6.4, 0.085 * longest display label + 4.2)``, rounded up to 0.1 in.
    """
    longest = max((len(display_label(r)) for r in rows), default=0)
    return max(_WIDTH_IN, math.ceil((_INCH_PER_CHAR * longest + _PLOT_IN) * 10) / 10)


def _safe(text: str) -> str:
    """Text safe for matplotlib (no mathtext from ``$``)."""
    return str(text).replace("$", r"\$")


def _check(rows: Sequence[ForestRow], title: str) -> list[ForestRow]:
    if not isinstance(title, str):
        raise TypeError(f"title must be a string, got {type(title).__name__}")
    rows = list(rows)
    if not rows:
        raise ValueError("a forest plot needs at least one row, got none")
    bad = [type(r).__name__ for r in rows if not isinstance(r, ForestRow)]
    if bad:
        raise TypeError(f"rows must be ForestRow, got {sorted(set(bad))}")
    return rows


def forest_figure(rows: Sequence[ForestRow], title: str) -> Figure:
    """The forest plot as a figure (what :func:`forest_plot` renders).

    Parameters
    ----------
    rows : sequence of ForestRow, length r >= 1
        In any order; drawn in :func:`order`'s order, top to bottom.
    title : str
        The plot's title (e.g. the attack generator).

    Returns
    -------
    matplotlib.figure.Figure
        :func:`width` in wide (6.4 in unless labels are long), ``1.5 + 0.32 r`` in high,
        100 dpi, one axes whose y tick labels are the
        :func:`display_label` of the rows, top to bottom.

    Raises
    ------
    ValueError
        When ``rows`` is empty.
    TypeError
        When a row is not a :class:`ForestRow` or the title not a string.
    """
    ordered = order(_check(rows, title))
    r = len(ordered)
    fig = Figure(figsize=(width(ordered), 1.5 + 0.32 * r), dpi=_DPI, layout="constrained")
    ax = fig.add_subplot()
    ys = [r - 1 - i for i in range(r)]  # first row on top
    for y, row in zip(ys, ordered):
        colour, marker, _ = _STYLE[row.kind]
        if row.kind != "explainer" and row.has_value:
            ax.axvline(row.value, color=colour, linestyle=":", linewidth=1.0, zorder=1)
        if row.has_value and row.has_interval:
            ax.hlines(y, row.low, row.high, color=colour, linewidth=2.0, zorder=2)
        if row.has_value:
            ax.plot([row.value], [y], linestyle="none", marker=marker, markersize=7,
                    color=colour, markeredgecolor="white" if row.has_interval else colour,
                    markerfacecolor=colour if row.has_interval else "white",
                    clip_on=False, zorder=3)
    ax.set_yticks(ys, [_safe(display_label(row)) for row in ordered])
    for tick, row in zip(ax.get_yticklabels(), ordered):
        tick.set_color(_STYLE[row.kind][0])
    ax.set_ylim(-0.7, r - 0.3)
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("FR(3)")
    fig.suptitle(_safe(title), x=0.02, horizontalalignment="left")
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    kinds = [k for k in KINDS if any(row.kind == k for row in ordered)]
    handles = [Line2D([], [], color=_STYLE[k][0], marker=_STYLE[k][1], linewidth=2.0 if k == "explainer" else 0,
                      linestyle="-" if k == "explainer" else ":", label=_STYLE[k][2]) for k in kinds]
    if any(row.has_value and not row.has_interval for row in ordered):
        handles.append(Line2D([], [], color="#555555", marker="o", markerfacecolor="white",
                              linestyle="none", label="no interval (n too small)"))
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.02), ncols=2,
              frameon=False, fontsize="small", borderaxespad=0.0)
    return fig


def forest_plot(rows: Sequence[ForestRow], title: str) -> bytes:
    """The forest plot of one attack generator as PNG bytes.

    Parameters
    ----------
    rows : sequence of ForestRow, length r >= 1
        Explainers and references, in any order.
    title : str

    Returns
    -------
    bytes
        A PNG of ``100 width(rows) x 100 (1.5 + 0.32 r)`` pixels (640 wide unless labels are
        long); the same rows and title give the same
        bytes (no software or time stamp is written).

    Raises
    ------
    ValueError
        When ``rows`` is empty.
    TypeError
        When a row is not a :class:`ForestRow` or the title not a string.
    """
    fig = forest_figure(rows, title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()
