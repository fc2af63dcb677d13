"""The rows that cost the server memory: file uploads and idle connections.

Both run their servers in a child process (:mod:`.serve`) and read its resident
memory from the operating system, so the figures are the server's alone.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import h11
import requests
from wsproto import ConnectionType, WSConnection
from wsproto.events import Request

from ...harness import LOOPBACK
from ...wire import WireTap
from ..grpc_service import server as grpc_service
from .clients import wait_until
from .driver import Result, Run
from .serve import UPLOAD_CHUNK, Child, spawn

__all__ = ["upload", "idle_connections", "idle_memory", "IdleMemory", "IDLE_KINDS"]

MB = 1024 * 1024


def _chunks(size: int) -> Iterator[bytes]:
    block = bytes(range(256)) * (UPLOAD_CHUNK // 256)
    sent = 0
    while sent < size:
        piece = block[:min(UPLOAD_CHUNK, size - sent)]
        sent += len(piece)
        yield piece


def raw_tcp_upload_time(size: int) -> float:
    """Seconds to push ``size`` bytes over raw TCP through a wire tap to a reader: the floor."""
    listener = socket.create_server((LOOPBACK, 0))
    done = threading.Event()

    def sink() -> None:
        connection, _ = listener.accept()
        with connection:
            while connection.recv(UPLOAD_CHUNK):
                pass
            connection.sendall(b"ok")
        done.set()

    threading.Thread(target=sink, name="raw-sink", daemon=True).start()
    with WireTap(listener.getsockname()[1], record=False) as tap:
        started = time.perf_counter()
        with socket.create_connection((LOOPBACK, tap.port), timeout=30) as client:
            for chunk in _chunks(size):
                client.sendall(chunk)
            client.shutdown(socket.SHUT_WR)
            client.recv(2)
        elapsed = time.perf_counter() - started
    listener.close()
    done.wait(5)
    return elapsed


def _measure(child, protocol: str, tap: WireTap, size: int, send: Callable[[], dict],
             floor: float) -> Result:
    baseline = child.rss()
    answer: dict = {}
    started = time.perf_counter()
    worker = threading.Thread(target=lambda: answer.update(send()), daemon=True)
    worker.start()
    peak = child.sample_peak(worker)
    worker.join(60)
    elapsed = time.perf_counter() - started
    received = answer.get("size", 0)
    return Result("File upload", protocol, [elapsed], tap.total_bytes, 1, len(tap.connections), {
        "MB": round(size / MB, 1), "received": received == size,
        "wire bytes vs file": round(tap.total_bytes / size, 2),
        "server peak MB over idle": round(max(peak - baseline, 0) / MB, 1),
        "peak vs file": round(max(peak - baseline, 0) / size, 2),
        "time vs raw TCP": round(elapsed / floor, 1)})


def upload(run: Run, megabytes: float | None = None) -> list[Result]:
    """One file of ``megabytes`` MB over a streamed REST PUT, a gRPC client stream of
    64 KiB chunks, and GraphQL with the file in a variable: wire bytes, time, server memory."""
    size = int((megabytes or 5 * run.scale) * MB)
    results = []
    floor = raw_tcp_upload_time(size)
    with spawn("uploads") as child:
        http_port, grpc_port = child.info["http_port"], child.info["grpc_port"]
        with WireTap(http_port, record=False) as tap:
            results.append(_measure(child, "REST", tap, size, lambda: requests.put(
                f"{tap.url}/files/data.bin", data=_chunks(size), timeout=60).json(), floor))
        with WireTap(grpc_port, record=False) as tap:
            def grpc_put() -> dict:
                with grpc_service.channel(tap.address) as channel:
                    put = channel.stream_unary("/choosing.Upload/Put")
                    return json.loads(put(_chunks(size), timeout=60))
            results.append(_measure(child, "gRPC", tap, size, grpc_put, floor))
        with WireTap(http_port, record=False) as tap:
            def graphql_put() -> dict:
                encoded = base64.b64encode(b"".join(_chunks(size))).decode()
                body = {"query": "mutation($file: String!) { upload(file: $file) { size } }",
                        "variables": {"file": encoded}}
                return requests.post(f"{tap.url}/graphql", json=body, timeout=60).json()[
                    "data"]["upload"]
            results.append(_measure(child, "GraphQL", tap, size, graphql_put, floor))
    return run.add(*results)


# --- idle connections -------------------------------------------------------------

def _http_request(target: str, port: int, **headers: str) -> bytes:
    connection = h11.Connection(h11.CLIENT)
    fields = [("Host", f"{LOOPBACK}:{port}"), *headers.items()]
    return connection.send(h11.Request(method="GET", target=target, headers=fields))


def _opening(kind: str, port: int, token: str | None, n: int) -> bytes:
    if kind == "sse":
        return _http_request(f"/events?client_id=idle{n}", port, Accept="text/event-stream")
    if kind == "long-polling":
        return _http_request("/api/notifications/ada/poll?timeout=30", port)
    return WSConnection(ConnectionType.CLIENT).send(
        Request(host=f"{LOOPBACK}:{port}", target=f"/ws?token={token}"))


def _ready(kind: str, port: int, expected: int) -> Callable[[], bool]:
    def check() -> bool:
        if kind == "sse":
            body = requests.get(f"http://{LOOPBACK}:{port}/api/clients", timeout=5).json()
            return len(body["connections"]) >= expected
        if kind == "long-polling":
            body = requests.get(f"http://{LOOPBACK}:{port}/api/stats", timeout=5).json()
            return body["waiting"] >= expected
        return True
    return check


IDLE_KINDS = {"websockets": "WebSockets", "sse": "SSE", "long-polling": "Long Polling"}


@dataclass(frozen=True)
class IdleMemory:
    """What ``connections`` idle clients of one protocol cost its server, read by psutil:
    the child's resident memory before and after; ``during`` is what the caller's
    ``during()`` returned while they were all open."""

    kind: str
    connections: int
    all_open: bool
    rss_before: int
    rss_after: int
    during: Any = None

    @property
    def per_connection(self) -> float:
        """Bytes of the server's resident memory per open connection (user space only)."""
        return (self.rss_after - self.rss_before) / self.connections


