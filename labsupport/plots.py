"""Measured numbers as pictures: each measurement as a ratio to a floor taken in the same run.

    from labsupport import plots
    plots.ratio_bars({"protobuf": 91, "JSON": 203}, floor="protobuf", unit="bytes",
                     title="One user on the wire")

The figure is made with pyplot and closed at once, so a notebook shows it once (the inline
backend renders the returned figure) and plain Python never opens a window.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

__all__ = ["ratio_bars"]

FLOOR_COLOUR = "#8c959f"
BAR_COLOUR = "#0969da"


def ratio_bars(measured: dict[str, float], *, floor: str, unit: str, title: str) -> Figure:
    """Horizontal bars of each measurement divided by ``measured[floor]``, top to bottom.

    Each bar is labelled with its ratio and the measured value ("2.23× · 203 bytes"); the
    floor's own bar is 1× and grey, and a dotted line marks 1×.
    """
    if floor not in measured:
        raise ValueError(f"the floor {floor!r} is not one of the measurements {list(measured)}")
    base = measured[floor]
    if not base > 0:
        raise ValueError(f"the floor {floor!r} must be above zero to divide by, got {base!r}")
    names = list(measured)
    ratios = [measured[name] / base for name in names]
    figure, axes = plt.subplots(figsize=(7.5, 0.9 + 0.5 * len(names)), layout="constrained")
    bars = axes.barh(names, ratios,
                     color=[FLOOR_COLOUR if name == floor else BAR_COLOUR for name in names])
    axes.bar_label(bars, padding=4, labels=[
        f"{measured[name] / base:.2f}× · {_amount(measured[name])} {unit}" for name in names])
    axes.invert_yaxis()
    axes.axvline(1, color="#57606a", linestyle=":", linewidth=1)
    axes.set_xlim(0, max(ratios) * 1.45)
    axes.set_xlabel(f"× {floor}")
    axes.set_title(title, loc="left")
    axes.spines[["top", "right"]].set_visible(False)
    plt.close(figure)
    return figure


def _amount(value: float) -> str:
    return f"{value:g}" if float(value).is_integer() else f"{value:.2f}"
