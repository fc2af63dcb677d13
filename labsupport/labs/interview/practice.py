"""09's practices for Q1, Q3 and Q5, each judged by running the learner's client on a live server.

- ``interview.q1-caching``: a client that reads a resource ten times, judged by the
  round trips and bytes measured on the wire and by the data it returns after a change.
- ``interview.q3-resume``: a reconnecting event-stream client, judged by the events it
  lost or got twice across two closed streams and one cut connection, at moments drawn
  at check time.
- ``interview.q5-delivery``: a delivery decision run by the queues lab's pipeline while one
  user has the app open and another opens it midway, judged by what each received.
"""

from __future__ import annotations

import json
import random
import threading
import time
from typing import Any

import requests
import sseclient

from ...engine import NotAttempted, Unmet, exercise, expect
from ...wire import WireTap
from ..rest import server as rest
from ..sse import server as sse

NOTEBOOK = "09-interview-questions"

# --- Q1: a caching plan judged by bytes and round trips -------------------------------------


def read(session, url, cache):
    """The current JSON at ``url``, revalidated with the ETag kept in ``cache``."""
    kept = cache.get(url)
    headers = {"If-None-Match": kept["etag"]} if kept else {}
    response = session.get(url, headers=headers, timeout=5)
    if response.status_code == 304 and kept:
        return kept["body"]
    response.raise_for_status()
    body = response.json()
    if response.headers.get("ETag"):
        cache[url] = {"etag": response.headers["ETag"], "body": body}
    return body


READS = 10


def _drive_reads(read: Any) -> dict[str, Any]:
    """Ten reads of a user by one client, the user renamed before a read drawn at run time."""
    change_at = random.randrange(3, READS - 1)
    new_name = f"Ada {random.randrange(1000, 9999)}"
    seen: list[tuple[int, bool]] = []
    with rest.start(name="interview-q1-check", fresh_data=False, rate_limit=None) as server, \
            WireTap(server.port) as tap, requests.Session() as session:
        original = requests.get(f"{server.url}/api/v1/users/101", timeout=5).json()["name"]
        session.hooks["response"].append(
            lambda r, *a, **k: seen.append((r.status_code, "If-None-Match" in r.request.headers)))
        url, answers = f"{tap.url}/api/v1/users/101", []
        cache: dict[str, Any] = {}
        try:
            for n in range(READS):
                if n == change_at:
                    requests.patch(f"{server.url}/api/v1/users/101", json={"name": new_name},
                                   timeout=5).raise_for_status()
                answers.append(read(session, url, cache))
        finally:
            requests.patch(f"{server.url}/api/v1/users/101", json={"name": original}, timeout=5)
        full = len(requests.get(url, timeout=5).content)
        down = tap.bytes_down
    return {"answers": answers, "seen": seen, "change_at": change_at, "new_name": new_name,
            "original": original, "bytes_down": down, "full_body": full}


@exercise(
    "interview.q1-caching",
    title="Q1: REST caching, judged by round trips, bytes and fresh data",
    notebook=NOTEBOOK,
    hints=[
        "Keep, per URL, the ETag and the body of the last 200 in cache (a dict the check gives "
        "each client).",
        "Send If-None-Match: <that ETag> on the next read; a 304 means 'unchanged': return the "
        "body you kept. Any other answer is new data: keep it.",
        "Do not skip the request: without max-age from the server you cannot know the data is "
        "still fresh. Revalidation saves bytes, not round trips.",
    ],
    reference=read,
    timeout=30,
)
def check_q1_caching(read: Any) -> str:
    outcome = _drive_reads(read)
    answers, seen = outcome["answers"], outcome["seen"]
    if all(answer is None for answer in answers):
        raise NotAttempted("read returns None")
    change_at, new_name = outcome["change_at"], outcome["new_name"]
    for n, answer in enumerate(answers):
        want = new_name if n >= change_at else outcome["original"]
        name = answer.get("name") if isinstance(answer, dict) else None
        expect(name == want,
               f"read {n + 1} of {READS} returned name {name!r}, but the server had {want!r}"
               + (f" (renamed just before read {change_at + 1}): a cached copy may only be "
                  "returned after the server said 304" if n >= change_at and name else ""))
    expect(len(seen) == READS,
           f"{READS} reads made {len(seen)} requests: without max-age a client cannot know its "
           "copy is fresh, so every read asks the server (If-None-Match makes it cheap)")
    revalidated = sum(1 for _, conditional in seen if conditional)
    expect(revalidated >= READS - 2,
           f"only {revalidated} of {READS} requests carried If-None-Match: send the ETag you "
           "kept, so an unchanged resource comes back as a bodiless 304")
    not_modified = sum(1 for status, _ in seen if status == 304)
    budget = 3 * outcome["full_body"] + READS * 400
    expect(outcome["bytes_down"] <= budget,
           f"{outcome['bytes_down']:,} bytes came down for {READS} reads ({not_modified} were "
           f"304); revalidated reads should cost headers only, at most {budget:,}")
    return (f"{READS} reads, {READS} round trips, {not_modified} answered 304 (headers only), "
            f"{outcome['bytes_down']:,} bytes down; the rename before read {change_at + 1} seen "
            "at once")


