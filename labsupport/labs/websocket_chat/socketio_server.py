"""The document's own WebSocket chapter, run as printed: Flask-SocketIO.

The document's chat server is Flask-SocketIO and its client is
``socket.io-client``. Socket.IO is a protocol of its own on top of Engine.IO,
which runs over HTTP long-polling or WebSocket, so this module gives the
notebook what it needs to run that code and to look at what crosses the wire::

    server = socketio_chat.serve(app)          # instead of socketio.run(app, debug=True, port=5000)
    socketio_chat.open_packet(server.url)      # Engine.IO's first answer, over polling
    socketio_chat.Transcript(server.url, token=...)   # Socket.IO spoken by hand, frame by frame

``serve`` runs the app like every lab server: 127.0.0.1, a free port, in the
background of the kernel, replaced on re-run, its log lines on the handle.
"""

from __future__ import annotations

import collections
import json
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from ...harness import LOG_LINES_KEPT, ServerHandle, logger_for, serve_wsgi

__all__ = ["serve", "open_packet", "Transcript", "engineio_url"]

EIO_QUERY = "/socket.io/?EIO=4&transport="


def serve(app: Flask, *, name: str = "socketio") -> ServerHandle:
    """Serve a Flask-SocketIO app (threading mode) in the background; returns its handle.

    Stopping the handle disconnects every Socket.IO client and ends the
    server's background tasks, so no thread outlives it.
    """
    server = app.extensions["socketio"].server
    log: collections.deque[str] = collections.deque(maxlen=LOG_LINES_KEPT)
    for name_ in ("socketio.server", "engineio.server"):  # they would print into cells
        logger_for(name_, log)

    def disconnect_everyone() -> None:
        for connection in list(server.eio.sockets.values()):
            connection.close(wait=False)  # sends CLOSE; wait=True can block on a dead peer
        server.shutdown()

    return serve_wsgi(name, app, on_stop=disconnect_everyone, log=log)


def engineio_url(base_url: str, transport: str) -> str:
    """The Engine.IO endpoint of a server, for ``"polling"`` or ``"websocket"``."""
    url = base_url + EIO_QUERY + transport
    return url.replace("http://", "ws://", 1) if transport == "websocket" else url


def open_packet(base_url: str, *, origin: str | None = None) -> requests.Response:
    """Start an Engine.IO session the way every Socket.IO client does: an HTTP GET (polling)."""
    headers = {"Origin": origin} if origin else {}
    return requests.get(engineio_url(base_url, "polling"), headers=headers, timeout=5)


class Transcript:
    """A plain WebSocket client speaking Engine.IO 4 and Socket.IO 5 by hand.

    Every frame sent and received is kept in ``frames`` as ``(direction, text)``,
    so a notebook can show what a Socket.IO library does for you::

        with Transcript(server.url, token=token) as wire:
            wire.emit("join_chat", {"room_id": "general"})
            wire.next_event()
        wire.frames
    """

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 3) -> None:
        self.timeout = timeout
        self.frames: list[tuple[str, str]] = []
        self.ws: ClientConnection = connect(
            engineio_url(base_url, "websocket"),
            origin=Origin("http://" + urlsplit(base_url).netloc),
            open_timeout=timeout, close_timeout=1, legacy=True,  # open across cells
        )
        self._pending: list[list[Any]] = []
        # Engine.IO OPEN: 0{"sid": ..., "pingInterval": ...}
        self.session = json.loads(self._receive()[1:])
        # Socket.IO CONNECT with auth: answered by 40{"sid": ...}, or by CONNECT_ERROR 44{...}
        self._send("40" + (json.dumps({"token": token}) if token else ""))
        self.connected = self._receive_until(("40", "44"))

    def _send(self, text: str) -> None:
        self.frames.append(("→", text))
        self.ws.send(text)

    def _receive(self) -> str:
        text = self.ws.recv(self.timeout)
        assert isinstance(text, str), "Engine.IO 4 sends text frames here"
        self.frames.append(("←", text))
        return text

    def emit(self, event: str, data: Any) -> None:
        """Send a Socket.IO EVENT packet: Engine.IO message ``4``, Socket.IO event ``2``."""
        self._send("42" + json.dumps([event, data]))

    def _receive_until(self, prefixes: tuple[str, ...]) -> str:
        """Read frames until one starts with one of ``prefixes``; keep events met on the way."""
        while True:
            text = self._receive()
            if text.startswith(prefixes):
                return text
            if text == "2":                                       # Engine.IO PING
                self._send("3")                                   # PONG
            elif text.startswith("42"):
                self._pending.append(json.loads(text[2:]))

    def call(self, event: str, data: Any) -> Any:
        """Send an EVENT that asks for an acknowledgement (id 1) and return the ACK's payload."""
        self._send("421" + json.dumps([event, data]))
        return json.loads(self._receive_until(("431",))[3:])

    def next_event(self) -> list[Any]:
        """The next ``[event, data]`` the server sends, answering Engine.IO pings on the way."""
        if self._pending:
            return self._pending.pop(0)
        return json.loads(self._receive_until(("42",))[2:])

    def close(self) -> None:
        self.ws.close()

    def __enter__(self) -> Transcript:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
