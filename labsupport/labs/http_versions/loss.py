"""Real packet loss between an HTTP/3 client and the lab server: a UDP relay dropping datagrams.

:class:`UDPRelay` forwards datagrams and really drops the ones a
:class:`~labsupport.wire.LossPattern` names (counted server → client): QUIC notices and
retransmits what they carried, on the streams they carried it for.

Loss on TCP is the wire layer's labelled *model* (``WireTap(port, loss=pattern)``, see
:mod:`labsupport.wire.shaping`): loopback TCP never loses a segment, so the tap holds a
lost segment, and every byte behind it, for a retransmission timeout. Given the same
pattern, the two lose the same packet numbers.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading

from ... import owner
from ...harness import LOOPBACK
from ...wire import LossPattern

__all__ = ["UDPRelay"]

BUFFER = 4 << 20   # bytes of UDP receive buffer asked for


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
