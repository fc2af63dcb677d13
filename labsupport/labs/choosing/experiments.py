"""One measured experiment per row of the document's decision matrix.

Each function takes a :class:`~.driver.Run`, measures every protocol the row
names (through a wire tap, so bytes are counted on the wire), keeps the
:class:`~.driver.Result` objects on ``run.results`` and returns them.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from cachecontrol import CacheControl
from sqlalchemy import select
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from ...codegen import load
from ...database import Post, db
from ...wire import DOWN, TIMING_FRAMES, UP, Counts, WireTap, count
from ..graphql_api import server as graphql_api
from ..grpc_service import server as grpc_service
from .adapters import PUSH
from .clients import PollReceiver, RelayStream, SSEReceiver, wait_until
from .driver import Result, Run

__all__ = ["crud", "chat", "live_updates", "idle", "microservices", "public_api", "gaming",
           "counted", "ALL"]

user_service_pb2, user_service_pb2_grpc = load("user_service")
T = TypeVar("T")


def _timed(latencies: list[float], call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)``, its duration appended to ``latencies``."""
    started = time.perf_counter()
    value = call(*args, **kwargs)
    if isinstance(value, requests.Response):
        value.raise_for_status()
    latencies.append(time.perf_counter() - started)
    return value


def _at_least(deliveries: _Deliveries, count: int) -> bool:
    return deliveries.count() >= count


def _result(row: str, protocol: str, tap: WireTap, latencies: list[float], operations: int,
            **extra: object) -> Result:
    return Result(row, protocol, latencies, tap.total_bytes, operations, len(tap.connections),
                  dict(extra))


# --- CRUD -----------------------------------------------------------------------------

def _email(protocol: str) -> str:
    return f"crud-{protocol}-{uuid.uuid4().hex[:8]}@example.com"


def crud_rest(run: Run, rounds: int) -> Result:
    latencies: list[float] = []
    with run.tap("rest") as tap, requests.Session() as http:
        users = f"{tap.url}/api/v1/users"
        for _ in range(rounds):
            created = _timed(latencies, http.post, users,
                             json={"name": "Crud Rest", "email": _email("rest")}, timeout=5)
            user = f"{users}/{created.json()['id']}"
            _timed(latencies, http.get, user, timeout=5)
            _timed(latencies, http.patch, user, json={"name": "Crud Rest 2"}, timeout=5)
            _timed(latencies, http.delete, user, timeout=5)
        return _result("CRUD", "REST", tap, latencies, 4 * rounds)


def crud_graphql(run: Run, rounds: int) -> Result:
    latencies: list[float] = []
    with run.tap("graphql") as tap, requests.Session() as http:
        def call(query: str, **variables: object) -> dict:
            body = http.post(f"{tap.url}/graphql", json={"query": query, "variables": variables},
                             timeout=5).json()
            if "errors" in body:
                raise RuntimeError(body["errors"])
            return body["data"]

        for _ in range(rounds):
            data = _timed(latencies, call,
                          "mutation($e: String!) { createUser(input: {name: \"Crud Graphql\","
                          " email: $e}) { id name email } }", e=_email("graphql"))
            uid = data["createUser"]["id"]
            _timed(latencies, call, "query($id: ID!) { user(id: $id) { id name email } }", id=uid)
            _timed(latencies, call, "mutation($id: ID!) { updateUser(id: $id, input: "
                                    "{name: \"Crud Graphql 2\"}) { id name } }", id=uid)
            _timed(latencies, call, "mutation($id: ID!) { deleteUser(id: $id) }", id=uid)
        return _result("CRUD", "GraphQL", tap, latencies, 4 * rounds)


def crud_grpc(run: Run, rounds: int) -> Result:
    latencies: list[float] = []
    pb = user_service_pb2
    with run.tap("grpc") as tap:
        channel = grpc_service.channel(tap.address)
        stub = user_service_pb2_grpc.UserServiceStub(channel)
        for _ in range(rounds):
            created = _timed(latencies, stub.CreateUser,
                             pb.CreateUserRequest(name="Crud Grpc", email=_email("grpc")),
                             timeout=5)
            uid = created.user.id
            _timed(latencies, stub.GetUser, pb.GetUserRequest(id=uid), timeout=5)
            _timed(latencies, stub.UpdateUser, pb.UpdateUserRequest(id=uid, name="Crud Grpc 2"),
                   timeout=5)
            _timed(latencies, stub.DeleteUser, pb.DeleteUserRequest(id=uid), timeout=5)
        channel.close()
        return _result("CRUD", "gRPC", tap, latencies, 4 * rounds)


