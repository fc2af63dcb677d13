"""Shaping one direction of a tapped connection to a :class:`~.profiles.NetworkProfile`.

A :class:`Link` takes the bytes the tap read, works out when each would reach the
other end of the profile's link, and a thread of its own hands them on at that time:

- **handshake**: nothing leaves either side before one RTT after the connection
  opened (the client's ``connect()`` returns at once against the tap, a real
  one after the SYN / SYN-ACK round trip);
- **bandwidth**: the bytes queue for the direction's link and leave at its rate;
- **delay and jitter**: each read arrives one-way delay (RTT / 2) later, plus a
  normal jitter sample (seeded), never before the bytes sent ahead of it (TCP
  delivers in order);
- **loss, a model of TCP's, clearly not IP's**: each 1,460-byte segment is lost
  with the profile's probability (seeded); a lost segment arrives one
  retransmission timeout (RTO) late and, since TCP delivers in order, the byte
  stream behind it stalls too. RTO = max(200 ms, RTT + 4 × jitter): Linux's
  minimum RTO and RFC 6298's formula with the jitter standing for RTTVAR. Fast
  retransmit (one RTT instead of an RTO when later segments keep arriving) is not
  modelled, so this is the pessimistic case of a tail loss.

Which segments are lost is a :class:`LossPattern`: by default one per link, drawn from
the tap's seed at the profile's rate; a pattern given to the tap (``WireTap(port,
loss=LossPattern(0.015, seed=1))``) names the lost segments of the server's stream
instead, by number, so a UDP relay asking the same pattern about datagram numbers loses
the same packets (lab 10 compares HTTP/2 and HTTP/3 that way).

Every loss is kept on ``link.stalls`` as (direction, byte offset of the lost segment).
"""

from __future__ import annotations

import collections
import random
import socket
import threading
import time
from dataclasses import dataclass, field

from .profiles import NetworkProfile
from .records import UP

__all__ = ["Link", "LossPattern", "SEGMENT", "rto"]

SEGMENT = 1460          # a TCP segment's payload on Ethernet (MSS)
MIN_RTO = 0.200         # Linux TCP_RTO_MIN


def rto(profile: NetworkProfile) -> float:
    """The retransmission timeout of the loss model (s)."""
    return max(MIN_RTO, profile.rtt + 4 * profile.jitter)


@dataclass(frozen=True)
class LossPattern:
    """Which packets of one direction are lost: packet ``n`` (0, 1, 2, ...: a TCP segment
    or a UDP datagram) with probability ``rate``, drawn from ``seed``; the first ``spare``
    never (so a handshake is not part of an experiment). The same seed loses the same
    numbers, run after run."""

    rate: float
    seed: int = 1
    spare: int = 8
    _draws: list[float] = field(default_factory=list, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def lost(self, number: int) -> bool:
        """Whether packet ``number`` is lost."""
        if number < self.spare or self.rate <= 0:
            return False
        with self._lock:
            if len(self._draws) <= number:    # the n-th draw of the seed decides packet n
                source = random.Random(self.seed)
                self._draws[:] = [source.random() for _ in range(max(2 * number, 1024))]
            return self._draws[number] < self.rate


class Link:
    """One direction of one connection, shaped: ``send(data)`` now, delivered later.

    ``loss`` names the lost segments (by default the profile's rate, drawn from ``seed``)."""

    def __init__(self, profile: NetworkProfile, direction: str, opened: float,
                 sink: socket.socket, seed: int, loss: LossPattern | None = None) -> None:
        self.profile, self.sink = profile, sink
        self.direction = direction
        self.rate = profile.up if direction == UP else profile.down
        self._free_at = opened + profile.rtt        # the handshake's round trip
        self._last_arrival = 0.0
        self._offset = 0
        self._jitter = random.Random(seed)
        self.loss = loss if loss is not None else LossPattern(profile.loss, -seed - 1, spare=0)
        self.stalls: list[tuple[str, int]] = []
        self._due: collections.deque[tuple[float, bytes]] = collections.deque()
        self._ready = threading.Condition()
        self._finished = self._broken = False
        self._sender = threading.Thread(target=self._send, name="wiretap-shaper", daemon=True)
        self._sender.start()

    def send(self, data: bytes, now: float) -> None:
        """Schedule ``data`` (read at ``now``) for delivery."""
        profile = self.profile
        # Segments are cut at fixed offsets of the stream, whatever the reads, so a seed
        # loses the same segments run after run.
        pieces, start = [], 0
        while start < len(data):
            end = min(len(data), start + SEGMENT - (self._offset + start) % SEGMENT)
            pieces.append(data[start:end])
            start = end
        delay = profile.one_way
        if profile.jitter:
            delay = max(0.0, delay + self._jitter.gauss(0.0, profile.jitter))
        departure = max(now, self._free_at)
        scheduled = []
        for piece in pieces:
            if self.rate:
                departure += 8 * len(piece) / self.rate
            arrival = departure + delay
            if self._offset % SEGMENT == 0 and self.loss.lost(self._offset // SEGMENT):
                arrival += rto(profile)
                self.stalls.append((self.direction, self._offset))
            arrival = max(arrival, self._last_arrival)
            self._last_arrival = arrival
            self._offset += len(piece)
            scheduled.append((arrival, piece))
        self._free_at = departure
        with self._ready:
            if not self._broken:
                self._due.extend(scheduled)
                self._ready.notify()

    def finish(self, timeout: float = 30.0) -> None:
        """Deliver what is queued, then return (bounded by ``timeout``)."""
        with self._ready:
            self._finished = True
            self._ready.notify()
        self._sender.join(timeout)

    def abort(self) -> None:
        """Drop what is queued and stop (a reset: queued bytes are never delivered)."""
        with self._ready:
            self._broken = self._finished = True
            self._due.clear()
            self._ready.notify()

    def _send(self) -> None:
        while True:
            with self._ready:
                while not self._due and not self._finished:
                    self._ready.wait()
                if not self._due:
                    return
                arrival = self._due[0][0]
            wait = arrival - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            # Hand on, in one write, everything already due (the schedule is absolute,
            # so a late wake-up does not push later bytes back).
            now = time.perf_counter()
            with self._ready:
                pending = []
                while self._due and self._due[0][0] <= now:
                    pending.append(self._due.popleft()[1])
            try:
                self.sink.sendall(b"".join(pending))
            except OSError:
                with self._ready:
                    self._broken = True
                    self._due.clear()
                return
