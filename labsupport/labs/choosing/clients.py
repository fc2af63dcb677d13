"""Small clients the experiments share: a message receiver per protocol, each in a thread.

Every receiver calls ``on_message(payload: dict, arrived: float)`` for each
application message it gets, and ``close()`` ends it. They reuse the labs' own
clients (``sse.Listener``, ``long_polling.Poller``, ``websockets``' sync client,
grpc channels from ``grpc_service.channel``).
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import requests
from websockets.sync.client import ClientConnection, connect

from ..grpc_service import server as grpc_service
from ..long_polling import server as long_polling
from ..sse import server as sse
from . import relay

OnMessage = Callable[[dict, float], None]


class Receiver(Protocol):
    """What every receiver offers the experiments."""

    def close(self) -> None: ...
_END = object()


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` every 5 ms for at most ``timeout`` s; whether it came true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def _thread(target: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


class WebSocketReceiver:
    """A chat-server connection that joins ``room`` and reports frames of ``kinds``."""

    def __init__(self, ws_base: str, token: str, room: str, kinds: set[str],
                 on_message: OnMessage, **options: Any) -> None:
        self.ws: ClientConnection = connect(f"{ws_base}/ws?token={token}", open_timeout=5,
                                            legacy=True, **options)
        self.ws.recv(timeout=5)  # connected
        self.ws.send(json.dumps({"type": "join_chat", "room_id": room}))
        self.joined = threading.Event()
        self._kinds, self._on_message = kinds, on_message
        self.thread = _thread(self._read, "ws-receiver")

    def _read(self) -> None:
        with contextlib.suppress(Exception):
            for frame in self.ws:
                arrived = time.perf_counter()
                event = json.loads(frame)
                if event.get("type") == "user_joined":
                    self.joined.set()
                elif event.get("type") in self._kinds:
                    self._on_message(event, arrived)

    def send(self, event: dict) -> None:
        self.ws.send(json.dumps(event))

    def close(self) -> None:
        self.ws.close()
        self.thread.join(timeout=2)


class RelayStream:
    """One gRPC stream on the relay: ``Chat`` (bidirectional) or ``Subscribe``."""

    def __init__(self, address: str, on_message: OnMessage, *, bidirectional: bool) -> None:
        self.channel = grpc_service.channel(address)
        self._outgoing: queue.SimpleQueue = queue.SimpleQueue()
        if bidirectional:
            call = self.channel.stream_stream(relay.CHAT)
            self.call = call(self._requests())
        else:
            self.call = self.channel.unary_stream(relay.SUBSCRIBE)(b"")
        self._on_message = on_message
        self.thread = _thread(self._read, "relay-stream")

    def _requests(self) -> Iterator[bytes]:
        while (message := self._outgoing.get()) is not _END:
            yield message

    def _read(self) -> None:
        with contextlib.suppress(Exception):
            for message in self.call:
                self._on_message(json.loads(message), time.perf_counter())

    def send(self, event: dict) -> None:
        self._outgoing.put(json.dumps(event).encode())

    def close(self) -> None:
        self._outgoing.put(_END)
        self.call.cancel()
        self.thread.join(timeout=2)
        self.channel.close()


class SSEReceiver:
    """``sse.Listener`` on ``/events``, reporting each event's JSON ``data``."""

    def __init__(self, base_url: str, client_id: str, on_message: OnMessage) -> None:
        self._on_message = on_message
        self.stream = sse.ResumableEventStream(f"{base_url}/events?client_id={client_id}",
                                               read_timeout=10)
        self.connected = threading.Event()
        self.thread = _thread(self._read, "sse-receiver")
        self.connected.wait(5)

    def _read(self) -> None:
        with contextlib.suppress(Exception):
            for event in self.stream:
                if event.id is None:
                    self.connected.set()
                    continue
                self._on_message(json.loads(event.data)["data"], time.perf_counter())
        self.connected.set()

    def close(self) -> None:
        """End the stream; quick once the server has ended it (``broker.drop_all()``)."""
        self.stream.close()
        self.thread.join(timeout=0.1)


class PollReceiver:
    """``long_polling.Poller`` on one inbox from its current cursor, in a loop."""

    def __init__(self, base_url: str, user_id: str, on_message: OnMessage,
                 timeout: float = 2.0) -> None:
        cursor = requests.get(f"{base_url}/api/notifications/{user_id}", timeout=5).json()[
            "cursor"]
        self.poller = long_polling.Poller(base_url, user_id, cursor=cursor, timeout=timeout)
        self._on_message = on_message
        self._stop = threading.Event()
        self.thread = _thread(self._read, "poll-receiver")

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self.poller.poll()
            except (requests.RequestException, ValueError):
                if self._stop.wait(0.05):
                    return
                continue
            arrived = time.perf_counter()
            for notification in batch:
                self._on_message(notification["data"], arrived)

    def stop(self) -> None:
        """Poll no more once the current poll returns."""
        self._stop.set()

    def close(self) -> None:
        self.stop()
        self.thread.join(timeout=self.poller.timeout + 3)
