"""Load balancing long-lived connections: a layer-4 balancer vs gRPC's client-side round_robin.

:class:`RoundRobinTCP` is what a layer-4 (TCP) load balancer does: each new
connection goes to the next backend, and every byte of that connection follows it.
One HTTP/2 connection carries every gRPC call of a channel, so all the calls land
on one backend. ``spread(...)`` counts where the calls went: each :class:`Backend`
counts the calls it answered.
"""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any

import grpc

from ..grpc_service.server import channel

__all__ = ["RoundRobinTCP", "Backend", "backends", "spread"]

LOOPBACK = "127.0.0.1"


class RoundRobinTCP:
    """A TCP proxy on 127.0.0.1 (a free port) sending each connection to the next backend
    that accepts it."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self._next = itertools.cycle(range(len(backends)))
        self.connections = [0] * len(backends)
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name="l4-balancer", daemon=True).start()

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = self._connect()
            if upstream is None:
                client.close()
                continue
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    def _connect(self) -> socket.socket | None:
        """A connection to the next backend that accepts one (a backend that refuses,
        stopped or draining, is skipped, as a health-checking balancer does)."""
        for _ in self.backends:
            index = next(self._next)
            try:
                upstream = socket.create_connection((LOOPBACK, self.backends[index]), timeout=5)
            except OSError:
                continue
            self.connections[index] += 1
            upstream.settimeout(None)
            return upstream
        return None

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Stop accepting; open connections end with their peers."""
        self._closed.set()
        self._listener.close()


class Backend:
    """A gRPC server on 127.0.0.1 (a free port) whose one method counts the calls it gets."""

    def __init__(self, name: str) -> None:
        self.name, self.calls = name, 0
        self._lock = threading.Lock()
        self.server = grpc.server(ThreadPoolExecutor(max_workers=4))
        handler = grpc.unary_unary_rpc_method_handler(self._whoami)  # bytes in, bytes out
        self.server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler("lab.Backend", {"WhoAmI": handler})])
        self.port = self.server.add_insecure_port(f"{LOOPBACK}:0")
        self.server.start()

    def _whoami(self, request: bytes, context: Any) -> bytes:
        with self._lock:
            self.calls += 1
        return self.name.encode()

    def stop(self) -> None:
        self.server.stop(grace=None)


@contextmanager
def backends(count: int = 2) -> Iterator[list[Backend]]:
    """``count`` fresh backends, stopped on the way out."""
    started = [Backend(f"backend-{n + 1}") for n in range(count)]
    try:
        yield started
    finally:
        for backend in started:
            backend.stop()


def spread(pool: list[Backend], *, how: str, calls: int = 20) -> dict[str, Any]:
    """``calls`` unary calls over one channel; how many reached each backend of ``pool``.

    ``how`` is ``"l4"`` (a round-robin TCP balancer in front) or ``"round_robin"``
    (the client resolves every backend and balances per call itself).
    """
    before = [backend.calls for backend in pool]
    balancer = None
    if how == "l4":
        balancer = RoundRobinTCP([backend.port for backend in pool])
        target, options = balancer.address, []
    elif how == "round_robin":
        target = "ipv4:" + ",".join(f"{LOOPBACK}:{backend.port}" for backend in pool)
        options = [("grpc.lb_policy_name", "round_robin")]
    else:
        raise ValueError("how is 'l4' or 'round_robin'")
    try:
        with channel(target, options=options) as ch:
            whoami = ch.unary_unary("/lab.Backend/WhoAmI")
            for _ in range(calls):
                whoami(b"", timeout=5)
    finally:
        if balancer is not None:
            balancer.close()
    return {"how": how, "calls": calls,
            "tcp_connections": balancer.connections if balancer else None,
            "calls_per_backend": [b.calls - n for b, n in zip(pool, before, strict=True)]}
