"""The SSE lab server and its resuming client: format, resume, cleanup, bad input, load."""

from __future__ import annotations

import json
import random
import threading
from urllib.parse import quote

import pytest
import requests
import sseclient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labsupport import sse


def parse(text: str) -> list[sseclient.Event]:
    return list(sseclient.SSEClient(iter([text.encode()])).events())


@pytest.fixture
def server():
    with sse.start(name="sse-test", heartbeat=0.2, retry_ms=20) as handle:
        yield handle


def read_events(stream, count, on_event=None):
    """The first ``count`` events with an id, from a ResumableEventStream."""
    got = []
    for event in stream:
        if event.id is None:
            continue
        got.append(event)
        if on_event:
            on_event(event)
        if len(got) == count:
            stream.close()
    return got


# --- the wire format -----------------------------------------------------------

def test_format_event_keeps_multiline_data():
    text = sse.format_event("line one\nline two", event="note", id=7)
    assert text == "id: 7\nevent: note\ndata: line one\ndata: line two\n\n"
    [event] = parse(text)
    assert (event.id, event.event, event.data) == ("7", "note", "line one\nline two")


def test_stream_sends_retry_named_events_ids_and_comment_heartbeats(server):
    with requests.get(f"{server.url}/events?client_id=raw", stream=True, timeout=(2, 2)) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        assert r.headers["Cache-Control"] == "no-cache"
        assert "Access-Control-Allow-Origin" not in r.headers
        chunks = r.iter_content(None)
        hello = next(chunks).decode()
        assert hello.startswith("retry: 20\nevent: connected\n")
        server.broker.publish("news_article", {"title": "t"})
        published = next(chunks).decode()
        heartbeat = next(chunks).decode()
    assert published.startswith("id: 1\nevent: news_article\ndata: ")
    assert json.loads(parse(published)[0].data)["data"] == {"title": "t"}
    assert heartbeat == ": keep-alive\n\n"
    assert parse(heartbeat) == [], "a comment heartbeat is not dispatched as an event"


# --- resume --------------------------------------------------------------------

def test_resume_with_last_event_id_gets_exactly_what_was_missed(server, wait_until):
    for n in range(3):
        server.broker.publish("message", n)
    stream = sse.ResumableEventStream(f"{server.url}/events?client_id=r", last_event_id="0",
                                      read_timeout=2)
    first = read_events(stream, 3)
    assert [e.id for e in first] == ["1", "2", "3"]
    assert wait_until(lambda: server.broker.connections() == [])
    for n in range(3, 6):
        server.broker.publish("message", n)
    resumed = sse.ResumableEventStream(f"{server.url}/events?client_id=r",
                                       last_event_id=stream.last_event_id, read_timeout=2)
    assert [json.loads(e.data)["data"] for e in read_events(resumed, 3)] == [3, 4, 5]
    assert server.broker.resumed_from == [0, 3]


def test_a_first_connection_starts_after_last_event_id_in_its_url_and_the_header_wins(server):
    """A page shown after events were published asks for them in its URL (it cannot set
    headers); when EventSource reconnects, its Last-Event-ID header takes over."""
    for n in range(4):
        server.broker.publish("message", n)
    url = f"{server.url}/events?client_id=page&last_event_id=2"
    assert [e.id for e in read_events(sse.ResumableEventStream(url, read_timeout=2), 2)] == [
        "3", "4"]
    resumed = sse.ResumableEventStream(url, last_event_id="3", read_timeout=2)
    assert [e.id for e in read_events(resumed, 1)] == ["4"]
    assert server.broker.resumed_from == [2, 3]
    bad = requests.get(f"{server.url}/events?last_event_id=abc", timeout=2)
    assert bad.status_code == 400 and "Last-Event-ID" in bad.json()["error"]["details"]


def test_client_reconnects_by_itself_after_the_server_drops_it(server):
    stream = sse.ResumableEventStream(f"{server.url}/events?client_id=d", read_timeout=2)

    def drop_then_publish():
        server.broker.drop_all()
        server.broker.publish("message", "while away")

    def on_event(event):
        if event.id == "1":
            threading.Thread(target=drop_then_publish).start()

    publisher = threading.Timer(0.2, server.broker.publish, ("message", "first"))
    publisher.start()
    got = read_events(stream, 2, on_event)
    assert [(e.id, json.loads(e.data)["data"]) for e in got] == [
        ("1", "first"), ("2", "while away")]
    assert stream.connections == 2 == server.broker.opened
    assert server.broker.resumed_from == [1]


