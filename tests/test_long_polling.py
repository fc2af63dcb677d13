"""The long-polling lab server and its client: cursors, tabs, wake-ups, 410, bad input, load."""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labsupport import long_polling
from labsupport.labs.long_polling.server import Poller


@pytest.fixture
def server():
    with long_polling.start(name="long-polling-test", max_timeout=5) as handle:
        yield handle


@pytest.fixture
def client() -> FlaskClient:
    """The lab's app without a server, for what it answers rather than how it waits."""
    app = long_polling.create_app(long_polling.NotificationHub(), max_timeout=5)
    return app.test_client()


def send(server, user="ada", type="message", data=None):
    reply = requests.post(f"{server.url}/api/notifications/send",
                          json={"user_id": user, "type": type, "data": data or {}}, timeout=2)
    assert reply.status_code == 201, reply.text
    return reply.json()["id"]


def test_ids_are_a_sequence_per_user(server):
    assert [send(server) for _ in range(3)] == [1, 2, 3]
    assert send(server, user="alan") == 1


def test_every_tab_of_a_user_gets_every_notification(server):
    for n in range(3):
        send(server, data={"n": n})
    tab1, tab2 = Poller(server.url, "ada"), Poller(server.url, "ada")
    assert [n["data"]["n"] for n in tab1.poll(0)] == [0, 1, 2]
    assert [n["data"]["n"] for n in tab2.poll(0)] == [0, 1, 2], "reads are not destructive"
    assert tab1.cursor == tab2.cursor == 3


def test_a_waiting_poll_wakes_when_a_notification_arrives(server, wait_until):
    poller = Poller(server.url, "ada")
    result: dict[str, list[dict[str, Any]]] = {}
    thread = threading.Thread(target=lambda: result.update(got=poller.poll(5)))
    started = time.monotonic()
    thread.start()
    assert wait_until(lambda: server.hub.waiting() == 1)
    send(server, data={"hello": 1})
    thread.join(5)
    assert time.monotonic() - started < 2
    assert [n["data"] for n in result["got"]] == [{"hello": 1}]
    assert server.hub.waiting() == 0


def test_no_wake_up_is_lost_between_check_and_wait(server):
    """A notification sent the instant a poll starts is delivered at once, never after the
    timeout: the check and the wait hold the same lock."""
    inbox = server.hub.inboxes["ada"]
    for n in range(50):
        sender = threading.Thread(target=inbox.add, args=("message", n))
        started = time.monotonic()
        sender.start()
        batch, timed_out = server.hub.poll("ada", n, timeout=2)
        sender.join()
        assert not timed_out and batch[0]["id"] == n + 1
        assert time.monotonic() - started < 1


def test_empty_poll_times_out_after_the_requested_timeout(server):
    started = time.monotonic()
    body = requests.get(f"{server.url}/api/notifications/ada/poll?timeout=0.2", timeout=3).json()
    assert 0.15 < time.monotonic() - started < 1.5
    assert body == {"notifications": [], "cursor": 0, "has_more": False, "timeout": True}


def test_cursor_older_than_history_is_410_and_the_client_resyncs():
    with long_polling.start(name="long-polling-test", history=5) as server:
        for n in range(12):
            server.hub.send("ada", "message", {"n": n})
        gone = requests.get(f"{server.url}/api/notifications/ada/poll?cursor=2&timeout=0",
                            timeout=2)
        assert gone.status_code == 410
        assert gone.json()["error"]["details"]["oldest"] == 8
        poller = Poller(server.url, "ada", cursor=2)
        assert [n["id"] for n in poller.poll(0)] == [8, 9, 10, 11, 12]
        assert (poller.cursor, poller.resyncs) == (12, 1)
        fresh = Poller(server.url, "ada", cursor=7)
        assert [n["id"] for n in fresh.poll(0)] == [8, 9, 10, 11, 12], "7 still resumes"


def test_large_backlog_comes_in_batches():
    server = long_polling.start(name="long-polling-test", history=200)
    for n in range(long_polling.MAX_BATCH + 5):
        server.hub.send("ada", "message", {"n": n})
    first = requests.get(f"{server.url}/api/notifications/ada/poll?timeout=0", timeout=2).json()
    assert len(first["notifications"]) == long_polling.MAX_BATCH and first["has_more"]
    poller = Poller(server.url, "ada", cursor=first["cursor"])
    assert len(poller.poll(0)) == 5
    server.stop()


def test_the_documents_message_endpoints(server):
    reply = requests.post(f"{server.url}/api/send_message", json={
        "recipient_id": "user-123", "sender_id": "ada", "message": "hi"}, timeout=2)
    assert reply.status_code == 201 and reply.json() == {"status": "sent", "message_id": 1}
    body = requests.get(f"{server.url}/api/poll/user-123?timeout=0", timeout=2).json()
    assert body["notifications"][0]["data"] == {"sender_id": "ada", "message": "hi"}


def test_retry_delay_is_capped_exponential_with_jitter():
    rng = random.Random(1)
    delays = [[long_polling.retry_delay(a, 0.5, 8, rng) for _ in range(200)] for a in range(8)]
    for attempt, sample in enumerate(delays):
        assert all(0 <= d <= min(8, 0.5 * 2 ** attempt) for d in sample)
        assert len(set(sample)) > 150
    assert max(delays[7]) > 7


