"""What a wire tap records: connections, the chunks read on them, and their directions.

The bottom of the wire layer: the parsers, the diagram and the tap build on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Chunk", "Connection", "UP", "DOWN"]

UP = "client→server"
DOWN = "server→client"


@dataclass(frozen=True)
class Chunk:
    """What one read returned: ``data`` going ``direction`` at ``time`` (perf_counter s)."""

    direction: str
    time: float
    data: bytes


@dataclass
class Connection:
    """One TCP connection through the tap and the chunks seen on it, in order."""

    number: int
    opened: float
    chunks: list[Chunk] = field(default_factory=list)
    closed: float | None = None

    def stream(self, direction: str) -> bytes:
        """Every byte that went ``direction`` on this connection."""
        return b"".join(c.data for c in self.chunks if c.direction == direction)