def test_drop_all_counts_only_the_streams_it_closed():
    broker = sse.Broker()
    first, _ = broker.connect("a", None)
    assert broker.drop_all() == 1
    assert broker.drop_all() == 0          # closed, not yet gone: not dropped a second time
    broker.disconnect(first)
    broker.connect("a", "")
    assert (broker.drop_all(), broker.opened) == (1, 2)


def test_too_old_last_event_id_is_410_gone():
    with sse.start(name="sse-test", history=5, heartbeat=0.2) as server:
        for n in range(10):
            server.broker.publish("message", n)
        old = requests.get(f"{server.url}/events", headers={"Last-Event-ID": "3"}, timeout=2)
        assert old.status_code == 410
        assert "buffer starts at 6" in old.json()["error"]["details"]["Last-Event-ID"][0]
        stream = sse.ResumableEventStream(f"{server.url}/events", last_event_id="5",
                                          read_timeout=2)
        assert [e.id for e in read_events(stream, 5)] == ["6", "7", "8", "9", "10"]


def test_slow_consumer_is_disconnected_then_resumes_without_loss():
    with sse.start(name="sse-test", queue_size=3, heartbeat=0.2, retry_ms=20) as server:
        connection, _ = server.broker.connect("slow", None)
        for n in range(10):
            server.broker.publish("message", n)
        assert server.broker.next_batch(connection, 0.1) is None, "over its queue: closed"
        server.broker.disconnect(connection)
        stream = sse.ResumableEventStream(f"{server.url}/events?client_id=slow",
                                          last_event_id="0", read_timeout=2)
        assert [e.id for e in read_events(stream, 10)] == [str(n) for n in range(1, 11)]


# --- clients ------------------------------------------------------------------

def test_notify_reaches_only_that_client_and_every_tab_of_it(server, wait_until):
    def listen(client_id, out):
        stream = sse.ResumableEventStream(f"{server.url}/events?client_id={client_id}",
                                          read_timeout=2)
        out.extend(read_events(stream, 2))

    received: dict[str, list[sseclient.Event]] = {name: [] for name in ("tab1", "tab2", "other")}
    threads = [threading.Thread(target=listen, args=("ada" if n != "other" else "bob", out))
               for n, out in received.items()]
    for thread in threads:
        thread.start()
    assert wait_until(lambda: len(server.broker.connections()) == 3)
    assert server.broker.connections() == ["ada", "ada", "bob"]
    reply = requests.post(f"{server.url}/api/notify/ada", json={"data": {"m": "hi"}}, timeout=2)
    assert reply.status_code == 200
    requests.post(f"{server.url}/api/broadcast", json={"type": "news_article", "data": {}},
                  timeout=2)
    requests.post(f"{server.url}/api/notify/bob", json={"data": {}}, timeout=2)
    for thread in threads:
        thread.join(5)
    assert [e.event for e in received["tab1"]] == ["notification", "news_article"]
    assert [e.event for e in received["tab2"]] == ["notification", "news_article"]
    assert [e.event for e in received["other"]] == ["news_article", "notification"]


def test_client_ids_are_unique_when_not_given(server):
    ids = set()
    for _ in range(5):
        with requests.get(f"{server.url}/events", stream=True, timeout=(2, 2)) as r:
            hello = parse(next(r.iter_content(None)).decode())[0]
            ids.add(json.loads(hello.data)["data"]["client_id"])
    assert len(ids) == 5


def test_news_feed_publishes_the_articles_in_order_then_stops():
    with sse.start(name="sse-test", news_interval=0.01) as server:
        assert server.news is not None  # news_interval starts the feed
        server.news.thread.join(2)
        titles = [e.data["title"] for e in server.broker._history]
    assert titles == [a["title"] for a in sse.SAMPLE_ARTICLES]


# --- cleanup -----------------------------------------------------------------

def test_a_closed_client_is_cleaned_up_and_stop_ends_every_stream(wait_until):
    before = threading.active_count()
    server = sse.start(name="sse-test", heartbeat=0.1)
    gone = requests.get(f"{server.url}/events?client_id=gone", stream=True, timeout=(2, 2))
    kept = requests.get(f"{server.url}/events?client_id=kept", stream=True, timeout=(2, 2))
    reading = [gone.iter_content(None), kept.iter_content(None)]  # dropping one closes it
    for chunks in reading:
        next(chunks)
    assert server.broker.connections() == ["gone", "kept"]
    gone.close()
    assert wait_until(lambda: server.broker.connections() == ["kept"]), "gone stays subscribed"
    server.stop()
    assert wait_until(lambda: server.broker.connections() == [])
    assert wait_until(lambda: threading.active_count() <= before), threading.enumerate()
    kept.close()


