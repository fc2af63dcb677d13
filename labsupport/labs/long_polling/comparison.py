"""The same stream of notifications over SSE and over long polling, measured.

Used by notebooks/06-long-polling.ipynb, 09-interview-questions.ipynb (this lab's
public API, with its ``server``) and ``tools/bench_streaming.py``::

    from labsupport.labs.long_polling import comparison as push_comparison
    push_comparison.compare(count=100)

One client per protocol reads ``count`` notifications published in-process
every ``gap`` seconds; the figures are what each client saw: HTTP requests it
made, connections it opened, and publish-to-receive latency.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from ..sse import server as sse
from . import server as long_polling

__all__ = ["compare", "measure_sse", "measure_long_polling"]


def _summary(protocol: str, latencies: list[float], requests: int, connections: int,
             count: int) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "protocol": protocol,
        "received": len(latencies),
        "requests": requests,
        "connections_opened": connections,
        "median_ms": round(statistics.median(ordered) * 1000, 2) if ordered else None,
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 2) if ordered else None,
        "count": count,
    }


def _publish(count: int, gap: float, send: Callable[[int], object], sent: dict[int, float]) -> None:
    for n in range(1, count + 1):
        sent[n] = time.perf_counter()
        send(n)
        time.sleep(gap)


def measure_sse(count: int = 100, gap: float = 0.005, timeout: float = 10.0) -> dict[str, Any]:
    """``count`` events broadcast to one SSE client: requests, connections, latency."""
    sent: dict[int, float] = {}
    arrivals: dict[int, float] = {}
    with sse.start(name="sse-compare", heartbeat=1.0, retry_ms=100) as server:
        stream = sse.ResumableEventStream(f"{server.url}/events?client_id=compare",
                                          read_timeout=5)
        connected = threading.Event()

        def read() -> None:
            for event in stream:
                if event.id is None:
                    connected.set()
                    continue
                arrivals[int(event.id)] = time.perf_counter()
                if len(arrivals) == count:
                    stream.close()

        reader = threading.Thread(target=read, name="sse-compare", daemon=True)
        reader.start()
        connected.wait(timeout)
        _publish(count, gap, lambda n: server.broker.publish("notification", {"n": n}), sent)
        reader.join(timeout)
        stream.close()
        latencies = [arrivals[n] - sent[n] for n in sorted(arrivals)]
        return _summary("SSE", latencies, stream.connections, stream.connections, count)


def measure_long_polling(count: int = 100, gap: float = 0.005,
                         timeout: float = 10.0) -> dict[str, Any]:
    """``count`` notifications to one long-polling client: requests, connections, latency."""
    sent: dict[int, float] = {}
    arrivals: dict[int, float] = {}
    with long_polling.start(name="long-polling-compare", history=count) as server:
        poller = long_polling.Poller(server.url, "ada", timeout=1.0)
        deadline = time.monotonic() + timeout

        def poll() -> None:
            while len(arrivals) < count and time.monotonic() < deadline:
                for notification in poller.poll():
                    arrivals[notification["id"]] = time.perf_counter()

        reader = threading.Thread(target=poll, name="long-polling-compare", daemon=True)
        reader.start()
        while server.hub.waiting() == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        _publish(count, gap, lambda n: server.hub.send("ada", "notification", {"n": n}), sent)
        reader.join(timeout)
        latencies = [arrivals[n] - sent[n] for n in sorted(arrivals)]
        # Werkzeug closes the connection after every response: one connection per request.
        return _summary("long polling", latencies, poller.requests, poller.requests, count)


def compare(count: int = 100, gap: float = 0.005) -> list[dict[str, Any]]:
    """Both protocols on the same stream of ``count`` notifications, one ``gap`` apart."""
    return [measure_sse(count, gap), measure_long_polling(count, gap)]