def crud(run: Run, rounds: int | None = None) -> list[Result]:
    """Create, read, update, delete one user, ``rounds`` times: REST, GraphQL, gRPC."""
    rounds = rounds or run.sized(10)
    return run.add(crud_rest(run, rounds), crud_graphql(run, rounds), crud_grpc(run, rounds))


# --- fan-out: chat, live updates, gaming ------------------------------------------------

class _Deliveries:
    """Arrivals of tagged messages, matched to when each was sent (or scheduled)."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.latencies: list[float] = []
        self._lock = threading.Lock()

    def receiver(self, me: str) -> Callable[[dict, float], None]:
        def arrived(payload: dict, when: float) -> None:
            tag = payload.get("tag") if isinstance(payload, dict) else None
            if tag is None or payload.get("from") == me:
                return
            with self._lock:
                sent = self.sent.get(tag)
                if sent is not None:
                    self.latencies.append(when - sent)

        return arrived

    def count(self) -> int:
        with self._lock:
            return len(self.latencies)


def _on(row: str, profile: str) -> str:
    """The row's name, with the network profile unless it is loopback."""
    return row if profile == "loopback" else f"{row} on {profile}"


#: Client options of the counted exchanges: WebSocket frames uncompressed, as every other
#: protocol here sends its bytes (Hypercorn sends no gzip, gRPC compresses nothing by
#: default). With permessage-deflate a frame's size depends on the frames before it on
#: its connection and on the digits of the server's timestamps: the same chat moved from
#: 12,078 to 12,235 B between runs.
PLAIN: dict[str, Any] = {"compression": None}
Message = Callable[[int, int], dict]


def _quiet(tap: WireTap, quiet: float = 0.1, timeout: float = 2.0) -> None:
    """Wait until ``tap`` has relayed nothing new for ``quiet`` s (at most ``timeout`` s):
    a poll sent again, or an answer to a POST, after the last delivery."""
    deadline = time.monotonic() + timeout
    last, since = tap.total_bytes, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.01)
        if tap.total_bytes != last:
            last, since = tap.total_bytes, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return


def counted(run: Run, kind: str, clients: int, room: str, messages: int,
            message: Message) -> tuple[Counts, int]:
    """What ``messages`` cost on the wire, sent one at a time through a fresh tap on
    loopback: the counts, and how many deliveries they made.

    ``message(k, sender)`` is the k-th payload (sent by client ``k % clients``); with
    ``room="live"`` one client listens and the server publishes. Each message is delivered
    to every other client before the next is sent: when they overlap, how many share a
    poll answer or an SSE chunk follows timing. WebSocket frames go uncompressed
    (:data:`PLAIN`); gRPC's flow-control and PING frames, whose number follows timing, are
    left out (:data:`~labsupport.wire.counts.TIMING_FRAMES`). Same workload, same counts,
    run after run (ids and timestamps of a fresh run's servers have the same width)."""
    adapter = PUSH[kind]
    deliveries = _Deliveries()
    send: Callable[[int, dict], object]
    with run.tap(adapter.server) as tap:
        if room == "live":
            receiver, publish = adapter.live(run, tap, deliveries.receiver("server"), **PLAIN)
            receivers: list[Any] = [receiver]
            per = 1
            send = lambda _, payload: publish(payload)  # noqa: E731
        else:
            receivers, send = adapter.connect(run, tap, [f"c{i}" for i in range(clients)],
                                              deliveries.receiver, room, **PLAIN)
            per = clients - 1
        try:
            time.sleep(0.05)   # every stream open and settled
            _quiet(tap)
            tap.reset()
            for k in range(messages):
                payload = message(k, k % clients)
                deliveries.sent[payload["tag"]] = time.perf_counter()
                send(k % clients, payload)
                wait_until(functools.partial(_at_least, deliveries, (k + 1) * per), 5)
            _quiet(tap)
            counts = count(tap, without=TIMING_FRAMES)
        finally:
            adapter.close(run, receivers, tap)
    return counts, deliveries.count()