# --- bad input ---------------------------------------------------------------

@pytest.mark.parametrize("header, status, words", [
    ("abc", 400, "a whole number"),
    ("-1", 400, "a whole number"),
    ("1.5", 400, "a whole number"),
    ("99", 400, "no event 99 was sent"),
    ("9" * 40, 400, "a whole number"),
])
def test_bad_last_event_id_is_a_clear_400(server, header, status, words):
    reply = requests.get(f"{server.url}/events", headers={"Last-Event-ID": header}, timeout=10)
    assert reply.status_code == status
    assert words in json.dumps(reply.json())


@pytest.mark.parametrize("path, kwargs, status, words", [
    ("/api/broadcast", {"data": "x"}, 415, "Content-Type: application/json"),
    ("/api/broadcast", {"data": "{", "headers": {"Content-Type": "application/json"}}, 400,
     "not valid JSON"),
    ("/api/broadcast", {"json": [1]}, 400, "JSON object"),
    ("/api/broadcast", {"json": {"type": "x\nid: 0"}}, 422, "no spaces or newlines"),
    ("/api/broadcast", {"json": {"type": 3}}, 422, "event: line"),
    ("/api/broadcast", {"json": {"kind": "x"}}, 422, "Unknown field"),
    ("/api/notify/nobody", {"json": {}}, 404, "No client 'nobody'"),
    ("/api/notify/bad%20id", {"json": {}}, 400, "Invalid client id"),
])
def test_bad_publish_requests_are_clear_4xx(server, path, kwargs, status, words):
    reply = requests.post(f"{server.url}{path}", timeout=10, **kwargs)
    assert reply.status_code == status
    assert words in json.dumps(reply.json())


def test_bad_client_id_on_the_stream_is_400(server):
    reply = requests.get(f"{server.url}/events?client_id=%3Cscript%3E", timeout=2)
    assert reply.status_code == 400


HEADER_TEXT = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=30)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(last_event_id=HEADER_TEXT, client_id=st.text(max_size=70), body=st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                  max_size=3),
    max_leaves=6))
def test_fuzzed_input_never_gives_a_500_or_hangs(server, last_event_id, client_id, body):
    reply = requests.get(f"{server.url}/events", params={"client_id": client_id},
                         headers={"Last-Event-ID": last_event_id}, stream=True, timeout=(2, 2))
    with reply:
        assert reply.status_code in (200, 400, 410)
    reply = requests.post(f"{server.url}/api/broadcast", json=body, timeout=2)
    assert reply.status_code in (200, 400, 415, 422), reply.text
    reply = requests.post(f"{server.url}/api/notify/{quote(client_id, safe='')}", json=body,
                          timeout=2)
    assert reply.status_code in (200, 400, 404, 405, 415, 422), reply.text


# --- load --------------------------------------------------------------------

@pytest.mark.slow
def test_20_clients_500_messages_random_drops_each_gets_all_exactly_once_in_order(wait_until):
    clients, publishers, per_publisher = 20, 5, 100
    total = publishers * per_publisher
    rng = random.Random(6)
    with sse.start(name="sse-load", heartbeat=0.2, retry_ms=10, history=total) as server:
        results: dict[int, list[int]] = {}
        drops: dict[int, int] = {}

        def client(n):
            chance = rng.random() * 0.02
            stream = sse.ResumableEventStream(f"{server.url}/events?client_id=c{n}",
                                              read_timeout=3)
            seen, ordered = set(), []
            drops[n] = 0
            for event in stream:
                if event.id is None:
                    continue
                id = int(event.id)
                if id not in seen:
                    seen.add(id)
                    ordered.append(id)
                if len(seen) == total:
                    stream.close()
                elif random.random() < chance:
                    drops[n] += 1
                    stream.drop()
            results[n] = ordered

        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        for thread in threads:
            thread.start()
        assert wait_until(lambda: len(server.broker.connections()) == clients, 10)

        def publish(p):
            with requests.Session() as session:
                for i in range(per_publisher):
                    session.post(f"{server.url}/api/broadcast",
                                 json={"data": {"publisher": p, "n": i}}, timeout=5)

        pubs = [threading.Thread(target=publish, args=(p,)) for p in range(publishers)]
        for thread in pubs:
            thread.start()
        for thread in pubs + threads:
            thread.join(60)
        assert server.broker.last_id == total
        for n in range(clients):
            assert results.get(n) == list(range(1, total + 1)), f"client {n}"
        assert sum(drops.values()) > 0, "the test should have dropped some connections"
        assert wait_until(lambda: server.broker.connections() == [], 3)
