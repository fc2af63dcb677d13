"""The one application every HTTP version serves (plain ASGI, no framework in the way).

    GET  /                 a short greeting naming the HTTP version the request came over
    GET  /bytes/<n>        n bytes of body (at most 10 MB), for streams of a known size
    POST /orders           counts the orders placed: shows what replaying a request does
    anything else          404 with the collection's JSON error envelope
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from ...api_errors import envelope

__all__ = ["App", "MAX_BYTES"]

MAX_BYTES = 10_000_000
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class App:
    """The ASGI app; ``orders`` counts the POSTs to /orders it has served."""

    def __init__(self) -> None:
        self.orders = 0
        self.requests: list[tuple[str, str, str]] = []   # (http_version, method, path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        version, method, path = scope["http_version"], scope["method"], scope["path"]
        self.requests.append((version, method, path))
        while (await receive()).get("more_body"):
            pass
        if path == "/" and method == "GET":
            await _reply(send, 200, f"hello over HTTP/{version}\n".encode(), "text/plain")
        elif path.startswith("/bytes/") and method == "GET" and path[7:].isdigit() \
                and int(path[7:]) <= MAX_BYTES:
            await _reply(send, 200, b"x" * int(path[7:]), "application/octet-stream")
        elif path == "/orders" and method == "POST":
            self.orders += 1
            await _json(send, 201, {"order": self.orders})
        else:
            await _json(send, 404, envelope(404, f"no route for {method} {path}"))


async def _json(send: Send, status: int, body: Any) -> None:
    await _reply(send, status, json.dumps(body).encode(), "application/json")


async def _reply(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
