"""Forest plots: PNG bytes, stable for the same input, sensible size, rows in order,
references and rows without an interval labelled, bad input refused."""

from __future__ import annotations

import math
import struct

import pytest

from explbench.results.forest import (
    ForestRow,
    display_label,
    forest_figure,
    forest_plot,
    order,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAN = math.nan


def _rows() -> list[ForestRow]:
    return [
        ForestRow("lime", 0.42, 0.30, 0.55),
        ForestRow("random", 0.12, 0.05, 0.22, kind="floor"),
        ForestRow("oracle-norm", 0.91, 0.82, 0.96, kind="ceiling"),
        ForestRow("kernelshap", 0.51, 0.39, 0.63),
        ForestRow("saliency", 0.20, NAN, NAN),
    ]


def _size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels from the IHDR chunk."""
    assert png[12:16] == b"IHDR", "the first PNG chunk must be IHDR"
    return struct.unpack(">II", png[16:24])


def test_png_signature():
    png = forest_plot(_rows(), "cw-spectrogram")
    assert png[:8] == PNG_SIGNATURE


def test_bytes_are_stable_for_the_same_input():
    a = forest_plot(_rows(), "cw-spectrogram")
    b = forest_plot(_rows(), "cw-spectrogram")
    assert a == b, "the same rows and title must give byte-identical PNGs"
    assert b"Software" not in a and b"matplotlib" not in a.lower()


def test_input_order_does_not_matter_but_content_does():
    rows = _rows()
    assert forest_plot(rows, "g") == forest_plot(list(reversed(rows)), "g")
    assert forest_plot(rows, "g") != forest_plot(rows, "another generator")


def test_image_size_is_sensible_and_grows_with_rows():
    w1, h1 = _size(forest_plot(_rows()[:1], "g"))
    w5, h5 = _size(forest_plot(_rows(), "g"))
    many = [ForestRow(f"explainer-{i:02d}", i / 20, max(0.0, i / 20 - 0.1), min(1.0, i / 20 + 0.1))
            for i in range(20)]
    w20, h20 = _size(forest_plot(many, "g"))
    assert w1 == w5 == w20 == 640
    assert 100 <= h1 < h5 < h20 <= 1000, (h1, h5, h20)


def test_order_is_by_value_descending_with_missing_values_last():
    rows = _rows() + [ForestRow("broken", NAN, NAN, NAN), ForestRow("tied-lime", 0.42, 0.3, 0.5)]
    got = [r.label for r in order(rows)]
    assert got == ["oracle-norm", "kernelshap", "lime", "tied-lime", "saliency", "random", "broken"]


def test_figure_draws_rows_in_order_top_to_bottom():
    fig = forest_figure(_rows(), "g")
    (ax,) = fig.axes
    ticks = sorted(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels())), reverse=True)
    assert [label for _, label in ticks] == [display_label(r) for r in order(_rows())]
    assert ax.get_xlim() == (0.0, 1.0)
    assert ax.get_xlabel() == "FR(3)"


def test_references_and_missing_intervals_are_labelled():
    labels = {r.label: display_label(r) for r in _rows()}
    assert labels["random"] == "random (floor)"
    assert labels["oracle-norm"] == "oracle-norm (ceiling)"
    assert labels["saliency"] == "saliency (n too small)"
    assert labels["lime"] == "lime"
    assert display_label(ForestRow("broken", NAN, NAN, NAN)) == "broken (no value)"


def test_references_have_their_own_colour():
    fig = forest_figure(_rows(), "g")
    colours = {t.get_text(): t.get_color() for t in fig.axes[0].get_yticklabels()}
    assert colours["random (floor)"] != colours["lime"]
    assert colours["oracle-norm (ceiling)"] != colours["lime"]
    assert colours["random (floor)"] != colours["oracle-norm (ceiling)"]


def test_nan_rows_do_not_crash():
    rows = [ForestRow("a", 0.3, NAN, NAN), ForestRow("b", NAN, NAN, NAN),
            ForestRow("random", 0.1, NAN, 0.2, kind="floor")]
    png = forest_plot(rows, "only NaN intervals")
    assert png[:8] == PNG_SIGNATURE
    assert forest_plot([ForestRow("b", NAN, NAN, NAN)], "nothing to draw")[:8] == PNG_SIGNATURE


def test_dollar_signs_are_not_mathtext():
    assert forest_plot([ForestRow("cost $5 $x", 0.5, 0.4, 0.6)], "$g$")[:8] == PNG_SIGNATURE


def test_empty_rows_are_refused():
    with pytest.raises(ValueError, match="at least one row"):
        forest_plot([], "g")


@pytest.mark.parametrize("kwargs, match", [
    ({"kind": "oracle"}, "kind"),
    ({"value": 1.5}, r"\[0, 1\]"),
    ({"low": -0.1}, r"\[0, 1\]"),
    ({"low": 0.6, "high": 0.4}, "low > high"),
    ({"value": math.inf}, "infinite"),
])
def test_bad_rows_are_refused(kwargs, match):
    fields = {"label": "x", "value": 0.5, "low": 0.4, "high": 0.6, **kwargs}
    with pytest.raises(ValueError, match=match):
        ForestRow(**fields)


def test_non_rows_are_refused():
    with pytest.raises(TypeError, match="ForestRow"):
        forest_plot([("lime", 0.5, 0.4, 0.6)], "g")  # type: ignore[list-item]
    with pytest.raises(TypeError, match="title"):
        forest_plot(_rows(), None)  # type: ignore[arg-type]
