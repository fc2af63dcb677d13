"""The push servers, one entry each: how to start one, and how a client opens it idle.

The push rows (chat, live updates, gaming, mobile) and the idle connections run
their servers in a child process (:func:`.serve.spawn` ``"push"``), served as in
production: the WebSocket chat on the ``websockets`` asyncio server, SSE and long
polling on Hypercorn (HTTP/1.1 keep-alive, the server REST and GraphQL use in
:func:`.serve._production`), and this lab's gRPC relay on grpcio. Each protocol is one
:class:`PushServer` in :data:`SERVERS`:

- ``start(options)`` runs in the child: it starts the server and returns a
  :class:`Served`, whose ``publish``, ``registered`` and ``drop`` the kernel calls
  through the child's standard input (:meth:`.serve.Child.call`);
- ``opening(port, n, info)`` runs in the kernel: the bytes an idle client sends first
  (the WebSocket handshake, the SSE request, a 30 s long poll), for :mod:`.resources`.

A new protocol is one entry here. In the kernel, :class:`Endpoint` is a started server
as the experiments see it: its port, and the calls above.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import h11
from wsproto import ConnectionType, WSConnection
from wsproto.events import Request

from ...harness import LOOPBACK

__all__ = ["PushServer", "Served", "Endpoint", "SERVERS", "PLAYERS", "WS_USERS"]


class Host(Protocol):
    """What hosts the servers (a :class:`.serve.Child`): asked by label to do ``op``."""

    def call(self, label: str, op: str, *args: Any) -> Any: ...

#: The long-polling inboxes: twenty chat users and the shared feed of the game and live rows.
PLAYERS = tuple(f"user{n}" for n in range(1, 21)) + ("feed",)
#: The chat lab's sample users whose tokens the child hands out.
WS_USERS = range(101, 126)


def _nothing(*_: Any) -> None:
    return None


@dataclass
class Served:
    """A server started in the child: its port, and what the kernel may ask of it."""

    port: int
    publish: Callable[[str, dict[str, Any]], object]   # (type, data), from inside the server
    registered: Callable[[], int]                       # clients open and registered now
    drop: Callable[..., object] = _nothing              # end streams from the server side
    info: dict[str, Any] = field(default_factory=dict)  # what a client needs (tokens)


@dataclass(frozen=True)
class PushServer:
    """One push protocol's server: ``start`` (child side) and ``opening`` (client side)."""

    protocol: str
    start: Callable[[dict[str, Any]], Served]
    opening: Callable[[int, int, dict[str, Any]], bytes] | None = None


# --- the child side: starting each server ---------------------------------------------

def _relay_state(chat_server: Any, client: Any, data: dict[str, Any]) -> None:
    """A chat-server handler for game state: relayed to the room, never stored."""
    from ..websocket_chat.server import ChatError

    room_id = data.get("room_id")
    if not isinstance(room_id, str) or room_id not in client.rooms:
        raise ChatError("join the room before sending state")
    chat_server.broadcast(room_id, {"type": "state", "state": data.get("state")},
                          exclude=client)


