"""postAdded over WebSocket (graphql-transport-ws) and in process with schema.subscribe."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from labsupport import graphql_api

PROTOCOL = [Subprotocol("graphql-transport-ws")]
CREATE_POST = ("mutation($a: ID!, $t: String!) "
               "{ createPost(input: {title: $t, content: \"x\", authorId: $a}) { id } }")


@pytest.fixture(scope="module")
def server(graphql_server):
    return graphql_server


def create_post(server, author_id, title):
    response = requests.post(f"{server.url}/graphql", timeout=5, json={
        "query": CREATE_POST, "variables": {"a": author_id, "t": title}})
    return response.json()["data"]["createPost"]["id"]


def send(ws, message):
    ws.send(json.dumps(message))


def receive(ws):
    return json.loads(ws.recv(timeout=3))


@contextlib.contextmanager
def open_session(server):
    with connect(server.ws_url, subprotocols=PROTOCOL, open_timeout=3) as ws:
        send(ws, {"type": "connection_init", "payload": {}})
        assert receive(ws) == {"type": "connection_ack"}
        yield ws


def subscribe(ws, id, query):
    send(ws, {"id": id, "type": "subscribe", "payload": {"query": query}})
    send(ws, {"type": "ping"})  # the server answers in order: once pong, it listens
    assert receive(ws) == {"type": "pong"}


def test_post_added_streams_each_new_post_of_the_author(server):
    with open_session(server) as ws:
        subscribe(ws, "s1", 'subscription { postAdded(authorId: "123") { title author { name } } }')
        create_post(server, "101", "not for this subscriber")
        create_post(server, "123", "first")
        create_post(server, "123", "second")
        events = [receive(ws), receive(ws)]
    assert events == [
        {"id": "s1", "type": "next",
         "payload": {"data": {"postAdded": {"title": t, "author": {"name": "John Doe"}}}}}
        for t in ("first", "second")]


def test_complete_stops_the_stream(server):
    with open_session(server) as ws:
        subscribe(ws, "a", "subscription { postAdded { title } }")
        subscribe(ws, "b", "subscription { postAdded { id } }")
        send(ws, {"id": "a", "type": "complete"})
        post_id = create_post(server, "102", "after complete")
        assert receive(ws) == {"id": "b", "type": "next",
                               "payload": {"data": {"postAdded": {"id": post_id}}}}
        send(ws, {"type": "ping"})
        assert receive(ws) == {"type": "pong"}


def test_queries_run_once_and_complete(server):
    with open_session(server) as ws:
        send(ws, {"id": "q", "type": "subscribe",
                  "payload": {"query": '{ user(id: "101") { name } }'}})
        assert receive(ws) == {"id": "q", "type": "next",
                               "payload": {"data": {"user": {"name": "Ada Lovelace"}}}}
        assert receive(ws) == {"id": "q", "type": "complete"}


def test_invalid_operation_gets_an_error_message(server):
    with open_session(server) as ws:
        send(ws, {"id": "e", "type": "subscribe",
                  "payload": {"query": "subscription { postAdded { password } }"}})
        message = receive(ws)
    assert message["type"] == "error" and message["id"] == "e"
    assert message["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def closed_with(ws):
    with pytest.raises(ConnectionClosedError) as closed:
        ws.recv(timeout=5)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


@pytest.mark.parametrize("messages, code, reason", [
    (["not json"], 4400, "Invalid message received"),
    ([{"no": "type"}], 4400, "Invalid message received"),
    ([{"type": "connection_init"}, {"type": "shout"}], 4400, "Unknown message type 'shout'"),
    ([{"type": "connection_init"}, {"id": "1", "type": "subscribe", "payload": {"query": 5}}],
     4400, "Invalid message received"),
    ([{"id": "1", "type": "subscribe", "payload": {"query": "{ users { id } }"}}],
     4401, "Unauthorized"),
    ([{"type": "connection_init"}, {"type": "connection_init"}],
     4429, "Too many initialisation requests"),
    ([{"type": "connection_init"},
      {"id": "x", "type": "subscribe", "payload": {"query": "subscription { postAdded { id } }"}},
      {"id": "x", "type": "subscribe", "payload": {"query": "subscription { postAdded { id } }"}}],
     4409, "Subscriber for x already exists"),
])
def test_protocol_errors_close_with_the_subprotocol_codes(server, messages, code, reason):
    with connect(server.ws_url, subprotocols=PROTOCOL, open_timeout=3) as ws:
        for message in messages:
            ws.send(message if isinstance(message, str) else json.dumps(message))
        while True:
            try:
                ws.recv(timeout=5)
            except ConnectionClosedError as closed:
                assert closed.rcvd is not None
                assert (closed.rcvd.code, closed.rcvd.reason) == (code, reason)
                return


def test_no_connection_init_in_time_closes_4408(server, monkeypatch):
    from labsupport import subscriptions

    monkeypatch.setattr(subscriptions, "INIT_TIMEOUT", 0.2)
    with connect(server.ws_url, subprotocols=PROTOCOL, open_timeout=3) as ws:
        assert closed_with(ws) == (4408, "Connection initialisation timeout")


def test_a_client_without_the_subprotocol_is_refused_at_the_handshake(server):
    with pytest.raises(InvalidStatus) as refused:
        connect(server.ws_url, open_timeout=3)
    assert refused.value.response.status_code == 400
    assert b"missing subprotocol" in refused.value.response.body


def test_schema_subscribe_in_process():
    async def main():
        stream = await graphql_api.schema.subscribe(
            'subscription { postAdded(authorId: "105") { title } }')
        next_event = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0)
        await graphql_api.execute_query(
            'mutation { createPost(input: {title: "in process", content: "x", '
            'authorId: "105"}) { id } }')
        result = await asyncio.wait_for(next_event, 3)
        await stream.aclose()
        return result

    result = asyncio.run(main())
    assert result.data == {"postAdded": {"title": "in process"}}


def test_stopping_the_server_ends_open_subscriptions():
    listening = graphql_api.posts_bus.listening()
    with open_session_to(graphql_api.start(name="graphql-stop", fresh_data=False)) as (ws, other):
        subscribe(ws, "s", "subscription { postAdded { id } }")
        assert graphql_api.posts_bus.listening() == listening + 1
        other.stop()
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001  # going away
    assert graphql_api.posts_bus.listening() == listening


@contextlib.contextmanager
def open_session_to(handle):
    with handle, open_session(handle) as ws:
        yield ws, handle


# --- fuzzing ----------------------------------------------------------------------

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
_payload = st.fixed_dictionaries(
    {"query": st.sampled_from(["subscription { postAdded { id } }", "{ users { id } }",
                               "{ nope", ""])},
    optional={"variables": _json})
_message = st.fixed_dictionaries(
    {"type": st.sampled_from(["connection_init", "subscribe", "complete", "ping", "pong",
                              "next", "bogus"])},
    optional={"id": st.text(max_size=4) | st.integers(), "payload": _json | _payload})
PROTOCOL_CLOSE_CODES = {4400, 4401, 4409, 4429}


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # module-scoped server
@given(messages=st.lists(_message | st.text(max_size=20), min_size=1, max_size=5))
def test_any_message_sequence_is_answered_or_closed_with_a_protocol_code(server, messages):
    with connect(server.ws_url, subprotocols=PROTOCOL, open_timeout=3) as ws:
        try:
            for message in messages:
                ws.send(message if isinstance(message, str) else json.dumps(message))
            ws.send(json.dumps({"type": "ping"}))
            while json.loads(ws.recv(timeout=3))["type"] != "pong":
                pass
        except ConnectionClosedError as closed:
            assert closed.rcvd is not None
            assert closed.rcvd.code in PROTOCOL_CLOSE_CODES, closed.rcvd


def test_a_subscription_completed_at_once_leaves_no_listener_behind(server, wait_until):
    import gc

    def unsubscribed() -> bool:
        gc.collect()
        return graphql_api.posts_bus.listening() == before

    gc.collect()
    before = graphql_api.posts_bus.listening()
    with open_session(server) as ws:
        for n in range(5):
            send(ws, {"id": str(n), "type": "subscribe",
                      "payload": {"query": "subscription { postAdded { id } }"}})
            send(ws, {"id": str(n), "type": "complete"})
        send(ws, {"type": "ping"})
        assert receive(ws) == {"type": "pong"}
        # A cancelled subscription's task ends on the loop's next turns, maybe after the pong.
        assert wait_until(unsubscribed, timeout=5), "completed subscriptions still listening"


def open_sockets() -> int:
    count = 0
    for fd in os.listdir(f"/proc/{os.getpid()}/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/{os.getpid()}/fd/{fd}").startswith("socket:")
    return count


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts sockets in /proc")
def test_twenty_starts_with_open_subscriptions_leave_nothing_behind():
    graphql_api.start(name="graphql-leaks").stop()
    threads, sockets = threading.active_count(), open_sockets()
    for _ in range(20):
        handle = graphql_api.start(name="graphql-leaks", fresh_data=False)
        with open_session(handle) as ws:
            subscribe(ws, "s", "subscription { postAdded { id } }")
    handle.stop()
    time.sleep(0.2)  # request threads finish after their response is sent
    assert threading.active_count() <= threads
    assert open_sockets() <= sockets
    assert graphql_api.posts_bus.listening() == 0


# --- many subscribers and queries at once: each operation its own database session ----------

NESTED = ("id title content createdAt author { id name email orders(limit: 2) { item status } }"
          " comments { id }")
STABLE_QUERY = ('{ user(id: "104") { name orders(limit: 3) { item } }'
                ' post(id: "1") { title author { name } comments { content author { name } } } }')
SUBSCRIBERS, POSTS, QUERY_CLIENTS, QUERIES_EACH = 10, 5, 3, 15


def run_over_ws(ws, id, query, variables=None):
    """One query or mutation over an open session: its ``next`` payload (then ``complete``)."""
    send(ws, {"id": id, "type": "subscribe",
              "payload": {"query": query, "variables": variables or {}}})
    answer = receive(ws)
    assert receive(ws) == {"id": id, "type": "complete"}
    return answer["payload"]


def test_ten_subscribers_with_nested_fields_and_concurrent_queries_all_get_full_data(server):
    expected_query = requests.post(f"{server.url}/graphql", json={"query": STABLE_QUERY},
                                   timeout=5).json()
    assert "errors" not in expected_query
    answers, failures = [], []

    def query_client(n):
        try:
            with open_session(server) as ws:
                for i in range(QUERIES_EACH):
                    answers.append(run_over_ws(ws, f"q{n}-{i}", STABLE_QUERY))
        except Exception as error:  # reported below, with the answers
            failures.append(repr(error))

    with contextlib.ExitStack() as stack:
        subscribers = [stack.enter_context(open_session(server)) for _ in range(SUBSCRIBERS)]
        for ws in subscribers:
            subscribe(ws, "sub", f"subscription {{ postAdded {{ {NESTED} }} }}")
        writer = stack.enter_context(open_session(server))
        clients = [threading.Thread(target=query_client, args=(n,)) for n in range(QUERY_CLIENTS)]
        for client in clients:
            client.start()
        created = [run_over_ws(writer, f"m{n}", CREATE_POST, {"a": str(102 + n % 3),
                                                              "t": f"burst {n}"})
                   for n in range(POSTS)]
        received = [[receive(ws) for _ in range(POSTS)] for ws in subscribers]
        for client in clients:
            client.join(timeout=30)
    assert not failures, failures
    wrong = [answer for answer in answers if answer != expected_query]
    assert len(answers) == QUERY_CLIENTS * QUERIES_EACH
    assert not wrong, f"{len(wrong)} of {len(answers)} queries over WebSocket: {wrong[0]}"
    assert all("errors" not in payload for payload in created), created
    expected_events = []
    for payload in created:
        post_id = payload["data"]["createPost"]["id"]
        body = requests.post(f"{server.url}/graphql", timeout=5, json={
            "query": f'{{ post(id: "{post_id}") {{ {NESTED} }} }}'}).json()
        expected_events.append({"id": "sub", "type": "next",
                                "payload": {"data": {"postAdded": body["data"]["post"]}}})
    wrong = [events for events in received if events != expected_events]
    assert not wrong, f"{len(wrong)} of {SUBSCRIBERS} subscribers got other events: {wrong[0]}"
