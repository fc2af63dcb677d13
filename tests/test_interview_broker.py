"""Q5's delivery policy on the queues lab's pipeline, and SSE fan-out through the broker."""

from __future__ import annotations

import json
import time

import pytest
import requests

from labsupport import queues, sse
from labsupport.labs.interview import fanout, notifications


@pytest.fixture()
def pipeline(queues_broker):
    with queues.pipeline.start(queues_broker, name="test-interview-pipeline",
                               worker=False) as handle:
        yield handle


@pytest.fixture()
def attach(pipeline):
    """``attach(**options)``: a Delivery on the pipeline, closed after the test."""
    made = []

    def make(**options):
        made.append(notifications.attach(pipeline, **options))
        return made[-1]

    yield make
    for delivery in made:
        delivery.close()


def order(pipeline, user_id, item="pen"):
    reply = requests.post(f"{pipeline.url}/orders", json={"user_id": user_id, "item": item},
                          timeout=5)
    assert reply.status_code == 201, reply.text


def wait_for_outcomes(delivery, count, timeout=5.0):
    """The outcomes so far, once there are ``count`` (or ``timeout`` s have passed)."""
    deadline = time.monotonic() + timeout
    while len(delivery.outcomes) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return [outcome for _, outcome, _ in delivery.outcomes]


def test_online_users_get_pushes_up_to_their_rate(pipeline, attach):
    delivery = attach(burst=2, per_second=0.01)
    listener = sse.Listener(f"{pipeline.url}/events?client_id=user-101")
    try:
        for n in range(4):
            order(pipeline, 101, f"book {n}")
        outcomes = wait_for_outcomes(delivery, 4)
        assert sorted(outcomes) == ["pushed", "pushed", "rate-limited: inbox only",
                                    "rate-limited: inbox only"]
        assert len(listener.wait_for(2, timeout=3)) == 2
    finally:
        listener.close()


def test_the_next_push_after_a_limit_says_how_many_were_held_back(pipeline, attach):
    now = [0.0]
    delivery = attach(burst=1, per_second=1.0, clock=lambda: now[0])
    listener = sse.Listener(f"{pipeline.url}/events?client_id=user-101")
    try:
        order(pipeline, 101)
        wait_for_outcomes(delivery, 1)
        order(pipeline, 101)
        wait_for_outcomes(delivery, 2)
        now[0] = 5.0
        order(pipeline, 101)
        wait_for_outcomes(delivery, 3)
        events = [json.loads(e.data)["data"] for e in listener.wait_for(2, timeout=3)]
        assert [e["held_back"] for e in events] == [0, 1]
    finally:
        listener.close()


def test_offline_users_get_their_notifications_on_return(pipeline, attach):
    delivery = attach()
    order(pipeline, 102)
    assert wait_for_outcomes(delivery, 1) == ["offline: held until the user returns"]
    listener = sse.Listener(f"{pipeline.url}/events?client_id=user-102")
    try:
        events = listener.wait_for(1, timeout=3)
        assert len(events) == 1 and "is confirmed" in json.loads(events[0].data)["data"]["text"]
        assert wait_for_outcomes(delivery, 2)[-1] == "returned: pushed on connect"
    finally:
        listener.close()


def test_muted_users_keep_notifications_in_the_inbox_only(pipeline, attach):
    delivery = attach()
    delivery.mute(103)
    listener = sse.Listener(f"{pipeline.url}/events?client_id=user-103")
    try:
        order(pipeline, 103)
        assert wait_for_outcomes(delivery, 1) == ["muted: inbox only"]
        assert listener.wait_for(1, timeout=0.5) == []
    finally:
        listener.close()
    from sqlalchemy import select

    from labsupport.labs.queues import store
    with pipeline.engine.connect() as conn:
        users = conn.execute(select(store.notifications.c.user_id)).scalars().all()
    assert "103" in users


def test_fanout_reaches_clients_of_every_server(queues_broker):
    with fanout.start(queues_broker, count=3) as fleet:
        listeners = [sse.Listener(f"{s.url}/events?client_id=c{n}")
                     for n, s in enumerate(fleet.servers)]
        try:
            fleet.publish("score", {"goal": 1})
            for listener in listeners:
                events = listener.wait_for(1, timeout=3)
                assert [json.loads(e.data)["data"] for e in events] == [{"goal": 1}]
            fleet.publish("private", {"for": "c1"}, to="c1")
            assert len(listeners[1].wait_for(2, timeout=3)) == 2
            assert len(listeners[0].wait_for(2, timeout=0.3)) == 1
        finally:
            for listener in listeners:
                listener.close()
    assert not any(server.running for server in fleet.servers)
