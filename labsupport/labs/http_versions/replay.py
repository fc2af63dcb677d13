"""0-RTT's catch: early data can be replayed (RFC 8446 section 8, RFC 9001 section 9.2).

A client's first flight (ClientHello and its 0-RTT request) can be recorded by anyone on
the path and sent again. Sent to the connection it came from, the copy is dropped (same
connection id, packet numbers already seen). Sent to *another node of the same cluster*
(which must accept the cluster's tickets), it is a new connection, and if the ticket is
accepted again the request runs again: a POST places a second order. A single-use ticket
store shared by the cluster, or refusing early data for unsafe methods, stops it.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from ...harness import LOOPBACK
from .h3client import H3Client
from .handshakes import ticket_from
from .server import TicketStore, start

__all__ = ["ReplayOutcome", "replay_early_request"]


@dataclass(frozen=True)
class ReplayOutcome:
    """What each node did after one 0-RTT request to node A and its replay to node B."""

    single_use_tickets: bool
    early_data_accepted: bool
    request: str
    orders_on_a: int
    orders_on_b: int
    ran_on_b: bool

    def __str__(self) -> str:
        tickets = "single-use" if self.single_use_tickets else "reusable"
        if self.request != "POST /orders":
            ran = "ran again" if self.ran_on_b else "did not run"
            return (f"{tickets} tickets: the replayed {self.request} {ran} on node B; orders "
                    f"placed: {self.orders_on_a + self.orders_on_b}")
        return (f"{tickets} tickets: the client's 0-RTT POST placed {self.orders_on_a} order on "
                f"node A; the replayed copy placed {self.orders_on_b} on node B")


def replay_early_request(*, single_use_tickets: bool, method: str = "POST",
                         path: str = "/orders", settle: float = 0.5) -> ReplayOutcome:
    """Two nodes sharing one ticket store; a 0-RTT request to A, its first flight replayed
    to B."""
    store = TicketStore(single_use=single_use_tickets)
    with start(name="http-versions-node-a", tickets=store) as a, \
            start(name="http-versions-node-b", tickets=store) as b:
        ticket = ticket_from(a.port)
        with H3Client(a.port, session_ticket=ticket) as client:
            stream = client.request(method, path, body=b"{}" if method == "POST" else b"")
            client.flush()
            first_flight = list(client.sent)
            client.run_until(lambda: client.responses[stream].ended, timeout=5)
            accepted = bool(client.early_data_accepted)
        attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            attacker.bind((LOOPBACK, 0))
            for datagram in first_flight:
                attacker.sendto(datagram, (LOOPBACK, b.port))
            deadline = time.monotonic() + settle
            while not b.app.requests and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.05)   # the request, once in, completes its work
        finally:
            attacker.close()
        return ReplayOutcome(single_use_tickets, accepted, f"{method} {path}", a.app.orders,
                             b.app.orders, bool(b.app.requests))
