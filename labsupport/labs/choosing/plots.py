"""Bar charts of a row's measured figures (matplotlib)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .driver import Floor, Result

__all__ = ["latency_bars", "figure_bars"]


def latency_bars(results: Sequence[Result], floor: Floor, title: str) -> Figure:
    """p50 and p99 of each protocol as multiples of the raw TCP floor (log scale),
    with the bytes per message or operation written under each protocol's name."""
    figure, axes = plt.subplots(figsize=(8, 3.2))
    names = [f"{r.protocol}\n{r.bytes_per_op:.0f} B/op" for r in results]
    x = range(len(results))
    axes.bar([i - 0.2 for i in x], [r.p50 / floor.rtt for r in results], 0.4, label="p50")
    axes.bar([i + 0.2 for i in x], [r.p99 / floor.rtt for r in results], 0.4, label="p99")
    axes.set_xticks(list(x), names)
    axes.set_yscale("log")
    axes.set_ylabel("× raw TCP round trip")
    axes.set_title(title)
    axes.legend()
    figure.text(0.5, 0.005, "Caption: p50 (left bar) and p99 (right bar) per protocol, as "
                "multiples of the raw TCP round trip (log scale), loopback; bytes per operation "
                "under each name. The same figures are printed above the chart.", ha="center",
                fontsize=7, wrap=True)
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    plt.close(figure)  # shown once, by the cell that returns it
    return figure


def figure_bars(results: Sequence[Result], figures: dict[str, Callable[[Result], float]],
                title: str, *, log: bool = False) -> Figure:
    """One panel per named figure (e.g. ``{"wake-ups/min": lambda r: ...}``), a bar per protocol."""
    figure, panels = plt.subplots(1, len(figures), figsize=(4 * len(figures), 3.2), squeeze=False)
    for axes, (label, value) in zip(panels[0], figures.items(), strict=True):
        axes.bar([r.protocol for r in results], [value(r) for r in results], color="#1f6feb")
        axes.set_title(label, fontsize=10)
        axes.tick_params(axis="x", labelrotation=30)
        if log:
            axes.set_yscale("log")
    figure.suptitle(title)
    figure.text(0.5, 0.005, f"Caption: {', '.join(figures)}, one bar per protocol "
                f"({', '.join(r.protocol for r in results)}). The same figures are printed "
                "above the chart.", ha="center", fontsize=7, wrap=True)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    plt.close(figure)  # shown once, by the cell that returns it
    return figure