def _fan_out(run: Run, kind: str, row: str, clients: int, room: str,
             drive: Callable[[Callable[[int, dict], None], _Deliveries], int],
             seconds: float | None = None, profile: str = "loopback",
             count_messages: tuple[int, Message] | None = None) -> Result:
    """The timed exchange (latencies), and on loopback its counts: ``count_messages``
    (how many, and the payload maker) sent one at a time by :func:`counted`."""
    adapter = PUSH[kind]
    deliveries = _Deliveries()
    names = [f"c{i}" for i in range(clients)]
    row = _on(row, profile)
    with run.tap(adapter.server, profile=profile) as tap:
        receivers, send = adapter.connect(run, tap, names, deliveries.receiver, room)
        try:
            time.sleep(0.05 + tap.profile.rtt)   # every stream open and settled
            tap.reset()
            started = time.perf_counter()
            expected = drive(send, deliveries)
            wait_until(lambda: deliveries.count() >= expected, 10)
            elapsed = seconds or (time.perf_counter() - started)
            result = _result(row, adapter.protocol, tap, list(deliveries.latencies),
                             max(deliveries.count(), 1), delivered=f"{deliveries.count()}/"
                             f"{expected}")
            result.extra["bytes/s"] = round(tap.total_bytes / elapsed)
        finally:
            adapter.close(run, receivers, tap)
    if count_messages is not None and profile == "loopback":
        _counted_into(result, *counted(run, kind, clients, room, *count_messages))
    return result


def _counted_into(result: Result, counts: Counts, delivered: int) -> None:
    """``result``'s bytes and connections from a counted exchange (:func:`counted`)."""
    result.bytes, result.operations = counts.bytes, max(delivered, 1)
    result.connections, result.counts = counts.connections, counts


def chat(run: Run, clients: int = 20, messages: int | None = None,
         kinds: tuple[str, ...] = ("websockets", "grpc", "long-polling", "sse"),
         profile: str = "loopback") -> list[Result]:
    """``clients`` in one room; ``messages`` from alternating senders, each to everyone else,
    over the network ``profile``."""
    messages = messages or run.sized(10)

    def drive(send: Callable[[int, dict], None], deliveries: _Deliveries) -> int:
        for k in range(messages):
            sender = k % clients
            tag = f"chat-{uuid.uuid4().hex[:8]}"
            deliveries.sent[tag] = time.perf_counter()
            send(sender, {"tag": tag, "from": f"c{sender}", "text": f"message {k}"})
            time.sleep(0.02)
        return messages * (clients - 1)

    def message(k: int, sender: int) -> dict:
        return {"tag": f"chat-{k:04d}", "from": f"c{sender}", "text": f"message {k}"}

    return run.add(*(_fan_out(run, kind, "Real-time chat", clients, "chat", drive,
                              profile=profile, count_messages=(messages, message))
                     for kind in kinds))


def gaming(run: Run, players: int = 10, hz: float = 30, seconds: float | None = None,
           kinds: tuple[str, ...] = ("websockets", "grpc", "long-polling", "sse"),
           profile: str = "loopback") -> list[Result]:
    """``players`` each sending state ``hz`` times a second to everyone else.

    Latency runs from the tick a state belongs to, so a sender that falls
    behind its ticks shows as latency, as it would in a game.
    """
    seconds = seconds or 0.5 * run.scale
    ticks = max(1, round(hz * seconds))

    def drive(send: Callable[[int, dict], None], deliveries: _Deliveries) -> int:
        start = time.perf_counter() + 0.02

        def player(p: int) -> None:
            for k in range(ticks):
                tick = start + k / hz
                time.sleep(max(0.0, tick - time.perf_counter()))
                tag = f"{p}-{k}"
                deliveries.sent[tag] = tick
                send(p, {"tag": tag, "from": f"c{p}", "x": k, "y": p})

        threads = [threading.Thread(target=player, args=(p,), daemon=True)
                   for p in range(players)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + 15)
        return ticks * players * (players - 1)

    def state(k: int, sender: int) -> dict:
        return {"tag": f"{sender}-{k // players}", "from": f"c{sender}", "x": k // players,
                "y": sender}

    # Counted: two states from each player, one at a time (at 30 Hz they overlap).
    results = [_fan_out(run, kind, "Gaming", players, "arena", drive, seconds, profile,
                        (2 * players, state)) for kind in kinds]
    for result in results:
        result.extra["jitter ms"] = round(result.jitter * 1000, 2)
    return run.add(*results)