def test_stop_answers_every_waiting_poll(wait_until):
    before = threading.active_count()
    server = long_polling.start(name="long-polling-test", max_timeout=30)
    replies = []
    threads = [threading.Thread(target=lambda: replies.append(requests.get(
        f"{server.url}/api/notifications/ada/poll?timeout=30", timeout=10)))
        for _ in range(3)]
    for thread in threads:
        thread.start()
    assert wait_until(lambda: server.hub.waiting() == 3)
    started = time.monotonic()
    server.stop()
    for thread in threads:
        thread.join(5)
    assert time.monotonic() - started < 2
    assert [r.status_code for r in replies] == [200, 200, 200]
    assert wait_until(lambda: threading.active_count() <= before), threading.enumerate()


# --- bad input ---------------------------------------------------------------

@pytest.mark.parametrize("query, status, words", [
    ("cursor=abc", 400, "a whole number"),
    ("cursor=-1", 400, "a whole number"),
    ("cursor=1.5", 400, "a whole number"),
    ("cursor=99", 400, "ahead of the latest"),
    ("timeout=abc", 400, "a number of seconds"),
    ("timeout=nan", 400, "a number of seconds"),
    ("timeout=inf", 400, "a number of seconds"),
    ("timeout=-1", 400, "a number of seconds"),
    ("timeout=86400", 400, "from 0 to 5"),
])
def test_bad_poll_parameters_are_clear_400s(client, query, status, words):
    reply = client.get(f"/api/notifications/ada/poll?{query}")
    assert reply.status_code == status
    assert words in json.dumps(reply.json)


def test_unknown_user_is_404(client):
    reply = client.get("/api/notifications/mallory/poll?timeout=0")
    assert reply.status_code == 404 and "mallory" in reply.json["error"]["message"]


@pytest.mark.parametrize("body, status, field", [
    ({"type": "m", "data": {}}, 422, "user_id"),
    ({"user_id": "mallory", "type": "m"}, 422, "user_id"),
    ({"user_id": "ada", "type": "m", "data": "text"}, 422, "data"),
    ({"user_id": "ada", "type": "no spaces"}, 422, "type"),
    ({"user_id": "ada", "type": "m", "extra": 1}, 422, "extra"),
    ({"user_id": 5, "type": "m"}, 422, "user_id"),
])
def test_bad_send_bodies_are_422_with_details(client, body, status, field):
    reply = client.post("/api/notifications/send", json=body)
    assert reply.status_code == status
    assert field in reply.json["error"]["details"]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cursor=st.text(max_size=12), timeout=st.text(max_size=12), body=st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["user_id", "type", "data", "x"]), inner, max_size=4),
    max_leaves=6))
def test_fuzzed_input_never_gives_a_500_or_hangs(server, cursor, timeout, body):
    started = time.monotonic()
    reply = requests.get(f"{server.url}/api/notifications/ada/poll",
                         params={"cursor": cursor, "timeout": timeout}, timeout=10)
    assert reply.status_code in (200, 400), reply.text
    if reply.status_code == 200:
        assert time.monotonic() - started < 5.5, "waited beyond the capped timeout"
    reply = requests.post(f"{server.url}/api/notifications/send", json=body, timeout=2)
    assert reply.status_code in (201, 400, 415, 422), reply.text


# --- load --------------------------------------------------------------------

@pytest.mark.slow
def test_20_clients_500_messages_random_drops_each_gets_all_exactly_once_in_order(wait_until):
    clients, publishers, per_publisher = 20, 5, 100
    total = publishers * per_publisher
    with long_polling.start(name="long-polling-load", history=total) as server:
        results: dict[int, list[int]] = {}
        drops: dict[int, int] = {}

        def client(n):
            poller = Poller(server.url, "ada", timeout=2)
            seen: set[int] = set()
            ordered: list[int] = []
            drops[n] = 0
            while len(seen) < total:
                if random.random() < 0.05:
                    drops[n] += 1  # abandon a poll mid-flight, as a closed tab does
                    with contextlib.suppress(requests.RequestException):
                        requests.get(f"{server.url}/api/notifications/ada/poll", params={
                            "cursor": poller.cursor, "timeout": 2}, timeout=(2, 0.005))
                    continue
                for notification in poller.poll():
                    if notification["id"] not in seen:
                        seen.add(notification["id"])
                        ordered.append(notification["id"])
            results[n] = ordered

        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        for thread in threads:
            thread.start()

        def publish(p):
            with requests.Session() as session:
                for i in range(per_publisher):
                    session.post(f"{server.url}/api/notifications/send", json={
                        "user_id": "ada", "type": "message", "data": {"p": p, "i": i}},
                        timeout=5)

        pubs = [threading.Thread(target=publish, args=(p,)) for p in range(publishers)]
        for thread in pubs:
            thread.start()
        for thread in pubs + threads:
            thread.join(60)
        assert server.hub.inboxes["ada"].latest == total
        for n in range(clients):
            assert results.get(n) == list(range(1, total + 1)), f"client {n}"
        assert sum(drops.values()) > 0
        assert wait_until(lambda: server.hub.waiting() == 0, 3)


def test_a_poll_whose_client_hangs_up_stops_waiting(server, wait_until):
    with contextlib.suppress(requests.RequestException):
        requests.get(f"{server.url}/api/notifications/ada/poll?timeout=5", timeout=(2, 0.1))
    started = time.monotonic()
    assert wait_until(lambda: server.hub.waiting() == 0, 2), "the held poll outlived its client"
    assert time.monotonic() - started < 1
