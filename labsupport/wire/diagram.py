"""A sequence diagram of what a wire tap recorded (matplotlib): its messages, and how
each connection ended (a FIN, a reset, a cut by the tap)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .parsers import Message
from .records import CLOSED_BY_TAP, CUT, FIN_CLIENT, RST_CLIENT, UP, Connection

__all__ = ["sequence_diagram"]


@dataclass(frozen=True)
class _End:
    """A row of the diagram for the end of a connection."""

    connection: int
    end: str
    time: float


def _ends(connections: Iterable[Connection]) -> list[_End]:
    return [_End(c.number, c.end, c.ended) for c in connections
            if c.end is not None and c.ended is not None]


def _draw_end(axes: Axes, row: _End, y: float) -> None:
    """A dashed line from the side that ended it (both sides for the tap's own ends)."""
    reset = row.end.startswith("RST") or row.end == CUT
    colour = "#000" if reset else "#666"
    xs: tuple[tuple[float, float], ...]
    if row.end in (CUT, CLOSED_BY_TAP):
        xs = (0.5, 0.0), (0.5, 1.0)
    else:
        start = 0.0 if row.end in (FIN_CLIENT, RST_CLIENT) else 1.0
        xs = ((start, 1.0 - start),)
    for begin, end in xs:
        axes.annotate("", xy=(end, y), xytext=(begin, y), arrowprops={
            "arrowstyle": "-[" if reset else "->", "color": colour, "lw": 1.0, "ls": "--"})
    mark = "✕ " if reset else ""
    axes.text(0.5, y - 0.12, f"#{row.connection} {mark}{row.end}", ha="center", va="bottom",
              fontsize=8, color=colour, style="italic")


def sequence_diagram(messages: Sequence[Message], *, limit: int = 16,
                     title: str | None = None, connections: Iterable[Connection] = ()
                     ) -> Figure:
    """Client on the left, server on the right, time downwards; one arrow a message.

    Each arrow says the connection, the message and its bytes; the left margin
    says when its last byte arrived, in ms after the first message. With
    ``connections``, how each ended is a row too (dashed: a FIN; ✕ and a bar: a reset).
    """
    rows: list[Message | _End] = sorted([*messages, *_ends(connections)],
                                        key=lambda r: r.time)
    shown = rows[:limit]
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
        axes.text(-0.05, y, f"{(message.time - start) * 1000:7.2f} ms", ha="right",
                  va="center", fontsize=7, color="#555", family="monospace")
        if isinstance(message, _End):
            _draw_end(axes, message, y)
            continue
        left_to_right = message.direction == UP
        colour = "#1f6feb" if left_to_right else "#d1242f"
        axes.annotate("", xy=(1 if left_to_right else 0, y), xytext=(0 if left_to_right else 1, y),
                      arrowprops={"arrowstyle": "->", "color": colour, "lw": 1.2})
        label = f"#{message.connection} {message.protocol} {message.label[:44]}  · {message.size} B"
        axes.text(0.5, y - 0.12, label, ha="center", va="bottom", fontsize=8, color=colour)
    hidden = len(rows) - len(shown)
    heading = title or "what crossed the wire"
    if hidden > 0:
        heading += f" (first {len(shown)} of {len(rows)} rows)"
    axes.set_title(heading, fontsize=10)
    figure.tight_layout()
    plt.close(figure)  # shown once, by the cell that returns it
    return figure
