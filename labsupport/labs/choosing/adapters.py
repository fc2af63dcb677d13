"""Push protocols as the experiments need them: one adapter each, written once.

An experiment loops over adapters and never asks which protocol it has. Each
:class:`PushAdapter` says which of the run's servers it talks to and knows how to

- ``connect(run, tap, names, on_message, room)``: open one receiving client per name
  (``on_message(name)`` is its callback) and return them with ``send(i, payload)``,
  which has client ``i`` publish ``payload`` to the room;
- ``live(run, tap, arrived)``: open one receiving client, and return it with
  ``publish(payload)``, the server publishing from inside its process;
- ``close(run, receivers, tap)``: end every client at once.

``connect`` and ``live`` take client ``options``: ``compression=None`` has a WebSocket
client offer no permessage-deflate (the counted exchanges of :mod:`.experiments`); the
other protocols' clients compress nothing anyway.

Each adapter uses its server's :class:`~.push.Endpoint` (``run.sse``, ``run.chat``...):
the server runs in the run's child process, and ``publish``, ``registered`` and
``drop`` reach it over the child's pipe; the experiments use none of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

import requests

from ...wire import WireTap
from .clients import PollReceiver, Receiver, RelayStream, SSEReceiver, WebSocketReceiver, wait_until
from .driver import Run
from .push import WS_USERS

__all__ = ["PushAdapter", "PUSH", "Send", "Publish", "OnMessage"]

OnMessage = Callable[[dict, float], None]
Send = Callable[[int, dict[str, Any]], None]
Publish = Callable[[dict[str, Any]], object]
R = TypeVar("R")


class PushAdapter(Protocol):
    """What the fan-out and live-update experiments need of a push protocol."""

    protocol: str     # the name in the document's matrix
    server: str       # the run's server it talks to

    def connect(self, run: Run, tap: WireTap, names: list[str],
                on_message: Callable[[str], OnMessage], room: str, **options: Any
                ) -> tuple[list[Receiver], Send]: ...

    def live(self, run: Run, tap: WireTap, arrived: OnMessage, **options: Any
             ) -> tuple[Receiver, Publish]: ...

    def close(self, run: Run, receivers: list[Receiver], tap: WireTap) -> None: ...


def _unwrap_ws(arrived: OnMessage) -> OnMessage:
    def unwrap(event: dict, when: float) -> None:
        if event["type"] == "new_message":
            arrived(json.loads(event["message"]), when)
        elif event["type"] == "state":
            arrived(event["state"], when)
        else:
            arrived(event, when)
    return unwrap


def _open_all(open_one: Callable[[str], R], names: list[str]) -> list[R]:
    """One client per name, opened together: on a slow profile each opening costs round
    trips, and one after another they would add up."""
    with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
        return list(pool.map(open_one, names))


def _close(receivers: list[Receiver]) -> None:
    """Close every client together (a close handshake costs a round trip each)."""
    with ThreadPoolExecutor(max_workers=max(1, len(receivers))) as pool:
        list(pool.map(lambda receiver: receiver.close(), receivers))


class WebSockets:
    """The chat lab's server: a room per experiment; game state relayed, never stored."""

    protocol, server = "WebSockets", "websockets"

    def connect(self, run: Run, tap: WireTap, names: list[str],
                on_message: Callable[[str], OnMessage], room: str, **options: Any
                ) -> tuple[list[Receiver], Send]:
        def open_one(name: str) -> WebSocketReceiver:
            return WebSocketReceiver(f"ws://{tap.address}",
                                     run.chat.token_for(WS_USERS[names.index(name)]), room,
                                     {"new_message", "state", "update"},
                                     _unwrap_ws(on_message(name)), **options)

        receivers = _open_all(open_one, names)
        wait_until(lambda: all(r.joined.is_set() for r in receivers), 5)

        def send(i: int, payload: dict[str, Any]) -> None:
            if room == "arena":  # game state: relayed, never stored
                receivers[i].send({"type": "state", "room_id": room, "state": payload})
            else:
                receivers[i].send({"type": "send_message", "room_id": room,
                                   "message": json.dumps(payload)})
        return list(receivers), send

    def live(self, run: Run, tap: WireTap, arrived: OnMessage, **options: Any
             ) -> tuple[Receiver, Publish]:
        chat_server = run.chat
        ws = WebSocketReceiver(f"ws://{tap.address}", chat_server.token_for(101), "live",
                               {"update"}, _unwrap_ws(arrived), **options)
        ws.joined.wait(5)
        return ws, lambda data: chat_server.publish("update", data)

    def close(self, run: Run, receivers: list[Receiver], tap: WireTap) -> None:
        _close(receivers)


