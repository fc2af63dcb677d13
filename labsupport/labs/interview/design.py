"""Q4 judged by numbers: each feature of a social-media API has a budget, each protocol a cost.

``judge(feature, protocol, costs)`` works out what the protocol would cost
for that feature at its stated scale and says whether it fits the budget.
The per-message costs come from the labs, measured by :func:`measure_costs`
(bytes of an HTTP POST and of a WebSocket frame, requests for a screen);
polling delays are simulated.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass
from typing import Any

from ..graphql_api import server as graphql_api
from ..long_polling import server as long_polling
from ..rest import server as rest
from ..websocket_chat import server as chat
from . import evidence

__all__ = ["PROTOCOLS", "FEATURES", "Feature", "judge", "measure_costs", "polling_delay"]

PROTOCOLS = ("rest", "graphql", "grpc", "websocket", "sse", "long-polling")
IN_BROWSERS = {"rest", "graphql", "websocket", "sse", "long-polling"}  # gRPC needs gRPC-Web
PUSH = {"websocket", "sse", "long-polling"}
LONG_POLL_TIMEOUT = 30.0


@dataclass(frozen=True)
class Feature:
    name: str
    requirement: str


FEATURES = {f.name: f for f in (
    Feature("feed", "1,000,000 users each load their own home feed every 60 s (private: a shared "
                    "cache may not give one user's feed to another); the origin answers at most "
                    "25,000 requests/s and holds at most 200,000 open connections"),
    Feature("profile-screen", "mobile and web: a user with their recent orders on screen within "
                              "1,000 ms of opening the app, on a 300 ms round trip (a new "
                              "connection: TCP and TLS 1.3 take a round trip each)"),
    Feature("live-comments", "10,000 viewers of a post see each new comment (one a second) "
                             "within 1 s; at most 2,000 requests/s"),
    Feature("chat", "100,000 users online, each sending 2 messages/s (typing, messages); at "
                    "most 50 MB/s from clients to servers"),
    Feature("notifications", "1,000,000 users with the app open get about one notification a "
                             "minute within 2 s; at most 60,000 requests/s"),
)}


def measure_costs() -> dict[str, float]:
    """Per-message and per-screen costs, measured on lab servers started for the purpose."""
    names = {"rest": "interview-rest", "graphql": "interview-graphql"}
    with rest.start(name=names["rest"], fresh_data=False, rate_limit=None) as r, \
            graphql_api.start(name=names["graphql"], fresh_data=False) as g:
        screen = {row["api"]: row["requests"] for row in evidence.fetching(r, g)}
    with long_polling.start(name="interview-long-polling") as lp, \
            chat.start(name="interview-chat", fresh_data=False) as c:
        http, websocket = evidence.bytes_per_message(lp, c)
    return {"http_message_bytes": http["up"] + http["down"], "http_up_bytes": http["up"],
            "ws_message_bytes": websocket["up"], "rest_screen_requests": screen["REST"],
            "graphql_screen_requests": screen["GraphQL"]}


def polling_delay(interval: float, samples: int = 2000, seed: int = 4) -> float:
    """Median wait of an event for the next poll, polls every ``interval`` s (simulated)."""
    rng = random.Random(seed)
    return statistics.median(interval - rng.uniform(0, interval) for _ in range(samples))


def judge(feature: str, protocol: str, costs: dict[str, float]) -> tuple[bool, str]:
    """Whether ``protocol`` meets ``feature``'s budget, and the numbers that say so."""
    if protocol not in PROTOCOLS:
        return False, f"{protocol!r} is not one of {', '.join(PROTOCOLS)}"
    if protocol not in IN_BROWSERS:
        return False, ("browsers cannot speak gRPC (no access to HTTP/2 frames and trailers); "
                       "they need gRPC-Web and a proxy")
    rule = _RULES[feature]
    return rule(protocol, costs)


