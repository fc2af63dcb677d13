"""What a wire tap records: connections, the chunks read on them, their directions, and
how each connection ended.

The bottom of the wire layer: the parsers, the diagram and the tap build on it.

How a connection ends (``Connection.end``), the side that ended it first:

- :data:`FIN_CLIENT`, :data:`FIN_SERVER`: an orderly close (``close()`` or
  ``shutdown()``: a FIN, the end of that side's byte stream);
- :data:`RST_CLIENT`, :data:`RST_SERVER`: an abortive close, a TCP reset (the tap's
  read failed with ``ECONNRESET``; e.g. ``SO_LINGER`` 0, a crashed process, or a
  close with unread data): the tap passes the reset on to the other side;
- :data:`CUT`: the tap cut it (``WireTap.cut``): a reset to both sides, as a dropped
  link or a NAT that forgot the connection looks to an application;
- :data:`CLOSED_BY_TAP`: still open when the tap closed (``WireTap.close``), which
  ends it with a FIN to both sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Chunk", "Connection", "UP", "DOWN", "FIN_CLIENT", "FIN_SERVER", "RST_CLIENT",
           "RST_SERVER", "CUT", "CLOSED_BY_TAP", "ENDS", "RESETS"]

UP = "client→server"
DOWN = "server→client"

FIN_CLIENT = "FIN from client"
FIN_SERVER = "FIN from server"
RST_CLIENT = "RST from client"
RST_SERVER = "RST from server"
CUT = "cut by the tap"
CLOSED_BY_TAP = "closed by the tap"
ENDS = (FIN_CLIENT, FIN_SERVER, RST_CLIENT, RST_SERVER, CUT, CLOSED_BY_TAP)
RESETS = (RST_CLIENT, RST_SERVER, CUT)   # the ends passed on as a reset, not a FIN


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
    end: str | None = None          # one of ENDS, once it ended (None while open)
    ended: float | None = None      # when the first side ended it (perf_counter s)

    def stream(self, direction: str) -> bytes:
        """Every byte that went ``direction`` on this connection."""
        return b"".join(c.data for c in self.chunks if c.direction == direction)
