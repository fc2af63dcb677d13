"""gRPC's part of :mod:`labsupport.owner`: an interceptor refusing other users' calls.

gRPC tells a server the peer of each call (``context.peer()``, ``ipv4:127.0.0.1:54321``),
not of each connection, so the check runs once per call: the peer's socket is looked up
against the server's own port, and a call from another user's connection ends with
``PERMISSION_DENIED`` before any later interceptor or the method runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from . import owner

__all__ = ["OwnerOnly", "owner_only_server"]

LOOPBACK = "127.0.0.1"


class OwnerOnly(grpc.ServerInterceptor):
    """Refuses calls whose connection is not our user's; ``ports`` are the server's own."""

    def __init__(self) -> None:
        self.ports: set[int] = set()

    def admits(self, context: grpc.ServicerContext) -> bool:
        """Whether the call's peer is a socket of our user, connected to one of ``ports``."""
        kind, _, address = context.peer().partition(":")
        host, _, port = address.rpartition(":")
        if kind not in ("ipv4", "ipv6") or not port.isdigit():
            return False  # not TCP: the lab servers listen on TCP only
        peer = (host.strip("[]"), int(port))
        return any(owner.admits_peer(peer, (LOOPBACK, ours)) for ours in self.ports)

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        kind = ("stream" if handler.request_streaming else "unary") + "_" + (
            "stream" if handler.response_streaming else "unary")
        behavior = getattr(handler, kind)

        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            if not self.admits(context):
                context.abort(grpc.StatusCode.PERMISSION_DENIED, owner.REFUSAL)
            return behavior(request, context)

        make: Callable[..., Any] = getattr(grpc, f"{kind}_rpc_method_handler")
        return make(guarded, request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer)


def owner_only_server(executor: Any, *, interceptors: Any = (), **options: Any) -> grpc.Server:
    """``grpc.server`` with :class:`OwnerOnly` first; its ``add_insecure_port`` tells the
    interceptor the port it listens on."""
    gate = OwnerOnly()
    server = grpc.server(executor, interceptors=[gate, *interceptors], **options)
    add_port = server.add_insecure_port

    def add_insecure_port(address: str) -> int:
        port = add_port(address)
        gate.ports.add(port)
        return port

    server.add_insecure_port = add_insecure_port
    return server
