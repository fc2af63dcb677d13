"""Bad input refused in the protocol's terms, malformed bodies dead-lettered, Q5 end to end."""

from __future__ import annotations

import json
import time

import pytest
import requests

from labsupport import database, queues, sse
from labsupport.labs.queues import direct, pipeline, store
from labsupport.labs.queues.subjects import InvalidSubject, subject, token
from labsupport.labs.queues.worker import dead_letters


@pytest.mark.parametrize("bad, reason", [
    ("*", "wildcard"), (">", "wildcard"), ("a*b", "wildcard"), ("", "empty"),
    ("two words", "whitespace"), ("a.b", "dot"), ("tab\there", "whitespace"),
    ("x" * 65, "longer than 64"), ("é", "letters, digits"),
])
def test_subject_tokens_from_user_input_are_refused(bad, reason):
    with pytest.raises(InvalidSubject, match=reason):
        subject("orders.created", bad)


def test_a_good_token_makes_a_subject():
    assert subject("orders.created", 101) == "orders.created.101"
    assert token("user-7_b") == "user-7_b"


@pytest.fixture
def app(queues_broker):
    handle = pipeline.start(queues_broker, name="queues-pipeline-app")
    try:
        yield handle
    finally:
        handle.stop()
        with queues.Bus(queues_broker.servers) as bus:  # the next test starts from empty streams
            for stream in ("ORDERS", "DLQ"):
                bus.run(bus.js.delete_stream(stream))


@pytest.mark.parametrize("body, status, field", [
    ({"user_id": "*", "item": "x"}, 422, "user_id"),
    ({"user_id": ">", "item": "x"}, 422, "user_id"),
    ({"user_id": 101, "item": ""}, 422, "item"),
    ({"user_id": 101, "item": "x", "quantity": 0}, 422, "quantity"),
    ({"user_id": 101, "item": "x", "price": 1}, 422, "price"),
    ({"user_id": True, "item": "x"}, 422, "user_id"),
    ({"user_id": 999, "item": "x"}, 404, None),
])
def test_bad_orders_are_refused_and_nothing_is_published(app, body, status, field):
    reply = requests.post(f"{app.url}/orders", json=body, timeout=5)
    assert reply.status_code == status
    error = reply.json()["error"]
    if field:
        assert field in error["details"]
    time.sleep(0.3)
    assert app.relay.published == 0
    info = app.bus.run(app.bus.js.stream_info("ORDERS"))
    assert info.state.messages == 0


@pytest.mark.parametrize("path, content_type", [
    ("/orders-page", "text/html; charset=utf-8"),
    ("/orders-static/orders.js", "text/javascript; charset=utf-8"),
])
def test_the_orders_page_is_served_with_a_real_status(app, path, content_type):
    # Response(*static_file(...)) once made the content type the status: "HTTP/1.1 0".
    reply = requests.get(f"{app.url}{path}", timeout=5)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == content_type


def test_not_json_is_a_400_in_the_envelope(app):
    reply = requests.post(f"{app.url}/orders", data="{", timeout=5,
                          headers={"Content-Type": "application/json"})
    assert reply.status_code == 400 and reply.json()["error"]["code"]


def test_malformed_bodies_go_to_the_dlq_with_the_reason_and_the_worker_lives_on(app):
    for body in (b"{", b"[1, 2]", b'{"order_id": 1}', b'{"user_id": [], "order_id": 2}',
                 b"\xff\xfe"):
        app.bus.publish("orders.created.x", body)
    app.bus.publish("orders.created.x", {"order_id": 3, "user_id": "u1"})
    deadline = time.monotonic() + 5
    while app.worker.dead_lettered < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    letters = app.bus.run(dead_letters(app.bus.js))
    needs = "body needs user_id (string or number) and order_id"
    expected = ["body is not JSON (", "body is JSON list, not an object", needs, needs,
                "body is not JSON ("]
    assert len(letters) == len(expected)
    for (reason, _), start in zip(letters, expected, strict=True):
        assert reason.startswith(start), (reason, start)
    while store.effects_count(app.engine) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert app.worker.running and store.texts(app.engine) == ["Your order 3 is confirmed"]


