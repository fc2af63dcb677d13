"""Measure the GraphQL lab's targets (run by `make bench`; not a test).

- subscription delivery: from sending a createPost mutation to its postAdded event reaching
  subscribers over graphql-transport-ws (target: within 100 ms), also as a ratio to a plain
  query's round trip;
- the N+1 problem: SQL statements for users and their posts, with and without DataLoaders,
  and the time ratio of the two;
- bytes and requests: the document's "user + recent orders" over REST and over GraphQL.
"""

from __future__ import annotations

import json
import statistics
import time
from contextlib import ExitStack

import requests
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from labsupport import database, graphql_api, rest

EVENTS = 100
SUBSCRIBERS = 10
ROUND_TRIPS = 100
GRAPHQL_WS = Subprotocol("graphql-transport-ws")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def post(url: str, query: str) -> requests.Response:
    return requests.post(f"{url}/graphql", json={"query": query}, timeout=5)


def query_round_trip_ms(url: str, query: str, repeats: int = ROUND_TRIPS) -> float:
    """Median milliseconds of one GraphQL request over HTTP."""
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        post(url, query).raise_for_status()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def subscription_report() -> None:
    server = graphql_api.start()
    subscription = 'subscription { postAdded(authorId: "101") { id title } }'
    with ExitStack() as stack:
        sockets = [stack.enter_context(connect(server.ws_url, subprotocols=[GRAPHQL_WS],
                                               open_timeout=3))
                   for _ in range(SUBSCRIBERS)]
        for ws in sockets:
            ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(ws.recv(timeout=3))["type"] == "connection_ack"
            ws.send(json.dumps({"id": "1", "type": "subscribe",
                                "payload": {"query": subscription}}))
            ws.send(json.dumps({"type": "ping"}))
            assert json.loads(ws.recv(timeout=3))["type"] == "pong"
        first, last = [], []
        for n in range(EVENTS):
            mutation = (f'mutation {{ createPost(input: {{title: "bench {n}", content: "x", '
                        'authorId: "101"}) { id } }')
            started = time.perf_counter()
            post(server.url, mutation).raise_for_status()
            arrivals = []
            for ws in sockets:
                message = json.loads(ws.recv(timeout=3))
                assert message["payload"]["data"]["postAdded"]["title"] == f"bench {n}"
                arrivals.append((time.perf_counter() - started) * 1000)
            first.append(arrivals[0])
            last.append(arrivals[-1])
    query_ms = query_round_trip_ms(server.url, '{ user(id: "101") { name } }')
    server.stop()
    print(f"subscription delivery, mutation sent -> event received, {EVENTS} events, "
          f"{SUBSCRIBERS} subscribers:")
    print(f"  first subscriber: median {statistics.median(first):.1f} ms, "
          f"p95 {percentile(first, 0.95):.1f} ms, max {max(first):.1f} ms")
    print(f"  all {SUBSCRIBERS} subscribers: median {statistics.median(last):.1f} ms, "
          f"p95 {percentile(last, 0.95):.1f} ms, max {max(last):.1f} ms "
          f"(target: under 100 ms; {sum(t < 100 for t in last)}/{EVENTS} met it)")
    print(f"  a plain query's round trip: median {query_ms:.1f} ms; the median delivery to all "
          f"is {statistics.median(last) / query_ms:.1f}x that (the mutation's own round trip "
          "is inside it)")


def dataloader_report() -> None:
    plain = graphql_api.start(name="bench-plain", dataloaders=False)
    batched = graphql_api.start(name="bench-batched", fresh_data=False)
    print("users and their posts: SQL statements, and time without/with DataLoaders")
    for users in (5, 25):
        query = f"{{ users(limit: {users}) {{ name posts {{ title }} }} }}"
        counts = []
        for server in (plain, batched):
            with database.count_statements() as statements:
                post(server.url, query).raise_for_status()
            counts.append(len(statements))
        slow = query_round_trip_ms(plain.url, query, 50)
        fast = query_round_trip_ms(batched.url, query, 50)
        print(f"  {users:>2} users: {counts[0]:>2} statements without, {counts[1]} with; "
              f"time ratio without/with {slow / fast:.2f}")
    plain.stop()
    batched.stop()


def bytes_report() -> None:
    server = graphql_api.start()
    api = rest.start(fresh_data=False, rate_limit=None)
    replies = [requests.get(f"{api.url}/api/v1/users/123", timeout=5),
               requests.get(f"{api.url}/api/v1/users/123/orders", timeout=5)]
    screen = '{ user(id: "123") { name email orders(limit: 5) { item status totalCents } } }'
    answer = post(server.url, screen)
    rest_bytes = sum(len(reply.content) for reply in replies)
    print("user + recent orders: REST "
          f"{len(replies)} requests, {rest_bytes} bytes received; GraphQL 1 request, "
          f"{len(answer.content)} bytes received ({len(answer.content) / rest_bytes:.2f} of "
          f"REST's), {len(answer.request.body or b'')} bytes of query sent")
    api.stop()
    server.stop()


if __name__ == "__main__":
    subscription_report()
    dataloader_report()
    bytes_report()
