"""Measurements on the lab servers that back (or correct) the document's answers.

Each function drives running lab servers through the choosing lab's
:class:`~labsupport.wire.WireTap`, so the bytes and connections it
reports are the ones on the wire.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from typing import Any, cast

import requests
import urllib3
from websockets.sync.client import connect

from ... import codegen
from ...harness import ServerHandle
from ...wire import WireTap
from ..grpc_service.server import channel
from ..sse.server import SSEHandle
from ..websocket_chat.server import ChatHandle

__all__ = ["rest_vs_graphql_caching", "fetching", "browser_connection_limit",
           "http2_multiplexing", "bytes_per_message", "client_frame_bytes", "resume_after_gap"]

USERS_PATH = "/api/v1/users?limit=25"
USERS_QUERY = "{ users(limit: 25) { id name email createdAt } }"
PING_FRAME = 2 + 4 + 4   # header, mask, the 4-byte payload: control frames are never compressed


def _via(tap: WireTap, path: str) -> str:
    return f"{tap.url}{path}"


def rest_vs_graphql_caching(rest: ServerHandle, graphql: ServerHandle,
                            reads: int = 10) -> list[dict[str, Any]]:
    """25 users read ``reads`` times: REST revalidating with its ETag, GraphQL by POST."""
    rows = []
    with WireTap(rest.port) as tap, requests.Session() as session:
        url, etag, statuses = _via(tap, USERS_PATH), None, []
        for _ in range(reads):
            response = session.get(url, headers={"If-None-Match": etag} if etag else {},
                                   timeout=5)
            etag = response.headers.get("ETag", etag)
            statuses.append(response.status_code)
        rows.append({"api": "REST GET + If-None-Match", "bytes_down": tap.bytes_down,
                     "statuses": statuses, "validator": response.headers.get("ETag")})
    with WireTap(graphql.port) as tap, requests.Session() as session:
        statuses = []
        for _ in range(reads):
            response = session.post(_via(tap, "/graphql"), json={"query": USERS_QUERY}, timeout=5)
            statuses.append(response.status_code)
        rows.append({"api": "GraphQL POST", "bytes_down": tap.bytes_down,
                     "statuses": statuses, "validator": response.headers.get("ETag")})
    return rows


def fetching(rest: ServerHandle, graphql: ServerHandle) -> list[dict[str, Any]]:
    """The document's under-fetching example, a user and their recent orders, both ways."""
    rows = []
    with WireTap(rest.port) as tap:
        for path in ("/api/v1/users/101", "/api/v1/users/101/orders?limit=3"):
            requests.get(_via(tap, path), timeout=5).raise_for_status()
        rows.append({"api": "REST", "requests": 2, "bytes_down": tap.bytes_down,
                     "connections": len(tap.connections)})
    query = '{ user(id: "101") { name email orders(limit: 3) { item totalCents } } }'
    with WireTap(graphql.port) as tap:
        requests.post(_via(tap, "/graphql"), json={"query": query}, timeout=5).raise_for_status()
        rows.append({"api": "GraphQL", "requests": 1, "bytes_down": tap.bytes_down,
                     "connections": len(tap.connections)})
    return rows


def browser_connection_limit(sse: SSEHandle, per_host: int = 6,
                             wait: float = 1) -> dict[str, Any]:
    """A browser's HTTP/1.1 rule, ``per_host`` connections, with that many streams open.

    urllib3's pool plays the browser: ``per_host`` connections, blocking when
    all are busy. A seventh request waits (``wait`` seconds here, for ever in
    a browser, until a stream ends).
    """
    with WireTap(sse.port) as tap:
        pool = urllib3.HTTPConnectionPool("127.0.0.1", tap.port, maxsize=per_host, block=True)
        streams = [pool.urlopen("GET", f"/events?client_id=tab-{n}", preload_content=False,
                                retries=False, timeout=5) for n in range(per_host)]
        started = time.monotonic()
        try:
            # urllib3 annotates pool_timeout as int, but it is seconds handed on to
            # _get_conn(timeout: float) and Queue.get: a fraction of a second works.
            pool.urlopen("GET", "/api/clients", pool_timeout=cast(int, wait), retries=False,
                         timeout=5)
            answered = True
        except urllib3.exceptions.EmptyPoolError:
            answered = False
        waited = time.monotonic() - started
        for stream in streams:
            stream.release_conn()
        pool.close()
        return {"streams_open": per_host, "connections": len(tap.connections),
                "next_request_answered": answered, "waited_s": waited}