def live_updates(run: Run, events: int | None = None, gap: float = 0.01,
                 kinds: tuple[str, ...] = ("sse", "websockets", "grpc", "long-polling"),
                 graphql: bool = True, profile: str = "loopback") -> list[Result]:
    """One client; the server publishes ``events`` in-process; publish-to-arrival latency
    over the network ``profile`` (GraphQL's subscription only on loopback)."""
    events = events or run.sized(30)
    results = []
    for kind in kinds:
        deliveries = _Deliveries()
        adapter = PUSH[kind]
        with run.tap(adapter.server, profile=profile) as tap:
            receiver, publish = adapter.live(run, tap, deliveries.receiver("client"))
            try:
                time.sleep(tap.profile.rtt)   # the stream or poll open and settled
                tap.reset()
                for k in range(events):
                    tag = f"live-{k}-{uuid.uuid4().hex[:6]}"
                    deliveries.sent[tag] = time.perf_counter()
                    publish({"tag": tag, "value": k})
                    time.sleep(gap)
                wait_until(functools.partial(_at_least, deliveries, events), 10)
                results.append(_result(_on("Live updates", profile), adapter.protocol, tap,
                                       list(deliveries.latencies), max(deliveries.count(), 1),
                                       delivered=f"{deliveries.count()}/{events}"))
            finally:
                adapter.close(run, [receiver], tap)
        if profile == "loopback":
            _counted_into(results[-1], *counted(run, kind, 1, "live", events, _update))
    if graphql and profile == "loopback":
        results.append(_live_graphql(run, events, gap))
    return run.add(*results)


def _update(k: int, sender: int) -> dict:
    return {"tag": f"live-{k:04d}", "value": k}


def _live_graphql(run: Run, events: int, gap: float) -> Result:
    """GraphQL subscriptions: ``postAdded`` over graphql-transport-ws, matched in order."""
    graphql = run.graphql
    post_ids = list(db.session.scalars(select(Post.id).limit(events)))
    db.session.remove()
    latencies: list[float] = []
    sent: list[float] = []
    with WireTap(graphql.ws.port) as tap:
        with connect(f"ws://{tap.address}/graphql",
                     subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=5,
                     **PLAIN) as ws:
            ws.send(json.dumps({"type": "connection_init"}))
            ws.recv(timeout=5)
            ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
                "query": "subscription { postAdded { id title } }"}}))
            wait_until(lambda: graphql_api.posts_bus.listening() > 0, 5)
            arrivals: list[float] = []

            def read() -> None:
                while len(arrivals) < events:
                    try:
                        message = json.loads(ws.recv(timeout=5))
                    except Exception:
                        return
                    if message.get("type") == "next":
                        arrivals.append(time.perf_counter())

            reader = threading.Thread(target=read, name="graphql-live", daemon=True)
            reader.start()
            tap.reset()
            for k in range(events):
                sent.append(time.perf_counter())
                graphql_api.posts_bus.publish(post_ids[k % len(post_ids)])
                time.sleep(gap)
            reader.join(10)
            latencies = [a - s for a, s in zip(arrivals, sent, strict=False)]
        return _result("Live updates", "GraphQL", tap, latencies, max(len(latencies), 1),
                       delivered=f"{len(latencies)}/{events}")


# --- mobile: an idle client ---------------------------------------------------------

# Every protocol idles the same way: a client waiting for news, with an open stream or
# subscription where the protocol has one, and production defaults for what is sent while
# nothing happens (seconds between wake-ups, and what wakes the radio). No client pings
# where a browser sends none.
IDLE_DEFAULTS = {
    "REST": (30.0, "the app polls GET every 30 s (an app's choice: HTTP has no push)"),
    "GraphQL": (30.0, "the app polls a query every 30 s"),
    "gRPC": (7200.0, "an open server stream; grpcio clients send no keepalive pings by "
                     "default and servers ping an idle connection after 2 h"),
    "WebSockets": (20.0, "the websockets server pings every 20 s (its default); a browser "
                         "sends no pings"),
    "SSE": (15.0, "the SSE lab's comment heartbeat every 15 s"),
    "Long Polling": (25.0, "the Poller's 25 s poll ends empty and is sent again"),
}
#: The LTE radio's tail: it stays in its high-power state this long after the last byte
#: (11.6 s measured by Huang et al., "A close examination of performance and power
#: characteristics of 4G LTE networks", MobiSys 2012). Transfers closer than this share
#: one wake-up.
RADIO_TAIL = 11.6


def wake_ups(times: list[float], tail: float) -> list[float]:
    """When the radio wakes for transfers at ``times`` (s): the first of each run of
    transfers that fall within ``tail`` of the one before."""
    starts: list[float] = []
    last = None
    for when in sorted(times):
        if last is None or when - last > tail:
            starts.append(when)
        last = when
    return starts