class GrpcStreams:
    """This lab's gRPC relay: bidirectional streams for fan-out, server streams for live."""

    protocol, server = "gRPC", "relay"

    def connect(self, run: Run, tap: WireTap, names: list[str],
                on_message: Callable[[str], OnMessage], room: str, **options: Any
                ) -> tuple[list[Receiver], Send]:
        before = run.relay.registered()
        receivers = _open_all(lambda name: RelayStream(tap.address, on_message(name),
                                                       bidirectional=True), names)
        wait_until(lambda: run.relay.registered() >= before + len(names), 5)

        def send(i: int, payload: dict[str, Any]) -> None:
            receivers[i].send(payload)
        return list(receivers), send

    def live(self, run: Run, tap: WireTap, arrived: OnMessage, **options: Any
             ) -> tuple[Receiver, Publish]:
        relay_service = run.relay
        before = relay_service.registered()
        stream = RelayStream(tap.address, arrived, bidirectional=False)
        wait_until(lambda: relay_service.registered() > before, 5)
        return stream, lambda d: relay_service.publish("update", d)

    def close(self, run: Run, receivers: list[Receiver], tap: WireTap) -> None:
        _close(receivers)


class ServerSentEvents:
    """The SSE lab: a stream down per client; a POST up for each message (SSE + POST)."""

    protocol, server = "SSE", "sse"

    def connect(self, run: Run, tap: WireTap, names: list[str],
                on_message: Callable[[str], OnMessage], room: str, **options: Any
                ) -> tuple[list[Receiver], Send]:
        receivers = _open_all(lambda name: SSEReceiver(tap.url, f"{room}-{name}",
                                                       on_message(name)), names)
        sessions = [requests.Session() for _ in names]

        def send(i: int, payload: dict[str, Any]) -> None:
            sessions[i].post(f"{tap.url}/api/broadcast", json={"type": room, "data": payload},
                             timeout=5)
        return list(receivers), send

    def live(self, run: Run, tap: WireTap, arrived: OnMessage, **options: Any
             ) -> tuple[Receiver, Publish]:
        server = run.sse
        return SSEReceiver(tap.url, "live", arrived), lambda d: server.publish("update", d)

    def close(self, run: Run, receivers: list[Receiver], tap: WireTap) -> None:
        # Cut the streams first: closing a response that another thread is reading blocks
        # until that read returns (the next event or heartbeat).
        run.sse.drop()
        tap.close()
        _close(receivers)


class LongPolling:
    """The long-polling lab: every client polls one shared inbox; a message is one POST."""

    protocol, server = "Long Polling", "long-polling"

    def connect(self, run: Run, tap: WireTap, names: list[str],
                on_message: Callable[[str], OnMessage], room: str, **options: Any
                ) -> tuple[list[Receiver], Send]:
        receivers = _open_all(lambda name: PollReceiver(tap.url, "feed", on_message(name)),
                              names)
        wait_until(lambda: run.long_polling.registered() >= len(names), 5)
        sessions = [requests.Session() for _ in names]

        def send(i: int, payload: dict[str, Any]) -> None:
            sessions[i].post(f"{tap.url}/api/notifications/send",
                             json={"user_id": "feed", "type": room, "data": payload}, timeout=5)
        return list(receivers), send

    def live(self, run: Run, tap: WireTap, arrived: OnMessage, **options: Any
             ) -> tuple[Receiver, Publish]:
        server = run.long_polling
        poll = PollReceiver(tap.url, "feed", arrived)
        wait_until(lambda: server.registered() >= 1, 5)
        return poll, lambda d: server.publish("update", d)

    def close(self, run: Run, receivers: list[Receiver], tap: WireTap) -> None:
        # Stop every poller, then wake every waiting poll once, rather than one by one.
        for receiver in receivers:
            if isinstance(receiver, PollReceiver):
                receiver.stop()
        run.long_polling.publish("stop", {})
        _close(receivers)


#: The push adapters by the short names the experiments' ``kinds`` use.
PUSH: dict[str, PushAdapter] = {"websockets": WebSockets(), "grpc": GrpcStreams(),
                                "sse": ServerSentEvents(), "long-polling": LongPolling()}
