"""The document's "SSE vs WebSockets" table, each row measured on the lab servers."""

from __future__ import annotations

import base64

import requests
from websockets.exceptions import ConnectionClosed
from wsproto.frame_protocol import FrameProtocol

from ..sse import server as sse
from .clients import SSEReceiver, WebSocketReceiver, wait_until
from .driver import Run

__all__ = ["sse_vs_websockets"]


def _direction(run: Run) -> tuple[str, str]:
    status = requests.post(f"{run.sse.url}/events", json={}, timeout=5).status_code
    chat = run.result("Real-time chat", "WebSockets")
    sent = "frames both ways on one connection" + (
        f" (chat: {chat.extra['delivered']} delivered)" if chat else "")
    return f"POST to the stream's URL: HTTP {status}; clients send with a separate request", sent


def _reconnection(run: Run) -> tuple[str, str]:
    with sse.start(name="choosing-sse-resume", retry_ms=100) as server:
        events: list[str] = []
        receiver = SSEReceiver(server.url, "resume", lambda data, _: events.append(data["n"]))
        server.broker.publish("news", {"n": 1})
        wait_until(lambda: len(events) >= 1, 2)
        server.broker.drop_all()
        server.broker.publish("news", {"n": 2})  # published while the client is away
        wait_until(lambda: len(events) >= 2, 3)
        connections = receiver.stream.connections
        resumed = list(server.broker.resumed_from)
        server.broker.drop_all()
        receiver.close()
    sse_fact = (f"the client reconnected by itself ({connections} connections) and resumed "
                f"after event {resumed[0] if resumed else '—'}: got {events}")
    ws_server = run.chat
    ws = WebSocketReceiver(ws_server.ws_url.rsplit("/ws", 1)[0], ws_server.token_for(102),
                           "resume", set(), lambda *_: None)
    ws.joined.wait(2)
    ws_server.drop(102)
    ws.thread.join(2)
    try:
        ws.ws.send('{"type": "typing", "room_id": "resume", "is_typing": true}')
        after = "the connection still sends"
    except ConnectionClosed as closed:
        after = (f"closed with {closed.rcvd.code if closed.rcvd else '—'}; nothing reconnects "
                 f"unless the application does")
    return sse_fact, after


def _binary(run: Run) -> tuple[str, str]:
    blob = bytes(range(256))
    frame = FrameProtocol(client=False, extensions=[]).send_data(blob, fin=True)
    text = f"data: {base64.b64encode(blob).decode()}\n\n"
    return (f"text only: 256 bytes as base64 in an event = {len(text.encode())} B",
            f"a binary frame: 256 bytes = {len(frame)} B")


def _memory(run: Run) -> tuple[str, str]:
    def per(protocol: str) -> str:
        result = run.result("Idle connections", protocol)
        return f"{result.extra['server KB per connection']} KB per idle connection" \
            if result else "—"
    return per("SSE"), per("WebSockets")


def _bytes_per_push(run: Run) -> tuple[str, str]:
    def per(protocol: str) -> str:
        result = run.result("Live updates", protocol)
        return f"{result.bytes_per_op:.0f} B per pushed update" if result else "—"
    return per("SSE"), per("WebSockets")


def _proxies(run: Run) -> tuple[str, str]:
    response = requests.get(f"{run.sse.url}/events?client_id=headers", stream=True,
                            timeout=5)
    headers = {k: response.headers.get(k) for k in ("Content-Type", "Cache-Control",
                                                    "X-Accel-Buffering")}
    response.close()
    run.sse.drop()
    return ("plain HTTP; a buffering proxy holds events unless told not to: "
            + ", ".join(f"{k}: {v}" for k, v in headers.items()),
            "an Upgrade: a proxy must pass the upgrade through, or the handshake fails")


def sse_vs_websockets(run: Run) -> list[dict[str, str]]:
    """The document's comparison, one row a feature, each fact observed in this run."""
    rows = []
    for feature, measure in (("Direction", _direction), ("Reconnection", _reconnection),
                             ("Bytes per push", _bytes_per_push), ("Binary", _binary),
                             ("Memory", _memory), ("Proxies", _proxies)):
        facts = measure(run)
        rows.append({"feature": feature, "SSE": facts[0], "WebSockets": facts[1]})
    return rows