def _sig2(value: float) -> float:
    """``value`` to two significant figures (clock jitter stays out of the figure)."""
    return float(f"{value:.2g}")


def _closer(*steps: Callable[[], object]) -> Callable[[], None]:
    """One call that runs ``steps`` in order."""
    def close() -> None:
        for step in steps:
            step()
    return close


def _idle_client(run: Run, protocol: str, interval: float, window: float
                 ) -> tuple[WireTap, Callable[[], None]]:
    """One idle client of ``protocol`` through a tap (open, settled, counters reset), and
    how to close it; it idles by itself while the caller waits."""
    if protocol in ("REST", "GraphQL"):   # polled on Hypercorn, kept alive, in the child
        name = "rest-hypercorn" if protocol == "REST" else "graphql-hypercorn"
        tap = WireTap(run.start_push(name, name).port)
        http, stop = requests.Session(), threading.Event()

        def poll() -> None:
            due = time.monotonic()
            while not stop.is_set():
                with contextlib.suppress(requests.RequestException):
                    if protocol == "REST":
                        http.get(f"{tap.url}/api/v1/users/101", timeout=5)
                    else:
                        http.post(f"{tap.url}/graphql", json={
                            "query": '{ user(id: "101") { name email } }'}, timeout=5)
                # at a fixed rate, as an app's timer fires: a slow answer (its time is
                # multiplied by the speedup) does not stretch the interval
                due += interval
                stop.wait(max(0.0, due - time.monotonic()))

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        return tap, _closer(stop.set, lambda: thread.join(5), http.close, tap.close)
    if protocol == "gRPC":
        tap = WireTap(run.servers["relay"].port)
        stream = RelayStream(tap.address, lambda *_: None, bidirectional=False)
        time.sleep(0.1)
        tap.reset()
        return tap, _closer(stream.close, tap.close)
    if protocol == "WebSockets":
        # The websockets library's server keepalive, in the run's child process.
        server = run.start_push("websockets-hold", "ws-hold", ping_interval=interval)
        tap = WireTap(server.port)
        ws = connect(f"ws://{tap.address}/", ping_interval=None, open_timeout=5, legacy=True)
        time.sleep(0.02)
        tap.reset()
        return tap, _closer(ws.close, tap.close, server.drop)
    if protocol == "SSE":
        sse_server = run.start_push("sse", "sse-idle", heartbeat=interval)
        tap = WireTap(sse_server.port)
        events = SSEReceiver(tap.url, "idle", lambda *_: None)
        tap.reset()
        return tap, _closer(sse_server.drop, tap.close, events.close)
    tap = WireTap(run.servers["long-polling"].port)
    poller = PollReceiver(tap.url, "user20", lambda *_: None, timeout=interval)
    time.sleep(0.05)
    tap.reset()
    return tap, _closer(poller.close, tap.close)


def idle(run: Run, speedup: float = 25.0, minutes: float | None = None) -> list[Result]:
    """An idle client per protocol, idling the same way (see :data:`IDLE_DEFAULTS`):
    radio wake-ups and bytes per hour, from the tap's timestamps.

    Time is compressed ``speedup`` times (a 20 s ping comes every 0.8 s, the radio tail
    is 0.464 s) so that ``minutes`` of modelled idling take seconds; the six clients idle
    side by side, each through its own tap. Wake-ups merge transfers within
    :data:`RADIO_TAIL`. A protocol whose interval is longer than the window is counted at
    its default rate (gRPC's 2 h), and says so. Compression also multiplies the
    implementation's few milliseconds per keepalive by ``speedup``: at 25× they stay
    within the two significant figures shown.
    """
    minutes = minutes or 1.0 * run.scale
    window = 60 * minutes / speedup
    clients: dict[str, tuple[WireTap, Callable[[], None]]] = {}
    try:
        for protocol, (default_interval, _) in IDLE_DEFAULTS.items():
            clients[protocol] = _idle_client(run, protocol, default_interval / speedup, window)
        time.sleep(window)
        seen = {protocol: (tap.messages(), tap.total_bytes, len(tap.connections))
                for protocol, (tap, _) in clients.items()}
    finally:
        for _, close in clients.values():
            close()
    results = []
    for protocol, (default_interval, why) in IDLE_DEFAULTS.items():
        messages, total, connections = seen[protocol]
        starts = wake_ups([m.time for m in messages], RADIO_TAIL / speedup)
        if len(starts) >= 2:   # the rate from the gaps between wake-ups, in modelled time
            gap = statistics.median(b - a for a, b in itertools.pairwise(starts)) * speedup
            per_hour, counted = 3600 / gap, "measured"
        else:                  # nothing due in the window: its default rate
            per_hour, counted = 3600 / default_interval, "at its default rate"
        per_wake = total / len(starts) if starts else 0.0
        per_hour = _sig2(per_hour)
        results.append(Result("Mobile apps", protocol, [], round(per_wake), 1, connections, {
            "wake-ups/hour": per_hour, "bytes/hour": _sig2(per_wake * per_hour),
            "bytes per wake-up": round(per_wake), "counted": counted, "default": why}))
    return run.add(*results)


