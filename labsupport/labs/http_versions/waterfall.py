"""A page's 30 resources on a shaped link: HTTP/1.1 on six connections per origin, HTTP/2 on one.

httpx plays the browser against the lab's cleartext port, through a
:class:`~labsupport.wire.WireTap` shaped to a named network profile. Like a browser, it
fetches the page first (``GET /``), then the page's resources all at once:

- HTTP/1.1 with ``httpx.Limits(max_connections=6)``: what browsers allow per origin, so
  the 30 requests queue for six connections, one request at a time on each;
- HTTP/2 with prior knowledge (h2c, ``http1=False, http2=True``) under the same limits:
  httpx puts every request on the one connection, as streams.

Each resource is ``GET /slow/<ms>``: the server takes ``think_ms`` over each (an API call,
an image made on demand), so what the versions change is how many wait at once. Each
request is timed on the client by httpx's ``trace`` extension, from when its headers went
out to when its body was read (0 is when the first resource was asked for). Counts first:
the connections the tap saw, the most requests in flight at once, and the *waves* (the
longest chain of requests each of which could only start once the one before it had ended).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from dataclasses import dataclass
from typing import Any

import httpx
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ...wire import NetworkProfile, WireTap, profile

__all__ = ["Request", "Waterfall", "load", "plot"]

BROWSER_CONNECTIONS = 6   # per origin, over HTTP/1.1 (Chromium, Firefox, Safari)


@dataclass(frozen=True)
class Request:
    """One resource: the connection that carried it (1, 2, ... in order of first use) and
    when its headers went out and its body was in (ms after the page asked for all)."""

    index: int
    connection: int
    start_ms: float
    end_ms: float


@dataclass(frozen=True)
class Waterfall:
    """The requests of one page load and the TCP connections the tap saw."""

    protocol: str
    link: NetworkProfile
    requests: tuple[Request, ...]
    connections: int

    @property
    def most_in_flight(self) -> int:
        """The most requests whose headers were out and whose bodies were not yet in."""
        edges = sorted([(r.start_ms, 1) for r in self.requests] +
                       [(r.end_ms, -1) for r in self.requests])
        most = level = 0
        for _, step in edges:   # an end at the same instant as a start is counted first
            level += step
            most = max(most, level)
        return most

    @property
    def waves(self) -> int:
        """The longest chain of requests, each starting after the one before it ended."""
        ordered = sorted(self.requests, key=lambda r: r.start_ms)
        chain: list[int] = []
        for i, request in enumerate(ordered):
            chain.append(1 + max((chain[j] for j in range(i)
                                  if ordered[j].end_ms <= request.start_ms), default=0))
        return max(chain, default=0)

    @property
    def total_ms(self) -> float:
        return max(r.end_ms for r in self.requests)

    def __str__(self) -> str:
        return (f"{self.protocol} on {self.link.name}: {len(self.requests)} requests on "
                f"{self.connections} connection(s), at most {self.most_in_flight} in flight, "
                f"{self.waves} wave(s), all in after {self.total_ms:.0f} ms")


async def _page(url: str, http2: bool, count: int, think_ms: int,
                timeout: float) -> tuple[list[tuple[int, float, float]], float]:
    """The page, then ``count`` resources at once; (stream id, start, end) of each, and when
    they were asked for."""
    limits = httpx.Limits(max_connections=BROWSER_CONNECTIONS)
    times: dict[int, dict[str, float]] = {}
    streams: dict[int, int] = {}

    async def one(index: int, client: httpx.AsyncClient) -> None:
        async def trace(event: str, info: dict[str, Any]) -> None:
            if event.endswith("send_request_headers.started"):
                times[index]["start"] = time.perf_counter()
            elif event.endswith("receive_response_body.complete"):
                times[index]["end"] = time.perf_counter()

        times[index] = {}
        reply = await client.get(f"{url}/slow/{think_ms}?i={index}", extensions={"trace": trace})
        reply.raise_for_status()
        streams[index] = id(reply.extensions["network_stream"])

    async with httpx.AsyncClient(http1=not http2, http2=http2, limits=limits,
                                 timeout=timeout) as client:
        (await client.get(f"{url}/")).raise_for_status()   # the page: its connection is open
        asked = time.perf_counter()                          # (HTTP/2: its SETTINGS are known)
        await asyncio.wait_for(asyncio.gather(*(one(i, client) for i in range(count))), timeout)
    return [(streams[i], times[i]["start"], times[i]["end"]) for i in range(count)], asked


def load(server: Any, *, http2: bool, link: str | NetworkProfile = "lte", count: int = 30,
         think_ms: int = 150, timeout: float = 20.0) -> Waterfall:
    """The page, then ``count`` GETs at once from ``server``'s cleartext port, each taking
    the server ``think_ms``, through a tap shaped to ``link``: over HTTP/1.1 (six
    connections at most) or HTTP/2 (h2c)."""
    shaped = profile(link)
    with WireTap(server.cleartext_port, profile=shaped, record=False) as tap, \
            concurrent.futures.ThreadPoolExecutor(1) as pool:   # its own event loop
        rows, began = pool.submit(asyncio.run, _page(tap.url, http2, count, think_ms, timeout)
                                  ).result(timeout + 5)
        connections = len(tap.connections)
    numbers: dict[int, int] = {}
    for stream, _, _ in sorted(rows, key=lambda row: row[1]):
        numbers.setdefault(stream, len(numbers) + 1)
    requests = tuple(Request(i, numbers[stream], (start - began) * 1000, (end - began) * 1000)
                     for i, (stream, start, end) in enumerate(rows))
    return Waterfall("HTTP/2" if http2 else "HTTP/1.1", shaped, requests, connections)


def plot(waterfalls: list[Waterfall],
         title: str = "A page's resources, asked for at once: when each went out and came in",
         ) -> Figure:
    """One panel per load, one row per request grouped by connection: a bar from its headers
    out to its body in; connections alternate plain and hatched bars and are named on the
    left (readable without colour)."""
    figure, panels = plt.subplots(1, len(waterfalls), figsize=(10, 5.2), sharex=True,
                                  squeeze=False, layout="constrained")
    for axes, load_ in zip(panels[0], waterfalls, strict=True):
        rows = sorted(load_.requests, key=lambda r: (r.connection, r.start_ms))
        for row, request in enumerate(rows):
            odd = request.connection % 2 == 0
            axes.barh(row, request.end_ms - request.start_ms, left=request.start_ms,
                      height=0.7, color="#d0d7de" if odd else "#0969da", edgecolor="#24292f",
                      linewidth=0.5, hatch="////" if odd else None)
        firsts: dict[int, int] = {}
        for row, request in enumerate(rows):
            firsts.setdefault(request.connection, row)
        axes.set_yticks(list(firsts.values()), [f"connection {c}" for c in firsts], fontsize=8)
        for row in list(firsts.values())[1:]:
            axes.axhline(row - 0.5, color="#57606a", linestyle=":", linewidth=0.8)
        axes.invert_yaxis()
        axes.set_xlabel("ms after the page asked for its resources")
        axes.set_title(f"{load_.protocol}: {load_.connections} connection(s), "
                       f"{load_.waves} wave(s)", loc="left", fontsize=10)
        axes.spines[["top", "right"]].set_visible(False)
    figure.suptitle(f"{title} ({waterfalls[0].link})", fontsize=10)
    plt.close(figure)
    return figure