def _chat(options: dict[str, Any]) -> Served:
    from ..websocket_chat import server as chat

    handle = chat.start(name="choosing-websockets", fresh_data=False,
                        handlers={"state": _relay_state})
    loop = handle.loop.loop

    def publish(type: str, data: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(handle.app.broadcast, "live", {"type": type, **data})

    def drop(user_id: int) -> int:
        return handle.drop(user_id)

    return Served(handle.port, publish, lambda: len(handle.app.clients), drop,
                  {"tokens": {str(u): handle.token_for(u) for u in WS_USERS}})


def _ws_hold(options: dict[str, Any]) -> Served:
    """A WebSocket server that holds each connection and sends nothing but the
    ``websockets`` library's keepalive pings, every ``ping_interval`` s."""
    import threading

    from websockets.sync.server import ServerConnection, serve

    def hold(connection: ServerConnection) -> None:
        with contextlib.suppress(Exception):
            for _ in connection:
                pass

    server = serve(hold, LOOPBACK, 0, ping_interval=options.get("ping_interval", 20.0))
    threading.Thread(target=server.serve_forever, name="ws-hold", daemon=True).start()
    return Served(server.socket.getsockname()[1], _nothing, lambda: 0,
                  lambda *_: server.shutdown())


def _sse(options: dict[str, Any]) -> Served:
    from ..sse import server as sse
    from .hosting import hypercorn

    broker = sse.Broker(history=5000, queue_size=5000)
    port = hypercorn(sse.create_app(broker, heartbeat=options.get("heartbeat", 15.0)))
    return Served(port, broker.publish, lambda: len(broker.connections()),
                  lambda *_: broker.drop_all())


def _long_polling(options: dict[str, Any]) -> Served:
    from ..long_polling import server as long_polling
    from .hosting import hypercorn

    hub = long_polling.NotificationHub(PLAYERS, history=5000)
    port = hypercorn(long_polling.create_app(hub))
    return Served(port, lambda type, data: hub.send("feed", type, data), hub.waiting)


def _relay(options: dict[str, Any]) -> Served:
    from . import relay

    handle = relay.start(name="choosing-relay")
    service = handle.relay
    return Served(handle.port, lambda type, data: service.publish(json.dumps(data).encode()),
                  lambda: service.listening, lambda *_: service.close_all())


def _hypercorn_app(lab: str) -> Callable[[dict[str, Any]], Served]:
    """A request/response lab (``rest`` or ``graphql_api``) on Hypercorn, for the clients
    that poll it (the mobile row)."""
    def start(options: dict[str, Any]) -> Served:
        import importlib

        from ... import database
        from .hosting import hypercorn

        database.ready(False)
        server = importlib.import_module(f"labsupport.labs.{lab}.server")
        app = server.create_app(rate_limit=None) if lab == "rest" else server.create_app()
        return Served(hypercorn(app), _nothing, lambda: 0)
    return start


# --- the client side: an idle connection's first bytes -----------------------------------

def _http_get(target: str, port: int, **headers: str) -> bytes:
    fields = [("Host", f"{LOOPBACK}:{port}"), *headers.items()]
    return h11.Connection(h11.CLIENT).send(h11.Request(method="GET", target=target,
                                                       headers=fields))


def _ws_opening(port: int, n: int, info: dict[str, Any]) -> bytes:
    token = info["tokens"][str(WS_USERS[n % len(WS_USERS)])]
    return WSConnection(ConnectionType.CLIENT).send(
        Request(host=f"{LOOPBACK}:{port}", target=f"/ws?token={token}"))


#: Every push server the child can start, by the run's name for it.
SERVERS: dict[str, PushServer] = {
    "websockets": PushServer("WebSockets", _chat, _ws_opening),
    "sse": PushServer("SSE", _sse, lambda port, n, info: _http_get(
        f"/events?client_id=idle{n}", port, Accept="text/event-stream")),
    "long-polling": PushServer("Long Polling", _long_polling, lambda port, n, info: _http_get(
        "/api/notifications/feed/poll?timeout=30", port)),
    "relay": PushServer("gRPC", _relay),
    "websockets-hold": PushServer("WebSockets", _ws_hold),
    "rest-hypercorn": PushServer("REST", _hypercorn_app("rest")),
    "graphql-hypercorn": PushServer("GraphQL", _hypercorn_app("graphql_api")),
}


# --- the kernel side -----------------------------------------------------------------

class Endpoint:
    """A server started in ``child`` under ``label``, as the kernel sees it."""

    host = LOOPBACK

    def __init__(self, child: Host, label: str, info: dict[str, Any]) -> None:
        self.child, self.name, self.info = child, label, info
        self.port: int = info["port"]

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}/ws"

    def token_for(self, user_id: int) -> str:
        """A chat token for one of the sample users (:data:`WS_USERS`)."""
        token: str = self.info["tokens"][str(user_id)]
        return token

    def publish(self, type: str, data: dict[str, Any]) -> None:
        """Push ``data`` from inside the server (one line over the child's pipe)."""
        self.child.call(self.name, "publish", type, data)

    def registered(self) -> int:
        """How many clients the server holds open and registered now."""
        count: int = self.child.call(self.name, "registered")
        return count

    def drop(self, *args: Any) -> object:
        """End streams from the server side (a chat user's, with its id)."""
        return self.child.call(self.name, "drop", *args)

    def stop(self) -> None:
        """Nothing: the server ends with its child process."""
