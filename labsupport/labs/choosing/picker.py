"""A protocol picker: requirements in, a protocol and its reasons out.

The rules are the document's selection criteria, made checkable; where a run's
measurements are given, the reasons quote them (as ratios to the run's floor)::

    pick(Requirements(direction="bidirectional", rate_hz=30, browser=True), run)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .driver import Run

__all__ = ["Requirements", "Recommendation", "Pick", "pick"]

DIRECTIONS = ("request-response", "server-push", "bidirectional")


@dataclass(frozen=True)
class Requirements:
    """What a system needs. ``direction`` is one of ``DIRECTIONS``."""

    direction: str = "request-response"
    browser: bool = True
    http_caching: bool = False
    rate_hz: float = 0.0             # messages per second per client
    clients: int = 100
    payload_mb: float = 0.0          # the largest single payload
    mobile_idle: bool = False        # clients sit idle on a battery most of the time
    latency_budget_ms: float | None = None


@dataclass(frozen=True)
class Pick:
    """An answer to a scenario: the protocol, and the requirement (a field of
    :class:`Requirements`) that decides between the candidates."""

    protocol: str
    decided_by: str


@dataclass
class Recommendation:
    protocol: str
    reasons: list[str] = field(default_factory=list)
    ruled_out: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"→ {self.protocol}"] + [f"  because {r}" for r in self.reasons]
        lines += [f"  not {p}: {why}" for p, why in self.ruled_out.items()]
        return "\n".join(lines)

    __repr__ = __str__


def _figure(run: Run | None, row: str, protocol: str, what: str = "p99") -> str:
    if run is None or (result := run.result(row, protocol)) is None or not result.latencies:
        return ""
    value = result.p99 if what == "p99" else result.p50
    return (f" (measured: {row.lower()} {what} {value / run.floor.rtt:.0f}× floor, "
            f"{result.bytes_per_op:.0f} B/message)")


def pick(needs: Requirements, run: Run | None = None) -> Recommendation:
    """The protocol for ``needs``, why, and why not the others."""
    if needs.direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {needs.direction!r}")
    out: dict[str, str] = {}
    if needs.direction == "request-response":
        order = ["REST", "gRPC", "GraphQL"]
        out.update({"WebSockets": "no request/response semantics", "SSE": "server → client only",
                    "Long Polling": "reads only"})
    elif needs.direction == "server-push":
        order = ["SSE", "WebSockets", "gRPC", "Long Polling", "GraphQL"]
        out["REST"] = "no push"
    else:
        order = ["WebSockets", "gRPC", "Long Polling", "SSE"]
        out.update({"REST": "no push", "GraphQL": "a mutation per message plus a subscription"})
    if needs.browser:
        out["gRPC"] = "browsers cannot speak gRPC's HTTP/2 trailers (gRPC-Web needs a proxy)"
    else:
        order = ["gRPC", *[p for p in order if p != "gRPC"]] if "gRPC" in order else order
    if needs.http_caching:
        for p in order:
            if p != "REST":
                out.setdefault(p, "an HTTP cache cannot reuse its answers (POST or a stream)")
    if needs.payload_mb >= 1:
        out.setdefault("GraphQL", "a file in a JSON variable is base64 (1.33× the bytes) and held "
                                  "whole in the server's memory")
    if needs.rate_hz >= 10:
        for p in ("Long Polling", "SSE"):
            if p in order:
                out.setdefault(p, f"one HTTP request per message at {needs.rate_hz:g} Hz"
                                  + _figure(run, "Gaming", p))
    if needs.mobile_idle:
        out.setdefault("WebSockets", "the server's pings wake the radio every 20 s")
        out.setdefault("Long Polling", "a new request every poll, each waking the radio")
    chosen = next((p for p in order if p not in out), None)
    if chosen is None:
        return Recommendation("none fits", ["every protocol is ruled out"], out)
    reasons = {
        "REST": "plain HTTP: every client speaks it, GETs are cacheable",
        "gRPC": "typed contracts, HTTP/2 multiplexing, the fewest bytes per call",
        "GraphQL": "clients choose their fields",
        "WebSockets": "one connection, both directions, a few bytes of framing per message",
        "SSE": "plain HTTP push with automatic reconnection and resume",
        "Long Polling": "works wherever plain HTTP does",
    }
    row = {"request-response": "CRUD", "server-push": "Live updates",
           "bidirectional": "Gaming" if needs.rate_hz >= 10 else "Real-time chat"}[needs.direction]
    return Recommendation(chosen, [reasons[chosen] + _figure(run, row, chosen)],
                          {p: why for p, why in out.items() if p != chosen})
