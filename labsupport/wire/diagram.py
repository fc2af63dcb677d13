"""A sequence diagram of what a wire tap recorded (matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .parsers import Message
from .records import UP

__all__ = ["sequence_diagram"]


def sequence_diagram(messages: Sequence[Message], *, limit: int = 16,
                     title: str | None = None) -> Figure:
    """Client on the left, server on the right, time downwards; one arrow a message.

    Each arrow says the connection, the message and its bytes; the left margin
    says when its last byte arrived, in ms after the first message.
    """
    shown = list(messages)[:limit]
    height = 1.0 + 0.42 * max(len(shown), 1)
    figure, axes = plt.subplots(figsize=(9, height))
    axes.set_xlim(-0.35, 1.15)
    axes.set_ylim(len(shown) + 0.3, -0.8)
    axes.axis("off")
    for x, name in ((0, "client"), (1, "server")):
        axes.plot([x, x], [-0.3, len(shown) + 0.2], color="#888", lw=1)
        axes.text(x, -0.55, name, ha="center", va="center", weight="bold")
    start = shown[0].time if shown else 0.0
    for row, message in enumerate(shown):
        y = row + 0.4
        left_to_right = message.direction == UP
        colour = "#1f6feb" if left_to_right else "#d1242f"
        axes.annotate("", xy=(1 if left_to_right else 0, y), xytext=(0 if left_to_right else 1, y),
                      arrowprops={"arrowstyle": "->", "color": colour, "lw": 1.2})
        label = f"#{message.connection} {message.protocol} {message.label[:44]}  · {message.size} B"
        axes.text(0.5, y - 0.12, label, ha="center", va="bottom", fontsize=8, color=colour)
        axes.text(-0.05, y, f"{(message.time - start) * 1000:7.2f} ms", ha="right",
                  va="center", fontsize=7, color="#555", family="monospace")
    hidden = len(messages) - len(shown)
    heading = title or "what crossed the wire"
    if hidden > 0:
        heading += f" (first {len(shown)} of {len(messages)} messages)"
    axes.set_title(heading, fontsize=10)
    figure.tight_layout()
    plt.close(figure)  # shown once, by the cell that returns it
    return figure