def _feed(protocol: str, costs: dict[str, float]) -> tuple[bool, str]:
    users, loads, budget, connections = 1_000_000, 1_000_000 / 60, 25_000, 200_000
    if protocol in PUSH:
        return False, (f"{protocol} holds a connection per reader open: {users:,} for a feed "
                       f"read once a minute; budget {connections:,} (push the new posts to "
                       f"those with the app open, but load the feed with a request)")
    return True, (f"a private response, so no shared cache helps: every load reaches the "
                  f"origin, {loads:,.0f} requests/s; budget {budget:,}")


#: Round trips before the first request on a new connection: TCP, then TLS 1.3.
HANDSHAKES = {"rest": 2, "graphql": 2, "websocket": 3}  # WebSocket adds its HTTP Upgrade


def _profile(protocol: str, costs: dict[str, float]) -> tuple[bool, str]:
    if protocol not in HANDSHAKES:
        return False, f"{protocol} is one-way push: it cannot ask for a user and their orders"
    budget, rtt = 1000, 300
    if protocol == "rest":
        # The user and their orders do not depend on each other: requested in parallel over
        # one HTTP/2 connection (or a composite endpoint), they take one round trip.
        asked = (f"{costs['rest_screen_requests']:.0f} requests (measured on the labs), sent "
                 f"in parallel: 1 round trip")
        trips = 1
    elif protocol == "graphql":
        trips = round(costs["graphql_screen_requests"])
        asked = f"{trips} request (measured on the labs): {trips} round trip"
    else:
        trips = 1
        asked = "1 message and its answer: 1 round trip"
    handshakes = HANDSHAKES[protocol]
    took = (handshakes + trips) * rtt
    extra = " (TCP, TLS, the HTTP Upgrade)" if protocol == "websocket" else " (TCP, TLS)"
    return took <= budget, (f"{handshakes} handshake round trips{extra} + {asked}: {took} ms; "
                            f"budget {budget:,} ms")


def _live_comments(protocol: str, costs: dict[str, float]) -> tuple[bool, str]:
    viewers, per_s, budget = 10_000, 1.0, 2_000
    if protocol in ("rest", "graphql"):
        interval = viewers / budget
        delay = polling_delay(interval)
        return False, (f"viewers must poll; within {budget:,} requests/s each polls every "
                       f"{interval:.0f} s, so a comment waits {delay:.1f} s (median); budget 1 s")
    if protocol == "long-polling":
        rate = viewers * per_s + viewers / LONG_POLL_TIMEOUT
        return rate <= budget, (f"one request per comment per viewer: {rate:,.0f} requests/s; "
                                f"budget {budget:,}")
    return True, "one open connection per viewer, no request per comment: pushed at once"


def _chat(protocol: str, costs: dict[str, float]) -> tuple[bool, str]:
    users, per_s, budget = 100_000, 2, 50e6
    if protocol == "websocket":
        rate = users * per_s * costs["ws_message_bytes"]
        what = f"{costs['ws_message_bytes']:.0f} bytes a frame (measured)"
    else:
        rate = users * per_s * costs["http_up_bytes"]
        what = f"{costs['http_up_bytes']:.0f} bytes a POST (measured)"
        if protocol in ("sse", "long-polling"):
            what = f"{protocol} only carries server-to-client, so clients POST: " + what
    return rate <= budget, f"{what}: {rate / 1e6:.0f} MB/s; budget {budget / 1e6:.0f} MB/s"


def _notifications(protocol: str, costs: dict[str, float]) -> tuple[bool, str]:
    users, budget = 1_000_000, 60_000
    if protocol in ("rest", "graphql"):
        rate = users / 2
        return False, (f"to see one within 2 s, every user polls every 2 s: {rate:,.0f} "
                       f"requests/s; budget {budget:,}")
    if protocol == "long-polling":
        rate = users / 60 + users / LONG_POLL_TIMEOUT
        return rate <= budget, (f"a request per notification plus one per "
                                f"{LONG_POLL_TIMEOUT:.0f} s timeout: {rate:,.0f} requests/s; "
                                f"budget {budget:,}")
    return True, "one open connection per user; pushed at once, no requests"


_RULES: dict[str, Any] = {"feed": _feed, "profile-screen": _profile,
                          "live-comments": _live_comments, "chat": _chat,
                          "notifications": _notifications}