def http2_multiplexing(grpc_server: ServerHandle, streams: int = 7) -> dict[str, Any]:
    """``streams`` open gRPC client streams and a unary call, over one HTTP/2 connection."""
    pb2, pb2_grpc = codegen.load("user_service")
    release = threading.Event()

    def nothing_until_released():
        release.wait(5)
        yield from ()

    with WireTap(grpc_server.port) as tap, channel(tap.address) as ch:
        stub = pb2_grpc.UserServiceStub(ch)
        held = [stub.BulkCreateUsers.future(nothing_until_released(), timeout=10)
                for _ in range(streams)]
        started = time.monotonic()
        reply = stub.GetUser(pb2.GetUserRequest(id=101), timeout=5)
        took = time.monotonic() - started
        still_open = sum(call.running() for call in held)
        release.set()
        for call in held:
            call.result(timeout=5)
        return {"streams_open": still_open, "unary_answered": reply.user.name,
                "unary_s": took, "connections": len(tap.connections)}


def bytes_per_message(long_polling: ServerHandle, chat: ChatHandle, count: int = 10,
                      compression: str | None = None) -> list[dict[str, Any]]:
    """Bytes on the wire to send one small message: an HTTP POST vs a WebSocket frame."""
    body = {"recipient_id": "user-123", "sender_id": "ada", "message": "typing..."}
    with WireTap(long_polling.port) as tap, requests.Session() as session:
        for _ in range(count):
            session.post(_via(tap, "/api/send_message"), json=body, timeout=5).raise_for_status()
        http = {"transport": "HTTP/1.1 POST", "up": tap.bytes_up / count,
                "down": tap.bytes_down / count, "connections": len(tap.connections)}
    frame = json.dumps({"type": "typing", "room_id": "general", "is_typing": True})
    with WireTap(chat.port) as tap:
        url = f"ws://{tap.address}/ws?token={chat.token_for(101)}"
        with connect(url, compression=compression, open_timeout=5) as ws:
            ws.recv(timeout=5)                                  # "connected"
            opened = len(tap.connections)
            tap.reset()
            for _ in range(count):
                ws.send(frame)
            ws.ping(b"mark").wait(5)              # the pong: the server has read them all
            up = (tap.bytes_up - PING_FRAME) / count
        websocket = {"transport": f"WebSocket ({compression or 'no compression'})", "up": up,
                     "down": 0.0, "connections": opened}
    return [http, websocket]


def client_frame_bytes(chat: ChatHandle, sizes: Iterable[int]) -> dict[int, int]:
    """Bytes on the wire for one text message of each size, client to server, uncompressed.

    The chat server answers each (they are not JSON) with an ``error`` and stays open;
    a ping after each message marks the point where the server has read it.
    """
    measured: dict[int, int] = {}
    with WireTap(chat.port) as tap:
        url = f"ws://{tap.address}/ws?token={chat.token_for(101)}"
        with connect(url, compression=None, open_timeout=5) as ws:
            ws.recv(timeout=5)                                  # "connected"
            for size in sizes:
                tap.reset()
                ws.send("x" * size)
                if not ws.ping(b"mark").wait(5):
                    raise TimeoutError("the chat server did not answer a ping within 5 s")
                measured[size] = tap.bytes_up - PING_FRAME
    return measured


def resume_after_gap(sse: SSEHandle, *, with_ids: bool, missed: int = 3) -> dict[str, Any]:
    """Reconnect after ``missed`` events were sent while away: with Last-Event-ID, or without.

    Without ids a client has nothing to send back, so it reconnects as new;
    with them it sends the id of the last event it saw and the server replays.
    """
    broker = sse.broker
    url = f"{sse.url}/events?client_id=reader"
    with requests.get(url, stream=True, timeout=5) as first:
        first.raw.read(1)                      # connected
        seen = broker.publish("update", {"n": 0}).id
    for n in range(1, missed + 1):              # sent while the client is away
        broker.publish("update", {"n": n})
    headers = {"Last-Event-ID": str(seen)} if with_ids else {}
    received = []
    with requests.get(url, headers=headers, stream=True, timeout=5) as again:
        broker.publish("update", {"n": missed + 1})
        for line in again.iter_lines(decode_unicode=True):
            if line.startswith("data:") and '"update"' in line:
                received.append(json.loads(line[5:])["data"]["n"])
                if received[-1] == missed + 1:
                    break
    return {"with_ids": with_ids, "received": received,
            "lost": [n for n in range(1, missed + 1) if n not in received]}
