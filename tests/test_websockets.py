"""The WebSockets lab's chat server: handshake, protocol, bad input, history, load."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect as async_connect
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from websockets.sync.client import connect

from labsupport import chat, database

TIMEOUT = 5


@pytest.fixture(autouse=True, scope="module")
def sample_data():
    database.reset()


@pytest.fixture(scope="module")
def server():
    with chat.start(name="websockets-test", fresh_data=False) as handle:
        yield handle


def open_as(server, user_id, **options):
    """A sync client connected as ``user_id``, past its ``connected`` greeting."""
    ws = connect(f"{server.ws_url}?token={server.token_for(user_id)}", open_timeout=TIMEOUT,
                 legacy=True, **options)
    greeting = receive(ws)
    assert greeting["type"] == "connected", greeting
    return ws


def receive(ws):
    return json.loads(ws.recv(TIMEOUT))


def send(ws, **event):
    ws.send(json.dumps(event))


def joined(server, user_id, room_id):
    ws = open_as(server, user_id)
    send(ws, type="join_chat", room_id=room_id)
    assert receive(ws)["type"] == "user_joined"
    return ws


def history(server, room_id, token_user=101, **params):
    params.setdefault("token", server.token_for(token_user))
    return requests.get(f"{server.url}/api/chat/{room_id}/messages", params=params,
                        timeout=TIMEOUT)


# --- the handshake ------------------------------------------------------------

@pytest.mark.parametrize("query", ["", "?token=", "?token=101.0000", "?token=abc",
                                   "?token=999.x", "?token=%C2%B2.x"])
def test_handshake_without_a_valid_token_is_401(server, query):
    with pytest.raises(InvalidStatus) as refused:
        connect(server.ws_url + query, open_timeout=TIMEOUT)
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body)["error"]["code"] == "UNAUTHORIZED"


def test_token_of_a_user_that_does_not_exist_is_401(server):
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{server.ws_url}?token={server.token_for(999)}", open_timeout=TIMEOUT)
    assert refused.value.response.status_code == 401


def test_bearer_header_is_accepted(server):
    headers = {"Authorization": f"Bearer {server.token_for(103)}"}
    with connect(server.ws_url, additional_headers=headers, open_timeout=TIMEOUT) as ws:
        assert receive(ws) == {"type": "connected", "message": "Welcome Grace Hopper!",
                               "user_id": 103, "username": "Grace Hopper"}


def test_foreign_origin_is_403_and_own_origins_pass(server):
    with pytest.raises(InvalidStatus) as refused:
        open_as(server, 101, origin="http://evil.example")
    assert refused.value.response.status_code == 403
    for host in ("127.0.0.1", "localhost"):
        open_as(server, 101, origin=f"http://{host}:{server.port}").close()


def handshake_status(server, origin, host):
    """The status line a raw opening handshake with these Origin and Host headers gets."""
    request = (f"GET /ws?token={server.token_for(101)} HTTP/1.1\r\nHost: {host}\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               f"Origin: {origin}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(request.encode())
        return sock.recv(1024).split(b"\r\n", 1)[0].decode()


def test_a_page_proxied_by_jupyter_may_connect_and_a_foreign_one_may_not(server):
    """Through jupyter-server-proxy the page's Origin is the notebook server's, and the
    proxy passes on that Host: same origin, as Jupyter checks its own sockets."""
    assert handshake_status(server, "https://hub.example", "hub.example").endswith(
        "101 Switching Protocols")
    assert handshake_status(server, "http://127.0.0.1:8888", "127.0.0.1:8888").endswith(
        "101 Switching Protocols")
    assert handshake_status(server, "http://evil.example", "hub.example").endswith(
        "403 Forbidden")
    assert handshake_status(server, "http://hub.example.evil.example", "hub.example").endswith(
        "403 Forbidden")


def test_tokens_do_not_survive_a_restart():
    first = chat.start(name="websockets-restart")
    token = first.token_for(101)
    second = chat.start(name="websockets-restart")
    try:
        assert not first.running
        with pytest.raises(InvalidStatus) as refused:
            connect(f"{second.ws_url}?token={token}", open_timeout=TIMEOUT)
        assert refused.value.response.status_code == 401
    finally:
        second.stop()


# --- the message protocol -------------------------------------------------------

def test_join_message_typing_leave(server):
    ada = joined(server, 101, "protocol")
    alan = joined(server, 102, "protocol")
    assert receive(ada) == {"type": "user_joined", "username": "Alan Turing",
                            "message": "Alan Turing joined the room", "room_id": "protocol"}
    send(alan, type="typing", room_id="protocol", is_typing=True)
    assert receive(ada) == {"type": "user_typing", "username": "Alan Turing",
                            "is_typing": True, "room_id": "protocol"}
    send(ada, type="send_message", room_id="protocol", message="  Hello everyone!  ")
    to_ada, to_alan = receive(ada), receive(alan)
    assert to_ada == to_alan, "the sender and the room get the same event"
    assert to_alan["type"] == "new_message" and to_alan["message"] == "Hello everyone!"
    assert to_alan["username"] == "Ada Lovelace" and to_alan["room_id"] == "protocol"
    send(alan, type="leave_chat", room_id="protocol")
    assert receive(alan)["type"] == "user_left"
    assert receive(ada)["message"] == "Alan Turing left the room"
    send(alan, type="send_message", room_id="protocol", message="still here?")
    assert "join room 'protocol' first" in receive(alan)["message"]
    ada.close()
    alan.close()


def test_typing_never_goes_back_to_the_sender(server):
    ada = joined(server, 101, "typing")
    send(ada, type="typing", room_id="typing", is_typing=True)
    send(ada, type="send_message", room_id="typing", message="next")
    assert receive(ada)["type"] == "new_message", "the sender got its own typing event"
    ada.close()


def test_disconnect_leaves_every_room(server):
    ada = joined(server, 101, "one")
    send(ada, type="join_chat", room_id="two")
    receive(ada)
    alan = joined(server, 102, "one")
    send(alan, type="join_chat", room_id="two")
    receive(alan)
    receive(ada), receive(ada)  # Alan joined one, two
    alan.close()
    left = {receive(ada)["room_id"], receive(ada)["room_id"]}
    assert left == {"one", "two"}
    assert all(c.user_id != 102 for members in server.app.rooms.values() for c in members)
    ada.close()


def test_rooms_are_separate(server):
    ada = joined(server, 101, "red")
    alan = joined(server, 102, "blue")
    send(alan, type="send_message", room_id="blue", message="blue only")
    assert receive(alan)["message"] == "blue only"
    send(ada, type="send_message", room_id="red", message="red only")
    assert receive(ada)["message"] == "red only", "a message of another room arrived"
    ada.close()
    alan.close()


BAD_FRAMES = [
    ("not json", "frames must be JSON objects"),
    ("[1, 2]", "frames must be JSON objects, not list"),
    ('{"room_id": "general"}', 'needs a "type" string'),
    ('{"type": 7}', 'needs a "type" string'),
    ('{"type": "shout"}', "unknown message type 'shout'"),
    ('{"type": "join_chat"}', "room_id must be"),
    ('{"type": "join_chat", "room_id": "../etc"}', "room_id must be"),
    ('{"type": "join_chat", "room_id": "lobby"}', "already in room 'lobby'"),
    ('{"type": "send_message", "room_id": "lobby"}', "message must be a non-empty string"),
    ('{"type": "send_message", "room_id": "lobby", "message": "   "}', "non-empty"),
    ('{"type": "send_message", "room_id": "lobby", "message": 5}', "non-empty string"),
    (json.dumps({"type": "send_message", "room_id": "lobby", "message": "x" * 2001}),
     "the limit is 2000"),
    ('{"type": "send_message", "room_id": "elsewhere", "message": "hi"}',
     "join room 'elsewhere' first"),
    ('{"type": "typing", "room_id": "lobby", "is_typing": "yes"}', "is_typing must be"),
    ('{"type": "leave_chat", "room_id": "nowhere"}', "join room 'nowhere' first"),
]


@pytest.mark.parametrize("frame, expected", BAD_FRAMES, ids=[e for _, e in BAD_FRAMES])
def test_bad_frames_get_an_error_and_the_connection_stays(server, frame, expected):
    ws = joined(server, 101, "lobby")
    ws.send(frame)
    reply = receive(ws)
    assert reply["type"] == "error" and expected in reply["message"], reply
    send(ws, type="send_message", room_id="lobby", message="still fine")
    assert receive(ws)["message"] == "still fine"
    ws.close()


def test_nothing_is_stored_from_a_refused_message(server):
    before = history(server, "lobby", per_page=1).json()["total"]
    ws = joined(server, 101, "lobby")
    for frame, _ in BAD_FRAMES:
        ws.send(frame)
        assert receive(ws)["type"] == "error"
    ws.close()
    assert history(server, "lobby", per_page=1).json()["total"] == before


def test_binary_frame_closes_with_1003(server):
    ws = open_as(server, 101)
    ws.send(b'{"type": "join_chat", "room_id": "general"}')
    with pytest.raises(ConnectionClosedError) as closed:
        ws.recv(TIMEOUT)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1003


def test_oversized_frame_closes_with_1009_and_others_carry_on(server):
    other = joined(server, 102, "big")
    ws = open_as(server, 101)
    ws.send(json.dumps({"type": "send_message", "room_id": "big",
                        "message": "x" * chat.MAX_FRAME_BYTES}))
    with pytest.raises(ConnectionClosedError) as closed:
        ws.recv(TIMEOUT)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    send(other, type="send_message", room_id="big", message="unaffected")
    assert receive(other)["message"] == "unaffected"
    other.close()


def test_too_many_mistakes_in_a_row_close_with_1008(server):
    ws = open_as(server, 101)
    for _ in range(chat.MAX_ERRORS):
        ws.send("?")
    replies = [receive(ws) for _ in range(chat.MAX_ERRORS)]
    assert all(r["type"] == "error" for r in replies)
    with pytest.raises(ConnectionClosedError) as closed:
        ws.recv(TIMEOUT)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008


def test_a_bug_in_a_handler_closes_with_1011_and_is_logged():
    def broken(chat_server, client, data):
        return data["missing"]

    with chat.start(name="websockets-broken", fresh_data=False,
                    handlers={"broken": broken}) as server:
        ws = open_as(server, 101)
        send(ws, type="broken")
        with pytest.raises(ConnectionClosedError) as closed:
            ws.recv(TIMEOUT)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1011
        again = open_as(server, 102)  # the server still serves
        again.close()
        assert any("KeyError" in line for line in server.logs(50)), server.logs(50)
        assert closed.value.rcvd.reason == "the server failed; see its log"


def test_stopping_the_server_closes_with_1001():
    server = chat.start(name="websockets-stop", fresh_data=False)
    ws = open_as(server, 101)
    server.stop()
    with pytest.raises(ConnectionClosedOK) as closed:
        ws.recv(TIMEOUT)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001


# --- the history endpoint -------------------------------------------------------

def test_history_pages_newest_first_each_page_in_order(server):
    ws = joined(server, 104, "paged")
    for n in range(7):
        send(ws, type="send_message", room_id="paged", message=f"m{n}")
        receive(ws)
    ws.close()
    pages = [history(server, "paged", page=p, per_page=3).json() for p in (1, 2, 3, 4)]
    assert [[m["message"] for m in p["messages"]] for p in pages] == [
        ["m4", "m5", "m6"], ["m1", "m2", "m3"], ["m0"], []]
    assert [(p["has_prev"], p["has_next"], p["pages"]) for p in pages[:3]] == [
        (False, True, 3), (True, True, 3), (True, False, 3)]
    assert pages[0]["messages"][0]["username"] == "Edsger Dijkstra"


@pytest.mark.parametrize("params, status", [
    ({"per_page": "0"}, 400), ({"per_page": "101"}, 400), ({"page": "-1"}, 400),
    ({"page": "x"}, 400), ({"page": "²"}, 400), ({"token": ""}, 401),
    ({"token": "101.bad"}, 401), ({"token": "².bad"}, 401),
])
def test_history_refuses_bad_parameters(server, params, status):
    response = history(server, "general", **params)
    assert response.status_code == status
    assert response.json()["error"]["code"] in ("INVALID_PARAMETER", "UNAUTHORIZED")


def test_unknown_paths_and_bad_rooms_are_404(server):
    token = server.token_for(101)
    for path in ("/nope", "/api/chat/a%20b/messages", "/api/chat/x/y"):
        response = requests.get(f"{server.url}{path}?token={token}", timeout=TIMEOUT)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "NOT_FOUND"


def test_the_page_and_its_script_are_served(server):
    page = requests.get(f"{server.url}/", timeout=TIMEOUT)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "connect-src 'self'" in page.headers["Content-Security-Policy"]
    script = requests.get(f"{server.url}/chat.js", timeout=TIMEOUT)
    assert script.status_code == 200 and "class ChatClient" in script.text


# --- fuzzing --------------------------------------------------------------------

numbers = st.sampled_from(["²", "٣", "-1", "0", "1e3", " 7", "10000000000"]) | st.text(max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8),
                                                                      children, max_size=3),
    max_leaves=8,
)
frames = st.one_of(
    st.text(max_size=60),
    json_values.map(json.dumps),
    st.fixed_dictionaries(
        {"type": st.sampled_from(list(chat.HANDLERS) + ["", "nope"])},
        optional={"room_id": json_values | st.sampled_from(["fuzz", "other"]),
                  "message": json_values, "is_typing": json_values},
    ).map(json.dumps),
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=frames)
def test_fuzzed_frames_never_break_the_server(server, frame):
    with open_as(server, 105) as ws:
        ws.send(frame)
        reply = receive(ws)
        assert reply["type"] in ("error", "user_joined", "new_message", "user_left"), reply
        if reply["type"] == "error":
            assert reply["message"]
        send(ws, type="send_message", room_id="no-such-joined-room", message="probe")
        assert receive(ws)["type"] == "error", "the connection stopped answering"


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(page=numbers, per_page=numbers)
def test_fuzzed_history_parameters_are_200_or_400(server, page, per_page):
    response = history(server, "general", page=page, per_page=per_page)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()["error"]["code"] == "INVALID_PARAMETER"


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.text(max_size=40) | st.builds("{}.{}".format, numbers, st.text(max_size=33)))
def test_fuzzed_tokens_are_401_never_500(server, token):
    response = history(server, "general", token=token)
    assert response.status_code == 401, response.text
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{server.ws_url}?{urlencode({'token': token})}", open_timeout=TIMEOUT)
    assert refused.value.response.status_code == 401


# --- load -----------------------------------------------------------------------

CLIENTS, ROOMS, MESSAGES_EACH = 20, 4, 50


async def member(server, user_id, room_id, everyone_joined, expected_count):
    uri = f"{server.ws_url}?token={server.token_for(user_id)}"
    async with async_connect(uri, open_timeout=TIMEOUT) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "join_chat", "room_id": room_id}))
        await everyone_joined.wait()
        received: list[dict[str, Any]] = []

        async def read():
            while len(received) < expected_count:
                event = json.loads(await ws.recv())
                if event["type"] == "new_message":
                    received.append(event)

        reader = asyncio.create_task(read())
        for n in range(MESSAGES_EACH):
            await ws.send(json.dumps({"type": "send_message", "room_id": room_id,
                                      "message": f"{user_id}:{n}"}))
            if n % 5 == 0:  # let the other clients interleave
                await asyncio.sleep(0)
        await asyncio.wait_for(reader, 30)
        return received


async def chat_load(server):
    rooms = {101 + i: f"load-{i % ROOMS}" for i in range(CLIENTS)}
    per_room = CLIENTS // ROOMS
    everyone_joined = asyncio.Event()

    async def wait_for_joins():
        while sum(len(server.app.members(r)) for r in set(rooms.values())) < CLIENTS:
            await asyncio.sleep(0.01)
        everyone_joined.set()

    watcher = asyncio.create_task(wait_for_joins())
    results = await asyncio.gather(*(
        member(server, user, room, everyone_joined, per_room * MESSAGES_EACH)
        for user, room in rooms.items()))
    await watcher
    return rooms, dict(zip(rooms, results, strict=True))


@pytest.mark.slow
def test_twenty_clients_each_get_every_message_of_their_room_once_in_order(server):
    rooms, received = asyncio.run(asyncio.wait_for(chat_load(server), 60))
    for room_id in sorted(set(rooms.values())):
        pages = history(server, room_id, per_page=100)
        stored = []
        for page in range(pages.json()["pages"], 0, -1):
            stored += history(server, room_id, per_page=100, page=page).json()["messages"]
        assert len(stored) == (CLIENTS // ROOMS) * MESSAGES_EACH
        assert [m["id"] for m in stored] == sorted(m["id"] for m in stored)
        for user, room in rooms.items():
            if room != room_id:
                continue
            got = received[user]
            assert [m["id"] for m in got] == [m["id"] for m in stored], \
                f"user {user} in {room_id} did not get every message once, in order"
    for user, got in received.items():
        own = [m["message"] for m in got if m["user_id"] == user]
        assert own == [f"{user}:{n}" for n in range(MESSAGES_EACH)]


@pytest.mark.parametrize("method", ["post", "delete", "put"])
def test_other_methods_are_405(server, method):
    response = getattr(requests, method)(
        f"{server.url}/api/chat/general/messages?token={server.token_for(101)}", timeout=TIMEOUT)
    assert response.status_code == 405 and response.headers["Allow"] == "GET"
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


def test_history_from_a_foreign_origin_is_403(server):
    response = requests.get(f"{server.url}/api/chat/general/messages",
                            params={"token": server.token_for(101)},
                            headers={"Origin": "http://evil.example"}, timeout=TIMEOUT)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"