# --- Q3: a reconnecting client, judged by events lost and repeated ------------------------------


def read_updates(url, count):
    """The ``n`` of the first ``count`` update events, resuming after every drop or cut."""
    seen, last_id = [], None
    for _ in range(20):                                   # reconnects, bounded
        headers: dict[str, str] = {"Last-Event-ID": last_id} if last_id else {}
        try:
            with requests.get(url, headers=headers, stream=True, timeout=5) as response:
                for event in sseclient.SSEClient(iter(response)).events():
                    if event.id:
                        last_id = event.id
                    if event.event == "update":
                        seen.append(json.loads(event.data)["data"]["n"])
                        if len(seen) == count:
                            return seen
        except requests.RequestException:                 # cut mid-stream: resume the same way
            pass
    return seen


EVENTS = 30
SERVER_DROP, NETWORK_CUT = "the server closed the stream", "the network cut the connection"


def _drive_stream(read_updates: Any) -> dict[str, Any]:
    """Run ``read_updates`` through a tap in front of an SSE server that publishes while
    it ends the client's connection three times: twice by closing the stream, once by a
    cut (a TCP reset from the tap, as when a phone changes network), in a drawn order."""
    rng = random.Random()
    kinds = [SERVER_DROP, SERVER_DROP, NETWORK_CUT]
    rng.shuffle(kinds)
    due = list(zip(sorted(rng.sample(range(3, EVENTS - 2), 3)), kinds, strict=True))
    with sse.start(name="interview-q3-check", heartbeat=0.2, retry_ms=100) as server, \
            WireTap(server.port, record=False) as tap:
        broker = server.broker
        done = threading.Event()
        ended: list[tuple[int, str]] = []

        def connected_since(opened: int) -> bool:
            """The client holds a connection opened after the last end, seen by both the
            tap and the server (a stream the server has not yet seen cut is not it)."""
            live = any(c.end is None for c in tap.connections)
            return live and broker.opened > opened

        def end_when_connected(kind: str, opened: int) -> bool:
            """End the client's connection, waiting (at most 3 s) while it reconnects."""
            deadline = time.monotonic() + 3
            while not done.is_set() and time.monotonic() < deadline:
                if connected_since(opened) and (
                        broker.drop_all() if kind == SERVER_DROP else tap.cut_all()):
                    return True
                time.sleep(0.01)
            return False

        def publish() -> None:
            deadline = time.monotonic() + 5
            while not connected_since(0) and time.monotonic() < deadline:
                time.sleep(0.01)
            opened, n = 0, 0
            while not done.is_set() and n < EVENTS + 40:
                broker.publish("update", {"n": n})
                # no event is published past a due end until it happened, so every drawn
                # end comes before the client can have read all it asks for
                if due and n >= due[0][0]:
                    kind = due.pop(0)[1]
                    if end_when_connected(kind, opened):
                        ended.append((n, kind))
                        opened = broker.opened
                n += 1
                time.sleep(0.02)

        publisher = threading.Thread(target=publish, name="q3-publisher", daemon=True)
        publisher.start()
        raised: Exception | None = None
        got = None
        try:
            got = read_updates(f"{tap.url}/events?client_id=reader", EVENTS)
        except requests.RequestException as error:
            raised = error
        finally:
            done.set()
            publisher.join(5)
    return {"got": got, "ended": ended, "raised": raised}


def _ends(ended: list[tuple[int, str]]) -> str:
    return "; ".join(f"{kind} after event {n}" for n, kind in ended)