def test_a_failing_effect_is_retried_then_dead_lettered(queues_broker):
    database.reset()
    attempts = []

    def flaky(conn, message):
        attempts.append(message.deliveries)
        raise RuntimeError("email provider down")

    with queues.Bus(queues_broker.servers) as bus:
        bus.run(queues.ensure_streams(bus.js))
        bus.publish("orders.created.u1", {"order_id": 1, "user_id": "u1"})
        with queues.Worker(queues_broker.servers, effect=flaky, max_deliver=3, durable="flaky"):
            deadline = time.monotonic() + 5
            while not bus.run(dead_letters(bus.js)) and time.monotonic() < deadline:
                time.sleep(0.05)
        assert attempts == [1, 2, 3]
        assert bus.run(dead_letters(bus.js)) == [
            ("email provider down", '{"order_id": 1, "user_id": "u1"}')]
        for stream in ("ORDERS", "DLQ"):
            bus.run(bus.js.delete_stream(stream))


def test_q5_end_to_end_nothing_lost_while_the_worker_is_stopped(app):
    listener = sse.Listener(f"{app.url}/events?client_id=user-101")
    try:
        assert requests.post(f"{app.url}/orders", json={"user_id": 101, "item": "Keyboard"},
                             timeout=5).status_code == 201
        [first] = listener.wait_for(1, timeout=5)
        assert first.id is not None
        app.stop_worker()
        listener.close()
        for item in ("Mouse", "Monitor", "Cable"):
            assert requests.post(f"{app.url}/orders", json={"user_id": 101, "item": item},
                                 timeout=5).status_code == 201
        time.sleep(0.3)
        assert app.sse.last_id == int(first.id)  # nothing pushed while the worker is away
        app.start_worker()
        back = sse.Listener(f"{app.url}/events?client_id=user-101", last_event_id=first.id)
        events = back.wait_for(3, timeout=5)
        back.close()
        orders = [json.loads(e.data)["data"]["order_id"] for e in events]
        assert orders == sorted(orders) and len(set(orders)) == 3
        assert store.effects_count(app.engine) == 4 and store.duplicate_effects(app.engine) == 0
    finally:
        listener.close()


def test_the_direct_notifier_duplicates_on_retry_after_timeout():
    with direct.start_notifier(name="queues-notifier-test", delay=0.4) as notifier:
        with pytest.raises(direct.NotifyFailed, match="2 attempt"):
            direct.notify(notifier.url, {"order_id": 1, "user_id": "u"}, timeout=0.2, retries=1)
        time.sleep(0.8)
        assert len(notifier.sent) == 2


def test_the_circuit_breaker_fails_fast_once_open():
    with direct.start_notifier(name="queues-notifier-test") as notifier:
        notifier.settings.down = True
        breaker = direct.CircuitBreaker(threshold=2, reset_after=0.3)
        for _ in range(2):
            with pytest.raises(direct.NotifyFailed):
                direct.notify(notifier.url, {"order_id": 1, "user_id": "u"}, breaker=breaker)
        with pytest.raises(direct.CircuitOpen):
            direct.notify(notifier.url, {"order_id": 1, "user_id": "u"}, breaker=breaker)
        notifier.settings.down = False
        time.sleep(0.35)
        assert breaker.state == "half-open"
        assert direct.notify(notifier.url, {"order_id": 1, "user_id": "u"}, breaker=breaker) == 1
        assert breaker.state == "closed"


def test_the_orders_page_still_places_orders_after_another_cell_resets_the_database(app):
    # 07 after Run All: a later cell's database.reset() unlinked the pipeline's SQLite file, and
    # "Place order" answered 500 "attempt to write a readonly database" (issue 21).
    listener = sse.Listener(f"{app.url}/events?client_id=user-101")
    try:
        database.reset()
        reply = requests.post(f"{app.url}/orders", json={"user_id": 101, "item": "Keyboard"},
                              timeout=5)
        assert reply.status_code == 201, reply.text
        [event] = listener.wait_for(1, timeout=5)
        assert json.loads(event.data)["data"]["order_id"] == reply.json()["order_id"]
        assert store.effects_count(app.engine) == 1
    finally:
        listener.close()
