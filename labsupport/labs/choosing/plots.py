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
    figure.tight_layout()
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
    figure.tight_layout()
    plt.close(figure)  # shown once, by the cell that returns it
    return figure