@exercise(
    "interview.q3-resume",
    title="Q3: a client that resumes after dropped connections, nothing lost or twice",
    notebook=NOTEBOOK,
    hints=[
        "When the stream ends, connect again: the server dropped you, the events go on.",
        "Remember the id: line of the last event you received and send it back as the "
        "Last-Event-ID header when you reconnect: the server replays what you missed.",
        "A connection cut by the network does not end: reading it raises "
        "requests.RequestException (ChunkedEncodingError). Catch it and resume the same way.",
        "sseclient.SSEClient(iter(response)).events() gives events with .id, .event and .data "
        "(JSON: its data.n is the number).",
    ],
    reference=read_updates,
    timeout=30,
)
def check_q3_resume(read_updates: Any) -> str:
    outcome = _drive_stream(read_updates)
    got, ended, raised = outcome["got"], outcome["ended"], outcome["raised"]
    where = _ends(ended)
    if raised is not None:
        raise Unmet(f"read_updates raised {type(raised).__name__} ({where}): a cut connection "
                    "raises where a closed stream ends; catch requests.RequestException and "
                    "resume as after any other end")
    if got is None:
        raise NotAttempted("read_updates returns None")
    expect(isinstance(got, list), f"return the list of n, got {got!r}")
    expect(ended, "the check could not end your connection: connect to the url given")
    want = list(range(EVENTS))
    lost = [n for n in want if n not in got]
    twice = sorted({n for n in got if got.count(n) > 1})
    if len(got) < EVENTS and got == want[:len(got)]:
        raise Unmet(f"you returned {len(got)} of {EVENTS} events ({where}): when the stream "
                    "ends, reconnect")
    expect(not twice, f"events {twice} arrived twice ({where}): resume from the id of the last "
                      "event you received, not an earlier one")
    expect(not lost, f"events {lost[:6]} were lost ({where}): reconnect with the Last-Event-ID "
                     "header, the id of the last event you received, and the server replays "
                     "the rest")
    expect(got == want, f"the events came in the order {got[:12]}…, not as sent")
    return (f"{EVENTS} events across {len(ended)} ended connections ({where}), none lost, "
            "none twice")



# --- Q5: a delivery plan, judged by the pipeline with users going on and offline --------------


def deliver(note, online, push, hold):
    """Route one committed notification: pushed to a user who is online, else held."""
    client = f"user-{note['user_id']}"
    if online(client):
        push(client, note)
    else:
        hold(client, note)


class _Presence:
    """Held notifications, pushed when their user opens a new stream (a watcher thread)."""

    def __init__(self, sse_broker: Any) -> None:
        self.sse = sse_broker
        self.held: dict[str, list[dict]] = {}
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="q5-presence", daemon=True)
        self.thread.start()

    def online(self, client: str) -> bool:
        return client in self.sse.connections()

    def push(self, client: str, note: dict) -> None:
        self.sse.publish("notification", note, to=client)

    def hold(self, client: str, note: dict) -> None:
        with self.lock:
            self.held.setdefault(client, []).append(note)

    def _watch(self) -> None:
        before: set[str] = set()
        while not self.done.wait(0.02):
            now = set(self.sse.connections())
            with self.lock:
                for client in now - before:            # a stream opened: the user came back
                    for note in self.held.pop(client, []):
                        self.push(client, note)
            before = now


def _drive_delivery(deliver: Any) -> dict[str, Any]:
    from ..queues import Worker, pipeline
    from ..queues import start as start_broker

    rng = random.Random()
    first, second = rng.randint(1, 3), rng.randint(1, 3)
    broker = start_broker(name="interview-q5-check")
    try:
        app = pipeline.start(broker, name="interview-q5-pipeline", worker=False,
                             fresh_data=False)
        presence = _Presence(app.sse)
        errors: list[str] = []
        committed: list[int] = []

        def on_commit(notes: list[dict]) -> None:
            for note in notes:
                try:
                    deliver(dict(note), presence.online, presence.push, presence.hold)
                except Exception as exc:  # shown to the learner
                    errors.append(f"{type(exc).__name__}: {exc}")
                committed.append(1)

        app.worker = Worker(app.servers, on_commit=on_commit, engine=app.engine,
                            name="interview-q5-worker").start()
        placed: dict[int, list[int]] = {101: [], 102: []}

        def orders(count: int) -> None:
            for _ in range(count):
                for user in placed:
                    reply = requests.post(f"{app.url}/orders", timeout=5,
                                          json={"user_id": user, "item": "pen"})
                    placed[user].append(reply.json()["order_id"])
            deadline = time.monotonic() + 5
            while len(committed) < sum(map(len, placed.values())) and \
                    time.monotonic() < deadline:
                time.sleep(0.02)

        ada = sse.Listener(f"{app.url}/events?client_id=user-101")   # the app open all along
        try:
            orders(first)                                # Bob's app is closed
            bob = sse.Listener(f"{app.url}/events?client_id=user-102")  # he opens it: no id
            try:
                time.sleep(0.2)
                orders(second)
                got = {101: ada.wait_for(first + second, timeout=1.5),
                       102: bob.wait_for(first + second, timeout=1.5)}
            finally:
                bob.close()
        finally:
            ada.close()
            presence.done.set()
            app.stop()
    finally:
        broker.stop()
    received = {user: [json.loads(e.data)["data"]["order_id"] for e in events]
                for user, events in got.items()}
    return {"placed": placed, "received": received, "errors": errors, "first": first}


