"""The plots the labs draw: one bar per measurement, as ratios to the floor, labelled."""

from __future__ import annotations

import matplotlib
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from labsupport.plots import ratio_bars


def test_ratio_bars_draws_one_bar_per_measurement_as_a_ratio_to_the_floor():
    figure = ratio_bars({"protobuf": 91, "JSON": 203}, floor="protobuf", unit="bytes",
                        title="One user on the wire")
    assert isinstance(figure, Figure)
    (axes,) = figure.axes
    widths = []
    for bar in axes.patches:
        assert isinstance(bar, Rectangle)  # barh draws rectangles; a Patch has no width
        widths.append(bar.get_width())
    assert widths == pytest.approx([1.0, 203 / 91])
    assert [label.get_text() for label in axes.get_yticklabels()] == ["protobuf", "JSON"]
    assert [text.get_text() for text in axes.texts] == ["1.00× · 91 bytes", "2.23× · 203 bytes"]
    assert axes.get_xlabel() == "× protobuf"
    assert axes.get_title(loc="left") == "One user on the wire"


def test_the_floor_is_grey_and_the_others_are_not():
    figure = ratio_bars({"ping": 0.5, "message": 2.0}, floor="ping", unit="ms", title="t")
    floor_bar, other_bar = figure.axes[0].patches
    assert floor_bar.get_facecolor() != other_bar.get_facecolor()
    assert matplotlib.colors.to_hex(floor_bar.get_facecolor()) == "#8c959f"


def test_a_figure_is_closed_so_pyplot_keeps_none_open():
    import matplotlib.pyplot as plt

    ratio_bars({"a": 1, "b": 2}, floor="a", unit="ms", title="t")
    assert plt.get_fignums() == []


@pytest.mark.parametrize("measured, floor, message", [
    ({"a": 1.0}, "b", "the floor 'b' is not one of the measurements"),
    ({"a": 0.0, "b": 1.0}, "a", "must be above zero"),
])
def test_a_floor_that_cannot_be_divided_by_is_refused(measured, floor, message):
    with pytest.raises(ValueError, match=message):
        ratio_bars(measured, floor=floor, unit="ms", title="t")
