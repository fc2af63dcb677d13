"""Packet loss between a client and the lab server: real for UDP, a labelled model for TCP.

Both relays lose the *same* packets: :class:`LossPattern` decides, from a seed, whether
packet number ``n`` (counted server → client, after ``spare`` packets left alone so the
handshake is not part of the experiment) is lost.

- :class:`UDPRelay` forwards datagrams and really drops the lost ones: QUIC notices and
  retransmits what they carried, on the streams they carried it for.
- :class:`TCPStallRelay` is a **model** of loss on TCP, not real loss: the kernel's TCP on
  loopback never loses a segment, so the relay cuts the server's byte stream into
  ``mss``-byte segments and, at a lost one, holds it *and every byte after it* for a
  retransmission timeout (``rto``, 200 ms: Linux's minimum RTO). That is what an
  application reading a TCP socket experiences: TCP delivers bytes in order, so nothing
  after a hole is handed over until the hole is filled.
"""

from __future__ import annotations

import contextlib
import random
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

from ... import owner
from ...harness import LOOPBACK

__all__ = ["LossPattern", "UDPRelay", "TCPStallRelay", "MSS", "RTO"]

MSS = 1200    # bytes a segment: about what one QUIC datagram carries, so the two compare
BUFFER = 4 << 20   # bytes of UDP receive buffer asked for
RTO = 0.2     # s a lost segment holds the TCP byte stream (Linux's TCP_RTO_MIN)


@dataclass(frozen=True)
class LossPattern:
    """Which packets are lost: each with probability ``rate``, drawn from ``seed``."""

    rate: float
    seed: int = 1
    spare: int = 8
    _draws: list[float] = field(default_factory=list, compare=False, repr=False)

    def lost(self, number: int) -> bool:
        """Whether server → client packet ``number`` (0, 1, 2, ...) is lost."""
        if number < self.spare or self.rate <= 0:
            return False
        if not self._draws:
            draw = random.Random(self.seed).random
            self._draws.extend(draw() for _ in range(100_000))
        return self._draws[number % len(self._draws)] < self.rate


class UDPRelay:
    """A UDP relay on 127.0.0.1 (a free port) to ``target_port``, dropping datagrams.

    ``loss`` applies to datagrams from the server; ``blocked=True`` drops every datagram
    (a network that lets no UDP through). ``dropped`` and ``forwarded`` count them.
    """

    def __init__(self, target_port: int, loss: LossPattern | None = None, *,
                 blocked: bool = False) -> None:
        self.target = (LOOPBACK, target_port)
        self.loss = loss or LossPattern(0.0)
        self.blocked = blocked
        self.dropped = 0
        self.forwarded = 0
        self._down = 0
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind((LOOPBACK, 0))
        self.port: int = self.front.getsockname()[1]
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind((LOOPBACK, 0))
        self.back.connect(self.target)
        for sock in (self.front, self.back):   # room for bursts: the relay drops, not the kernel
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)
        self._client: tuple[str, int] | None = None
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="udp-relay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.front, selectors.EVENT_READ, "up")
        selector.register(self.back, selectors.EVENT_READ, "down")
        with selector:
            while not self._closed.is_set():
                for key, _ in selector.select(timeout=0.05):
                    with contextlib.suppress(OSError):
                        if key.data == "up":
                            data, client = self.front.recvfrom(65536)
                            if not owner.admits_datagram(client):  # it would reach the server
                                continue                           # as us: dropped unread
                            self._client = client
                            if self.blocked:
                                self.dropped += 1
                            else:
                                self.back.send(data)
                        else:
                            data = self.back.recv(65536)
                            number, self._down = self._down, self._down + 1
                            if self.blocked or self.loss.lost(number) or self._client is None:
                                self.dropped += 1
                            else:
                                self.front.sendto(data, self._client)
                                self.forwarded += 1

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=2)
        self.front.close()
        self.back.close()

    def __enter__(self) -> UDPRelay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class TCPStallRelay:
    """A TCP relay on 127.0.0.1 (a free port) to ``target_port`` applying the loss *model*.

    ``stalls`` lists, for each lost segment, the offset in the server's byte stream where
    delivery stopped for ``rto`` seconds. One connection at a time is what the lab needs.
    """

    def __init__(self, target_port: int, loss: LossPattern | None = None, *,
                 mss: int = MSS, rto: float = RTO) -> None:
        self.target = (LOOPBACK, target_port)
        self.loss = loss or LossPattern(0.0)
        self.mss, self.rto = mss, rto
        self.stalls: list[int] = []
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, name="tcp-stall-relay", daemon=True).start()

    def _accept(self) -> None:
        self._listener.settimeout(0.05)
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not owner.admits(client):  # it would reach the server as us: closed unread
                client.close()
                continue
            server = socket.create_connection(self.target, timeout=5)
            for sock in (client, server):
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, lossy: bool) -> None:
        offset = 0
        try:
            while data := source.recv(65536):
                if not lossy:
                    sink.sendall(data)
                    continue
                start = 0
                first = -(-offset // self.mss)            # segments starting inside this read
                last = (offset + len(data) - 1) // self.mss
                for segment in range(first, last + 1):
                    if self.loss.lost(segment):
                        cut = segment * self.mss - offset
                        sink.sendall(data[start:cut])
                        self.stalls.append(segment * self.mss)
                        time.sleep(self.rto)              # the model: the hole holds everything
                        start = cut
                sink.sendall(data[start:])
                offset += len(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> TCPStallRelay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