@exercise(
    "interview.q5-delivery",
    title="Q5: a delivery plan that reaches users online at once and offline users later",
    notebook=NOTEBOOK,
    hints=[
        "Ask online(client) each time: presence changes while the system runs; an answer "
        "remembered from an earlier notification is stale.",
        "Online: push(client, note), at once. Offline: a push goes nowhere (the app that opens "
        "later starts a new stream), so hold(client, note): held notes go out when the user "
        "opens the app.",
        "client is f\"user-{note['user_id']}\".",
    ],
    reference=deliver,
    timeout=40,
)
def check_q5_delivery(deliver: Any) -> str:
    calls: list[str] = []
    probe = deliver({"user_id": "1", "order_id": 0, "text": "probe"}, lambda c: True,
                    lambda c, n: calls.append("push"), lambda c, n: calls.append("hold"))
    if not calls and probe is None:
        raise NotAttempted("deliver neither pushed nor held the notification")
    outcome = _drive_delivery(deliver)
    if outcome["errors"]:
        raise Unmet(f"deliver raised in the worker: {outcome['errors'][0]}")
    placed, received, first = outcome["placed"], outcome["received"], outcome["first"]
    for user, who in ((101, "user-101 (Ada) had the app open all along"),
                      (102, f"user-102 (Bob) had the app closed for his first {first} "
                            "order(s), then opened it")):
        got, want = received[user], placed[user]
        twice = sorted({n for n in got if got.count(n) > 1})
        expect(not twice, f"{who}, and got orders {twice} twice: push or hold, not both")
        missing = [n for n in want if n not in got]
        if missing:
            if user == 101:
                fix = "push to a user who is online, at once"
            elif missing[0] in want[:first]:
                fix = "hold what an offline user cannot receive; a push to a closed app is lost"
            else:
                fix = "ask online() for every notification: Bob came online meanwhile"
            raise Unmet(f"{who}, and within 1.5 s got orders {got} of {want}: {fix}")
        expect(got == want, f"{who}, and got orders {got} in another order than {want}")
    return (f"Ada (online) got her {len(placed[101])} at once; Bob got the {first} sent while his "
            f"app was closed when he opened it, and his {len(placed[102]) - first} later ones at "
            "once: none lost, none twice")


# --- deep dive: long-lived connections behind a balancer ----------------------------------------


def make_channel(addresses):
    """A gRPC channel that spreads its calls over every backend in ``addresses``."""
    import grpc
    return grpc.insecure_channel("ipv4:" + ",".join(addresses),
                                 options=[("grpc.lb_policy_name", "round_robin")])


@exercise(
    "interview.balancing",
    title="A gRPC channel that spreads its calls over every backend",
    notebook=NOTEBOOK,
    hints=[
        "One channel keeps one HTTP/2 connection per backend it uses; by default (pick_first) "
        "it uses the first backend that answers, for every call.",
        "Give the channel every address ('ipv4:127.0.0.1:p1,127.0.0.1:p2') and ask for the "
        "round_robin policy: options=[('grpc.lb_policy_name', 'round_robin')].",
    ],
    reference=make_channel,
    timeout=20,
)
def check_balancing(make_channel: Any) -> str:
    from . import balancing

    count, calls = random.choice((2, 3)), 30
    with balancing.backends(count) as pool:
        addresses = [f"127.0.0.1:{backend.port}" for backend in pool]
        made = make_channel(list(addresses))
        if made is None:
            raise NotAttempted("make_channel returns None")
        with made as ch:
            whoami = ch.unary_unary("/lab.Backend/WhoAmI")
            for _ in range(calls):
                whoami(b"", timeout=5)
        got = {backend.name: backend.calls for backend in pool}
    busy = [name for name, n in got.items() if n]
    expect(len(busy) > 1,
           f"all {calls} calls reached {busy[0] if busy else 'no backend'} of {count} "
           f"({got}): one HTTP/2 connection carries every call, and a channel's default "
           "policy, pick_first, keeps to one backend; give it every address and ask for "
           "round_robin")
    idle = [name for name, n in got.items() if n < calls / (2 * count)]
    expect(not idle, f"{', '.join(idle)} got almost nothing ({got}): give the channel every "
                     "backend's address")
    return f"{calls} calls over {count} backends: {got}"
