"""The one application every HTTP version serves (plain ASGI, no framework in the way).

    GET  /                 a short greeting naming the HTTP version the request came over
    GET  /bytes/<n>        n bytes of body (at most 10 MB), for streams of a known size
    GET  /slow/<ms>        a short body after ms milliseconds (at most 2000): a resource that
                           takes a while, so that how many load at once shows
    GET  /trailers         a body in 3 parts, then its SHA-256 as a trailer field (over HTTP/2 and
                           HTTP/3, to a client that sent ``te: trailers``; HTTP/1.1 gets no trailer)
    GET  /page?n=<k>       a page whose script fetches k slow resources at once and keeps their
                           Resource Timing in ``window.loaded`` (what a browser's waterfall shows)
    POST /orders           counts the orders placed: shows what replaying a request does
    PATCH /orders/<n>      adds an item to order n, counted with the orders: a change that is
                           not POST, and not idempotent either
    anything else          404 with the collection's JSON error envelope
"""

from __future__ import annotations

import asyncio
import hashlib
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
        self.peers: list[tuple[str, int]] = []   # (path, client port): which connection carried it

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
        self.peers.append((path, (scope.get("client") or ("", 0))[1]))
        while (await receive()).get("more_body"):
            pass
        if path == "/" and method == "GET":
            await _reply(send, 200, f"hello over HTTP/{version}\n".encode(), "text/plain")
        elif path.startswith("/bytes/") and method == "GET" and path[7:].isdigit():
            if int(path[7:]) > MAX_BYTES:
                await _json(send, 400, envelope(400, f"at most {MAX_BYTES} bytes",
                                                details={"n": [path[7:]]}))
            else:
                await _reply(send, 200, b"x" * int(path[7:]), "application/octet-stream")
        elif path.startswith("/slow/") and method == "GET" and path[6:].isdigit() \
                and int(path[6:]) <= 2000:
            await asyncio.sleep(int(path[6:]) / 1000)
            await _reply(send, 200, b"done\n", "text/plain")
        elif path == "/trailers" and method == "GET":
            await _with_trailer(send, scope)
        elif path == "/page" and method == "GET":
            query = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&")
                         if "=" in p)
            count = int(query["n"]) if query.get("n", "").isdigit() else 30
            await _reply(send, 200, _page(min(count, 100)).encode(), "text/html")
        elif path == "/orders" and method == "POST":
            self.orders += 1
            await _json(send, 201, {"order": self.orders})
        elif path.startswith("/orders/") and method == "PATCH" and path[8:].isdigit():
            self.orders += 1
            await _json(send, 200, {"order": int(path[8:]), "changes": self.orders})
        else:
            await _json(send, 404, envelope(404, f"no route for {method} {path}"))


def _page(count: int) -> str:
    """A page fetching ``count`` slow resources at once, keeping their Resource Timing."""
    return f"""<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<title>{count} resources</title>
<pre id="out">loading {count} resources…</pre>
<script>
const urls = Array.from({{length: {count}}}, (_, i) => `slow/200?i=${{i}}`);
Promise.all(urls.map(u => fetch(u).then(r => r.text()))).then(() => {{
  window.loaded = performance.getEntriesByType("resource").map(e => ({{
    name: e.name, protocol: e.nextHopProtocol, start: e.requestStart, end: e.responseEnd}}))
    .filter(e => e.name.includes("/slow/"));
  document.getElementById("out").textContent = JSON.stringify(window.loaded, null, 1);
}});
</script>"""


TRAILER_PARTS = (b"first part\n", b"second part\n", b"third part\n")


async def _with_trailer(send: Send, scope: Scope) -> None:
    """The parts of the body, then a field only known once they are sent: their digest
    (what the ASGI ``http.response.trailers`` extension is for; hypercorn offers it on HTTP/2
    and HTTP/3)."""
    trailers = "http.response.trailers" in scope.get("extensions", {})
    await send({"type": "http.response.start", "status": 200, "trailers": trailers, "headers": [
        (b"content-type", b"text/plain"), *([(b"trailer", b"x-body-sha256")] * trailers)]})
    digest = hashlib.sha256()
    for number, part in enumerate(TRAILER_PARTS, 1):
        digest.update(part)
        await send({"type": "http.response.body", "body": part,
                     "more_body": number < len(TRAILER_PARTS)})
    if trailers:
        await send({"type": "http.response.trailers", "more_trailers": False,
                    "headers": [(b"x-body-sha256", digest.hexdigest().encode())]})


async def _json(send: Send, status: int, body: Any) -> None:
    await _reply(send, status, json.dumps(body).encode(), "application/json")


async def _reply(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