def idle_memory(kind: str, count: int, *, child: Child | None = None,
                during: Callable[[], Any] | None = None) -> IdleMemory:
    """``count`` idle ``kind`` clients (``IDLE_KINDS``) against the lab's server in a child
    process (``child``, or one spawned and stopped here): its memory per connection.

    The clients are bare sockets that sent the protocol's opening (the WebSocket
    handshake, the SSE request, a 30 s long poll) and then wait; every wait is bounded.
    """
    own = child is None
    server = spawn(kind) if child is None else child
    try:
        port, token = server.info["port"], server.info.get("token")
        time.sleep(0.1)
        before = server.rss()
        sockets = []
        try:
            for n in range(count):
                sock = socket.create_connection((LOOPBACK, port), timeout=5)
                sock.sendall(_opening(kind, port, token, n))
                sockets.append(sock)
            if kind == "websockets":
                for sock in sockets:
                    sock.recv(4096)  # the 101 response
            settled = wait_until(_ready(kind, port, count), 5 + count / 50)
            time.sleep(0.1)
            after = server.rss()
            seen = during() if during is not None else None
        finally:
            for sock in sockets:
                sock.close()
    finally:
        if own:
            server.stop()
    return IdleMemory(kind, count, settled, before, after, seen)


def idle_connections(run: Run, count: int | None = None) -> list[Result]:
    """``count`` idle clients per protocol against the lab's server: its memory per connection
    (:func:`idle_memory`, the three servers started together)."""
    count = count or run.sized(200)
    results = []
    children = {kind: spawn(kind) for kind in IDLE_KINDS}  # one server each, started together
    try:
        for kind, protocol in IDLE_KINDS.items():
            child = children[kind]
            try:
                measured = idle_memory(kind, count, child=child)
            finally:
                child.stop()
            per = measured.per_connection
            results.append(Result("Idle connections", protocol, [], 0, 0, count, {
                "connections": count, "all open": measured.all_open,
                "server KB per connection": round(per / 1024, 1),
                "server MB for 1,000": round(per * 1000 / MB, 1)}))
    finally:
        for child in children.values():
            child.stop()
    return run.add(*results)
