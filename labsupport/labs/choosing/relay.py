"""A gRPC relay for the streaming rows: every message to every open stream.

The gRPC lab's ``UserService`` has no chat or feed, so the chat, live-update and
gaming rows use this small service, on the same grpcio server machinery and the
same HTTP/2 framing. It carries opaque bytes (the same JSON the other protocols
carry), so the comparison is about transport, not encoding::

    /choosing.Relay/Chat       bidirectional: what one stream sends, all streams get
    /choosing.Relay/Subscribe  server streaming: what ``relay.publish`` sends
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from concurrent import futures

import grpc

from ...harness import LOOPBACK, ServerHandle, grpc_server, register, stop_previous

__all__ = ["start", "Relay", "RelayHandle", "CHAT", "SUBSCRIBE"]

SERVICE = "choosing.Relay"
CHAT = f"/{SERVICE}/Chat"
SUBSCRIBE = f"/{SERVICE}/Subscribe"
_END = object()


class Relay:
    """The open streams, each with its own outgoing queue."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: set[queue.SimpleQueue[object]] = set()

    @property
    def listening(self) -> int:
        with self._lock:
            return len(self._queues)

    def publish(self, message: bytes) -> int:
        """Send ``message`` to every open stream; how many there were."""
        with self._lock:
            targets = list(self._queues)
        for target in targets:
            target.put(message)
        return len(targets)

    def close_all(self) -> None:
        with self._lock:
            targets = list(self._queues)
        for target in targets:
            target.put(_END)

    def _stream(self, context: grpc.ServicerContext) -> Iterator[bytes]:
        outgoing: queue.SimpleQueue[object] = queue.SimpleQueue()
        with self._lock:
            self._queues.add(outgoing)
        context.add_callback(lambda: outgoing.put(_END))
        try:
            while isinstance(message := outgoing.get(), bytes):
                yield message
        finally:
            with self._lock:
                self._queues.discard(outgoing)

    def chat(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        def read() -> None:
            try:
                for message in requests:
                    self.publish(message)
            except grpc.RpcError:
                pass  # the client cancelled: its stream ends below

        threading.Thread(target=read, name="relay-read", daemon=True).start()
        yield from self._stream(context)

    def subscribe(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        yield from self._stream(context)


class RelayHandle(ServerHandle):
    """The relay's server: ``relay.publish(b"...")`` pushes to every open stream."""

    relay: Relay


def start(*, name: str = "choosing-relay", max_workers: int = 48) -> RelayHandle:
    """Serve the relay on 127.0.0.1 (a free port); ``handle.relay.publish(b"...")`` pushes."""
    stop_previous(name)
    relay = Relay()
    handlers = grpc.method_handlers_generic_handler(SERVICE, {
        "Chat": grpc.stream_stream_rpc_method_handler(relay.chat),
        "Subscribe": grpc.unary_stream_rpc_method_handler(relay.subscribe),
    })
    server = grpc_server(futures.ThreadPoolExecutor(max_workers=max_workers,
                                                    thread_name_prefix=f"{name}-rpc"),
                         handlers=[handlers], options=[("grpc.so_reuseport", 0)])
    port = server.add_insecure_port(f"{LOOPBACK}:0")
    server.start()

    def stop() -> None:
        relay.close_all()
        server.stop(0.5).wait(5)

    return register(RelayHandle(name, port, stop, scheme="grpc", app=relay, relay=relay))
