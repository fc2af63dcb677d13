"""Counts before clocks: what an exchange cost on the wire, independent of this machine.

:func:`count` turns what a tap recorded into a :class:`Counts`: TCP connections,
requests a client waited for, round trips, bytes each way (headers and framing
included) and messages each way. For the same operations against the same server
they are the same run after run; a clock is not. A profile's
:meth:`~.profiles.NetworkProfile.model_time` turns them into a time on a link.

Round trips are counted, not timed: one per TCP connection opened (the SYN /
SYN-ACK handshake before the first byte) plus one per request the client sent and
waited for (an HTTP/1.1 request, an HTTP/2 stream the client opened, a WebSocket
upgrade). No TLS here (the labs serve cleartext on loopback); TLS 1.3 would add one
round trip per connection.

``ends`` says how each connection ended (:mod:`.records`: a FIN from either side, a
reset from either side, cut by the tap, or closed by the tap), in the order they
opened; ``endings()`` sums them up in a line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from .parsers import HTTP_METHODS, Message
from .records import DOWN, UP
from .tap import WireTap

__all__ = ["Counts", "count", "requests_in", "TIMING_FRAMES"]

_METHODS = tuple(m.decode() for m in HTTP_METHODS)


@dataclass(frozen=True)
class Counts:
    """What crossed the wire for one operation (or a batch of them)."""

    connections: int
    requests: int
    bytes_up: int
    bytes_down: int
    messages_up: int
    messages_down: int
    # How each connection ended ("open" if it had not when counted). Not compared: a
    # client's close reaches the tap a moment after the client returns.
    ends: tuple[str, ...] = field(default=(), compare=False)

    def endings(self) -> str:
        """How the connections ended, e.g. ``"1 FIN from client, 1 cut by the tap"``."""
        tally = Counter(self.ends)
        return ", ".join(f"{n} {end}" for end, n in tally.items()) or "no connections"

    @property
    def round_trips(self) -> int:
        """TCP handshakes plus requests waited for."""
        return self.connections + self.requests

    @property
    def bytes(self) -> int:
        return self.bytes_up + self.bytes_down

    def per(self, operations: int) -> dict[str, float]:
        """Every count divided by ``operations`` (and the round trips), as a row."""
        row = {k: v for k, v in asdict(self).items() if k != "ends"}
        row["round_trips"] = self.round_trips
        return {k: round(v / operations, 2) for k, v in row.items()}


def requests_in(messages: Iterable[Message]) -> int:
    """Requests a client sent and waited for: HTTP/1.1 requests (a WebSocket upgrade is
    one) and HTTP/2 streams the client opened (its first HEADERS frame on each)."""
    total, streams = 0, set()
    for m in messages:
        if m.direction != UP:
            continue
        if m.protocol == "HTTP/1.1" and m.label.startswith(_METHODS):
            total += 1
        elif m.protocol == "HTTP/2" and m.label.startswith("HEADERS s"):
            streams.add((m.connection, m.label.split()[1]))
    return total + len(streams)


# HTTP/2 frames whose number depends on when each side happened to read (flow control) or
# on a timer (PING): gRPC's BDP probe sends them, as it does in production.
TIMING_FRAMES = ("WINDOWUPDATE", "PING")


def count(tap: WireTap, *, without: tuple[str, ...] = ()) -> Counts:
    """The counts of what ``tap`` (recording) saw since its last ``reset()``.

    ``without`` leaves out the messages whose label starts with one of its prefixes, bytes
    and all: ``count(tap, without=TIMING_FRAMES)`` is the same run after run for gRPC."""
    tap.settle()
    messages, connections = tap.messages(), tap.connections
    left_out = [m for m in messages if without and m.label.startswith(without)]
    messages = [m for m in messages if not (without and m.label.startswith(without))]
    return Counts(len(connections), requests_in(messages),
                  tap.bytes_up - sum(m.size for m in left_out if m.direction == UP),
                  tap.bytes_down - sum(m.size for m in left_out if m.direction == DOWN),
                  sum(m.direction == UP for m in messages),
                  sum(m.direction == DOWN for m in messages),
                  tuple(c.end or "open" for c in connections))