# --- microservices -------------------------------------------------------------------

def _rest_reads(tap: WireTap, calls: int, latencies: list[float]) -> None:
    with requests.Session() as http:
        for _ in range(calls):
            _timed(latencies, http.get, f"{tap.url}/api/v1/users/101", timeout=5)


def _grpc_reads(tap: WireTap, calls: int, latencies: list[float]) -> None:
    channel = grpc_service.channel(tap.address)
    stub = user_service_pb2_grpc.UserServiceStub(channel)
    request = user_service_pb2.GetUserRequest(id=101)
    for _ in range(calls):
        _timed(latencies, stub.GetUser, request, timeout=5)
    channel.close()


# One client's unary reads, by protocol: (the run's server, the client).
READERS: dict[str, tuple[str, Callable[[WireTap, int, list[float]], None]]] = {
    "REST": ("rest", _rest_reads), "gRPC": ("grpc", _grpc_reads)}


def microservices(run: Run, clients: int = 4, calls: int | None = None) -> list[Result]:
    """``clients`` threads each making ``calls`` unary reads: REST/JSON vs gRPC/protobuf."""
    calls = calls or run.sized(50)
    results = []
    for protocol, (server, reads) in READERS.items():
        latencies: list[float] = []
        with run.tap(server) as tap:
            def client(tap: WireTap = tap, reads: Callable = reads,
                       latencies: list[float] = latencies) -> None:
                mine: list[float] = []
                reads(tap, calls, mine)
                latencies.extend(mine)  # list.extend is atomic

            started = time.perf_counter()
            threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            elapsed = time.perf_counter() - started
            results.append(_result("Microservices", protocol, tap, latencies, len(latencies),
                                   **{"calls/s": round(len(latencies) / elapsed)}))
    rest_rate = results[0].extra["calls/s"] or 1
    for result in results:
        result.extra["throughput vs REST"] = round(result.extra["calls/s"] / rest_rate, 2)
    return run.add(*results)


# --- public APIs: caching -----------------------------------------------------------

def public_api(run: Run, reads: int = 3) -> list[Result]:
    """The same read ``reads`` times through a real HTTP cache (CacheControl for requests).

    Counts what reached the server and the bytes of the repeats: REST GET, GraphQL
    POST, and GraphQL GET (the query in the URL, as persisted queries do).
    """
    cases = {
        "REST": ("rest", lambda http, url: http.get(f"{url}/api/v1/users/101", timeout=5)),
        "GraphQL": ("graphql", lambda http, url: http.post(
            f"{url}/graphql", json={"query": '{ user(id: "101") { name email } }'}, timeout=5)),
        "GraphQL GET": ("graphql", lambda http, url: http.get(
            f"{url}/graphql", params={"query": '{ user(id: "101") { name email } }'},
            timeout=5)),
    }
    results = []
    for protocol, (server, read) in cases.items():
        with run.tap(server) as tap, CacheControl(requests.Session()) as http:
            latencies: list[float] = []
            first = read(http, tap.url)
            first_bytes = tap.total_bytes
            for _ in range(reads - 1):
                _timed(latencies, read, http, tap.url)
            messages = tap.messages()
            reached = [m for m in messages if m.direction == UP]
            answers = [m.label for m in messages if m.direction == DOWN]
            results.append(Result("Public APIs", protocol, latencies,
                                  tap.total_bytes - first_bytes, reads - 1, len(tap.connections),
                                  {"reads": reads, "reached server": len(reached),
                                   "answers": ", ".join(answers),
                                   "repeat bytes vs first": round(
                                       (tap.total_bytes - first_bytes) / (reads - 1)
                                       / first_bytes, 2),
                                   "cache headers": first.headers.get("Cache-Control", "none")
                                   + (" + ETag" if "ETag" in first.headers else "")}))
    return run.add(*results)


ALL = [crud, chat, live_updates, idle, microservices, public_api, gaming]
