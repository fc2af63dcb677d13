"""The rows that cost the server memory: file uploads and idle connections.

Both run their servers in a child process (:mod:`.serve`) and read its resident
memory from the operating system, so the figures are the server's alone.
"""

from __future__ import annotations

import base64
import functools
import json
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import requests

from ...harness import LOOPBACK
from ...wire import TIMING_FRAMES, Counts, WireTap, count
from ..grpc_service import server as grpc_service
from .clients import wait_until
from .driver import Result, Run
from .push import SERVERS
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


#: Each upload (and the raw TCP floor) is timed this many times and the median kept: one
#: 5 MB upload on a shared machine measured from 7x to 31x the floor in four tries.
REPEATS = 3


def _once(child: Child, port: int, send: Callable[[WireTap], dict]
          ) -> tuple[float, int, int, int, int, int]:
    """One upload through a fresh tap: seconds, bytes received, wire bytes, connections,
    and the child's memory before and at its peak."""
    with WireTap(port, record=False) as tap:
        baseline = child.rss()
        answer: dict = {}
        started = time.perf_counter()
        worker = threading.Thread(target=lambda: answer.update(send(tap)), daemon=True)
        worker.start()
        peak = child.sample_peak(worker)
        worker.join(60)
        elapsed = time.perf_counter() - started
        return (elapsed, answer.get("size", 0), tap.total_bytes, len(tap.connections),
                baseline, peak)


def _counted(port: int, send: Callable[[WireTap], dict]) -> Counts:
    """One more upload, through a recording tap, untimed: its counts, HTTP/2's flow-control
    and PING frames left out (their number follows timing; gRPC's bytes moved by tens).

    gRPC still moves by a DATA frame's 9-byte header now and then (81 or 82 frames for
    5 MB): it splits a 64 KiB message into frames by the flow-control window open when it
    writes. Hypercorn's REST and GraphQL uploads repeat to the byte."""
    with WireTap(port) as tap:
        send(tap)
        return count(tap, without=TIMING_FRAMES)


def _measure(child: Child, protocol: str, port: int, size: int,
             send: Callable[[WireTap], dict], floor: float) -> Result:
    runs = [_once(child, port, send) for _ in range(REPEATS)]
    elapsed = statistics.median(r[0] for r in runs)
    counts = _counted(port, send)
    wire, connections = counts.bytes, counts.connections
    held = statistics.median(max(peak - baseline, 0) for *_, baseline, peak in runs)
    return Result("File upload", protocol, [r[0] for r in runs], wire, 1, connections, {
        "MB": round(size / MB, 1), "received": all(r[1] == size for r in runs),
        "wire bytes vs file": round(wire / size, 2),
        "server peak MB over idle": round(held / MB, 1),
        "peak vs file": round(held / size, 2),
        "time vs raw TCP": round(elapsed / floor, 1)})


def upload(run: Run, megabytes: float | None = None) -> list[Result]:
    """One file of ``megabytes`` MB over a streamed REST PUT, a gRPC client stream of
    64 KiB chunks, and GraphQL with the file in a variable: wire bytes, time (median of
    :data:`REPEATS`), server memory."""
    size = int((megabytes or 5 * run.scale) * MB)
    floor = statistics.median(raw_tcp_upload_time(size) for _ in range(REPEATS))

    def rest_put(tap: WireTap) -> dict:
        return requests.put(f"{tap.url}/files/data.bin", data=_chunks(size), timeout=60).json()

    def grpc_put(tap: WireTap) -> dict:
        with grpc_service.channel(tap.address) as channel:
            put = channel.stream_unary("/choosing.Upload/Put")
            # Bounded by waiting on the future, not by a deadline: a deadline travels as a
            # grpc-timeout header whose HPACK size changes with the time left.
            return json.loads(put.future(_chunks(size)).result(60))

    def graphql_put(tap: WireTap) -> dict:
        encoded = base64.b64encode(b"".join(_chunks(size))).decode()
        body = {"query": "mutation($file: String!) { upload(file: $file) { size } }",
                "variables": {"file": encoded}}
        return requests.post(f"{tap.url}/graphql", json=body, timeout=60).json()[
            "data"]["upload"]

    with spawn("uploads") as child:
        ports = child.info
        results = [_measure(child, "REST", ports["http_port"], size, rest_put, floor),
                   _measure(child, "gRPC", ports["grpc_port"], size, grpc_put, floor),
                   _measure(child, "GraphQL", ports["graphql_port"], size, graphql_put, floor)]
    return run.add(*results)


# --- idle connections -------------------------------------------------------------

IDLE_KINDS = ("websockets", "sse", "long-polling")


def _registered(child: Child, label: str, count: int) -> bool:
    return bool(child.call(label, "registered") >= count)


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
    """``count`` idle ``kind`` clients (``IDLE_KINDS``) against its push server
    (:mod:`.push`) in a child process (``child``, a ``spawn("push")``, or one spawned here;
    stopped when done): the server's memory per connection.

    The clients are bare sockets that sent the protocol's opening (the WebSocket
    handshake, the SSE request, a 30 s long poll) and then wait; the server counts them
    registered before its memory is read; every wait is bounded.
    """
    server = SERVERS[kind]
    assert server.opening is not None
    host = spawn("push") if child is None else child
    try:
        info = host.start(kind)
        port = info["port"]
        time.sleep(0.1)
        before = host.rss()
        sockets = []
        try:
            for n in range(count):
                sock = socket.create_connection((LOOPBACK, port), timeout=5)
                sock.sendall(server.opening(port, n, info))
                sockets.append(sock)
            settled = wait_until(functools.partial(_registered, host, kind, count),
                                 5 + count / 50)
            time.sleep(0.1)
            after = host.rss()
            seen = during() if during is not None else None
        finally:
            for sock in sockets:
                sock.close()
    finally:
        host.stop()
    return IdleMemory(kind, count, settled, before, after, seen)


def idle_connections(run: Run, count: int | None = None) -> list[Result]:
    """``count`` idle clients per protocol against its push server, each in a child process
    of its own, started together: the server's memory per connection (:func:`idle_memory`)."""
    count = count or run.sized(200)
    children = {kind: spawn("push") for kind in IDLE_KINDS}  # started together
    results = []
    try:
        for kind, child in children.items():
            measured = idle_memory(kind, count, child=child)
            per = measured.per_connection
            results.append(Result("Idle connections", SERVERS[kind].protocol, [], 0, 0, count, {
                "connections": count, "all open": measured.all_open,
                "server KB per connection": round(per / 1024, 1),
                "server MB for 1,000": round(per * 1000 / MB, 1)}))
    finally:
        for child in children.values():
            child.stop()
    return run.add(*results)
