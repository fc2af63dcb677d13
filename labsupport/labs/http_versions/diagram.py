"""Handshakes as sequence diagrams: client left, server right, one slanted arrow per flight."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .handshakes import Handshake

__all__ = ["flights_diagram"]


def flights_diagram(handshakes: Handshake | Sequence[Handshake]) -> Figure:
    """One panel per handshake, side by side; arrows going down as time passes.

    Solid arrows go client → server, dashed ones server → client (readable without
    colour); the left margin numbers the round trips; the last arrow carries the
    response's first byte.
    """
    shown = [handshakes] if isinstance(handshakes, Handshake) else list(handshakes)
    steps = max(len(h.flights) for h in shown)
    figure, panels = plt.subplots(1, len(shown), figsize=(3.6 * len(shown), 0.9 + 0.75 * steps),
                                  squeeze=False)
    for axes, handshake in zip(panels[0], shown, strict=True):
        axes.set_xlim(-0.25, 1.1)
        axes.set_ylim(steps + 0.2, -0.7)
        axes.axis("off")
        for x, name in ((0, "client"), (1, "server")):
            axes.plot([x, x], [-0.3, steps], color="#888", lw=1)
            axes.text(x, -0.5, name, ha="center", weight="bold", fontsize=9)
        for row, flight in enumerate(handshake.flights):
            up = flight.sender == "client"
            start, end = (0, 1) if up else (1, 0)
            axes.annotate("", xy=(end, row + 0.85), xytext=(start, row + 0.15),
                          arrowprops={"arrowstyle": "->", "lw": 1.3,
                                      "linestyle": "-" if up else "--",
                                      "color": "#1f6feb" if up else "#9a3412"})
            label = textwrap.fill(flight.label, 34, break_on_hyphens=False)
            axes.text(0.5, row + 0.5, label, ha="center", va="center", fontsize=6.5,
                      bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})
            if up:
                axes.text(-0.08, row + 0.5, f"RT {flight.round}", ha="right", va="center",
                          fontsize=8, weight="bold")
        trips = "round trip" if handshake.round_trips == 1 else "round trips"
        axes.set_title(f"{handshake.name}\n{handshake.round_trips} {trips} to the first byte",
                       fontsize=9)
    figure.tight_layout()
    plt.close(figure)
    return figure
