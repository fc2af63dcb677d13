"""Backpressure: a producer faster than its consumer, and what each policy costs.

``simulate`` runs a producer and a consumer tick by tick (1 ms) through a
queue with one of three policies:

- ``unbounded``: accept everything; the queue, memory and delay grow forever;
- ``block``: a bounded queue whose producer waits when it is full (the
  producer is slowed to the consumer's pace; nothing is lost);
- ``drop-oldest``: a bounded queue that discards its oldest item to make room
  (memory and delay stay bounded; data is lost, counted).

``tcp_pushback`` shows the transport doing ``block`` by itself: a reader that
stops reading makes the writer's socket refuse more bytes once the kernel's
buffers are full.
"""

from __future__ import annotations

import socket
from collections import deque
from dataclasses import dataclass

__all__ = ["POLICIES", "Run", "simulate", "tcp_pushback"]

POLICIES = ("unbounded", "block", "drop-oldest")


@dataclass
class Run:
    """What one policy did: queue depth every 100 ms, and the totals."""

    policy: str
    times: list[float]
    depth: list[int]
    produced: int
    delivered: int
    dropped: int
    max_delay: float     # seconds from production to delivery, worst case


def simulate(policy: str, *, produce_per_s: int = 100, consume_per_s: int = 60,
             seconds: float = 10.0, capacity: int = 50) -> Run:
    """``seconds`` of a producer at ``produce_per_s`` and a consumer at ``consume_per_s``."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    queue: deque[int] = deque()                  # production times in ms
    produced = delivered = dropped = 0
    produce_credit = consume_credit = 0.0
    waiting: int | None = None                   # a blocked producer's item
    max_delay = 0
    times, depth = [], []
    for now in range(round(seconds * 1000)):
        produce_credit += produce_per_s / 1000
        consume_credit += consume_per_s / 1000
        while produce_credit >= 1:
            if waiting is None:
                waiting, produced = now, produced + 1
            bounded = policy != "unbounded"
            if bounded and len(queue) >= capacity:
                if policy == "block":
                    produce_credit = min(produce_credit, 1.0)   # the producer waits
                    break
                queue.popleft()
                dropped += 1
            queue.append(waiting)
            waiting = None
            produce_credit -= 1
        while consume_credit >= 1 and queue:
            max_delay = max(max_delay, now - queue.popleft())
            delivered += 1
            consume_credit -= 1
        consume_credit = min(consume_credit, 1.0)
        if now % 100 == 0:
            times.append(now / 1000)
            depth.append(len(queue))
    return Run(policy, times, depth, produced, delivered, dropped, max_delay / 1000)


def tcp_pushback(chunk: int = 65536, limit: int = 64 * 2**20) -> int:
    """Bytes a loopback TCP writer gets out before a reader that never reads stops it.

    The writer's socket is non-blocking; when the kernel's send and receive
    buffers are full, ``send`` raises ``BlockingIOError``: TCP flow control.
    ``limit`` bounds the experiment.
    """
    with socket.create_server(("127.0.0.1", 0)) as listener:
        writer = socket.create_connection(listener.getsockname(), timeout=5)
        reader, _ = listener.accept()
        with writer, reader:
            writer.setblocking(False)
            sent, data = 0, b"x" * chunk
            while sent < limit:
                try:
                    sent += writer.send(data)
                except BlockingIOError:
                    break
    return sent
