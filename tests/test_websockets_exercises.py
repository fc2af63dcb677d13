"""Every exercise of 04-websockets: the reference passes, plausible wrong answers fail."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from exercise_helpers import assert_fails, assert_fails_for_some_seed, assert_passes
from websockets.sync.client import connect

from labsupport import chat, database
from labsupport.labs.websocket_chat.exercises import catch_up, send_and_confirm
from labsupport.labs.websocket_chat.server import ChatError, authorize, joined_room


@pytest.fixture(autouse=True, scope="module")
def sample_data():
    database.reset()


# --- websockets.socketio-by-hand ----------------------------------------------

def test_socketio_by_hand_reference_passes():
    assert_passes("websockets.socketio-by-hand")


def test_socketio_by_hand_stub_is_not_attempted():
    assert_fails("websockets.socketio-by-hand", lambda ws, token: None, "not solved yet")


def test_socketio_by_hand_without_a_connect_packet_fails():
    def no_connect(ws, token):
        ws.recv(2)
        return json.loads(ws.recv(2)[2:])[1]

    assert_fails("websockets.socketio-by-hand", no_connect,
                 "the server never got a Socket.IO CONNECT")


def test_socketio_by_hand_with_the_bare_token_as_auth_fails():
    def bare_token(ws, token):
        ws.recv(2)
        ws.send("40" + json.dumps(token))
        while True:
            frame = ws.recv(2)
            if frame.startswith("44"):
                raise PermissionError(frame)
            if frame.startswith("42"):
                return json.loads(frame[2:])[1]

    assert_fails("websockets.socketio-by-hand", bare_token, "the auth object is {\"token\"")


def test_socketio_by_hand_waiting_for_the_acknowledgement_first_fails():
    def ack_first(ws, token):
        ws.recv(2)
        ws.send("40" + json.dumps({"token": token}))
        while not ws.recv(2).startswith("40"):
            pass
        return json.loads(ws.recv(2)[2:])[1]

    assert_fails("websockets.socketio-by-hand", ack_first,
                 "the greeting can come before the CONNECT's acknowledgement")


def test_socketio_by_hand_returning_the_whole_event_fails():
    def whole_event(ws, token):
        ws.recv(2)
        ws.send("40" + json.dumps({"token": token}))
        return json.loads(ws.recv(2)[2:])

    assert_fails("websockets.socketio-by-hand", whole_event, "got the whole array")


def test_socketio_by_hand_taking_any_event_for_the_greeting_fails():
    """Too trusting: the first EVENT (42) taken for the greeting, whatever its name."""
    def any_event(ws, token):
        ws.recv(2)
        ws.send("40" + json.dumps({"token": token}))
        while True:
            frame = ws.recv(2)
            if frame.startswith("44"):
                raise PermissionError(frame)
            if frame.startswith("42"):
                return json.loads(frame[2:])[1]

    assert_fails("websockets.socketio-by-hand", any_event, "that is the data of another event")


def test_socketio_by_hand_returning_the_connect_error_fails():
    def no_connect_error(ws, token):
        ws.recv(2)
        ws.send("40" + json.dumps({"token": token}))
        while True:
            frame = ws.recv(2)
            packet = json.loads(frame[2:]) if frame[:2] in ("42", "44") else None
            if frame.startswith("44"):
                return packet
            if isinstance(packet, list) and packet[0] == "connected":
                return packet[1]

    assert_fails("websockets.socketio-by-hand", no_connect_error,
                 "answers 44 (CONNECT_ERROR): raise PermissionError")


# --- websockets.first-message -------------------------------------------------

def test_first_message_reference_passes():
    assert_passes("websockets.first-message")


def test_first_message_stub_is_not_attempted():
    assert_fails("websockets.first-message", lambda ws_url, token, room_id, text: None,
                 "not solved yet")


def test_first_message_returning_the_greeting_fails():
    def first_frame(ws_url, token, room_id, text):
        with connect(f"{ws_url}?token={token}", open_timeout=5) as ws:
            return json.loads(ws.recv(5))

    assert_fails("websockets.first-message", first_frame,
                 "expected the new_message event, got a 'connected' event")


def test_first_message_without_joining_fails():
    def no_join(ws_url, token, room_id, text):
        with connect(f"{ws_url}?token={token}", open_timeout=5) as ws:
            ws.recv(5)
            ws.send(json.dumps({"type": "send_message", "room_id": room_id, "message": text}))
            return json.loads(ws.recv(5))

    assert_fails("websockets.first-message", no_join, "got a 'error' event")


def test_first_message_without_token_fails():
    def no_token(ws_url, token, room_id, text):
        with connect(ws_url, open_timeout=5) as ws:
            return json.loads(ws.recv(5))

    assert_fails("websockets.first-message", no_token, "raised InvalidStatus")


# --- websockets.typing --------------------------------------------------------

def test_typing_reference_passes():
    assert_passes("websockets.typing")


def test_typing_stub_is_not_attempted():
    def on_typing(chat, client, data):
        ...

    assert_fails("websockets.typing", on_typing, "not solved yet")


def test_typing_back_to_the_sender_fails():
    def include_self(chat, client, data):
        room_id = joined_room(client, data)
        chat.broadcast(room_id, {"type": "user_typing", "username": client.username,
                                 "is_typing": data.get("is_typing"), "room_id": room_id})

    assert_fails("websockets.typing", include_self, "the sender got its own user_typing")


def test_typing_to_everyone_connected_fails():
    def everyone(chat, client, data):
        room_id = data.get("room_id")
        event = {"type": "user_typing", "username": client.username,
                 "is_typing": data.get("is_typing"), "room_id": room_id}
        for other in chat.clients:
            if other is not client:
                chat.send(other, event)

    assert_fails("websockets.typing", everyone, "Grace, in another room, got the user_typing")


def test_typing_without_membership_check_fails():
    def any_room(chat, client, data):
        room_id = data.get("room_id")
        chat.broadcast(room_id, {"type": "user_typing", "username": client.username,
                                 "is_typing": bool(data.get("is_typing")), "room_id": room_id},
                       exclude=client)

    assert_fails("websockets.typing", any_room, "has not joined should get an error")


def test_typing_without_type_check_fails():
    def no_bool_check(chat, client, data):
        room_id = joined_room(client, data)
        chat.broadcast(room_id, {"type": "user_typing", "username": client.username,
                                 "is_typing": data.get("is_typing"), "room_id": room_id},
                       exclude=client)

    assert_fails("websockets.typing", no_bool_check, "(not a bool)")


def test_typing_truthiness_for_a_bool_fails():
    """Too loose: isinstance(x, int) or a truthiness test takes 1, 0 and "false" for bools."""
    def int_is_fine(chat, client, data):
        room_id = joined_room(client, data)
        if not isinstance(data.get("is_typing"), int | str):
            raise ChatError("is_typing must be a bool")
        chat.broadcast(room_id, {"type": "user_typing", "username": client.username,
                                 "is_typing": bool(data["is_typing"]), "room_id": room_id},
                       exclude=client)

    assert_fails("websockets.typing", int_is_fine, "(not a bool)")


def test_typing_equal_to_true_or_false_fails():
    """Too loose: `in (True, False)` compares by value, and 1 == True, 0 == False."""
    def by_value(chat, client, data):
        room_id = joined_room(client, data)
        if data.get("is_typing") not in (True, False):
            raise ChatError("is_typing must be a bool")
        chat.broadcast(room_id, {"type": "user_typing", "username": client.username,
                                 "is_typing": data["is_typing"], "room_id": room_id},
                       exclude=client)

    assert_fails("websockets.typing", by_value, "(not a bool), a number")


@pytest.mark.parametrize("id, name, imports", [
    ("websockets.typing", "on_typing", {"ChatError": ChatError, "joined_room": joined_room}),
    ("websockets.handshake", "authorize", {"parse_qs": parse_qs, "urlsplit": urlsplit}),
    ("websockets.private-message", "on_private_message", {"ChatError": ChatError}),
])
def test_reference_sources_run_with_the_notebook_imports(id, name, imports):
    from labsupport.engine import get

    namespace = dict(imports)
    exec(get(id).solution_source, namespace)
    assert_passes(id, namespace[name])


# --- websockets.private-message -----------------------------------------------

def test_private_message_reference_passes():
    assert_passes("websockets.private-message")


def test_private_message_stub_is_not_attempted():
    def on_private_message(chat, client, data):
        ...

    assert_fails("websockets.private-message", on_private_message, "not solved yet")


def test_private_message_to_both_lists_fails():
    """The recipient's connections, then the sender's: a message to oneself arrives twice."""
    def both_lists(chat, client, data):
        message = data.get("message")
        if not isinstance(message, str) or not message.strip():
            raise ChatError("message must be a non-empty string")
        targets = [c for c in chat.clients if c.user_id == data.get("to_user_id")]
        if not targets:
            raise ChatError("that user is not connected")
        event = {"type": "private_message", "from_user_id": client.user_id,
                 "username": client.username, "to_user_id": data.get("to_user_id"),
                 "message": message.strip()}
        for other in targets + [c for c in chat.clients if c.user_id == client.user_id]:
            chat.send(other, event)

    assert_fails("websockets.private-message", both_lists, "sent a private message to themself")


def test_private_message_to_everyone_fails():
    def everyone(chat, client, data):
        event = {"type": "private_message", "from_user_id": client.user_id,
                 "username": client.username, "to_user_id": data.get("to_user_id"),
                 "message": data.get("message")}
        for other in chat.clients:
            chat.send(other, event)

    assert_fails("websockets.private-message", everyone, "got a private message between users")


def test_private_message_to_one_tab_fails():
    def first_connection_only(chat, client, data):
        message = data.get("message")
        if not isinstance(message, str) or not message.strip():
            raise ChatError("message must be a non-empty string")
        targets = [c for c in chat.clients if c.user_id == data.get("to_user_id")]
        if not targets:
            raise ChatError("not connected")
        event = {"type": "private_message", "from_user_id": client.user_id,
                 "username": client.username, "to_user_id": data["to_user_id"],
                 "message": message.strip()}
        chat.send(targets[0], event)
        chat.send(client, event)

    assert_fails("websockets.private-message", first_connection_only, "the sender's other tab")


def test_private_message_to_nobody_without_error_fails():
    def silent(chat, client, data):
        event = {"type": "private_message", "from_user_id": client.user_id,
                 "username": client.username, "to_user_id": data.get("to_user_id"),
                 "message": (data.get("message") or "").strip()}
        for other in chat.clients:
            if other.user_id in (client.user_id, data.get("to_user_id")):
                chat.send(other, event)

    assert_fails("websockets.private-message", silent, "who is not connected, should get one "
                                                       "error event")


# --- websockets.handshake -----------------------------------------------------

def test_handshake_reference_passes():
    assert_passes("websockets.handshake")


def test_handshake_stub_is_not_attempted():
    assert_fails("websockets.handshake", lambda request, verify_token, allowed_origins: None,
                 "not solved yet")


def test_handshake_without_origin_check_fails():
    def token_only(request, verify_token, allowed_origins):
        token = parse_qs(urlsplit(request.path).query).get("token", [None])[0]
        if token is None:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        user_id = verify_token(token) if token else None
        return (101, user_id) if user_id else (401, None)

    assert_fails("websockets.handshake", token_only, "http://evil.example opened a socket")


def test_handshake_trusting_the_user_id_fails():
    def trusts_the_prefix(request, verify_token, allowed_origins):
        token = parse_qs(urlsplit(request.path).query).get("token", [""])[0]
        if not token:
            token = request.headers.get("Authorization", "").partition(" ")[2]
        prefix = token.partition(".")[0]
        return (101, int(prefix)) if prefix.isdigit() else (401, None)

    assert_fails("websockets.handshake", trusts_the_prefix, "a forged token")


def test_handshake_refusing_scripts_without_origin_fails():
    def origin_required(request, verify_token, allowed_origins):
        if request.headers.get("Origin") not in allowed_origins:
            return 403, None
        return authorize(request, verify_token, allowed_origins)

    assert_fails("websockets.handshake", origin_required, "should open the socket as user")


def test_handshake_query_only_fails():
    def query_only(request, verify_token, allowed_origins):
        origin = request.headers.get("Origin")
        if origin is not None and origin not in allowed_origins:
            return 403, None
        token = parse_qs(urlsplit(request.path).query).get("token", [None])[0]
        user_id = verify_token(token) if token else None
        return (101, user_id) if user_id else (401, None)

    assert_fails("websockets.handshake", query_only, "'Authorization: Bearer ...'")


def _token_of(request):
    token = parse_qs(urlsplit(request.path).query).get("token", [None])[0]
    return token or request.headers.get("Authorization", "").partition(" ")[2] or None


def test_handshake_origin_by_prefix_fails():
    """Too loose a comparison: a prefix lets http://127.0.0.1.evil.example in."""
    def by_prefix(request, verify_token, allowed_origins):
        origin = request.headers.get("Origin")
        if origin is not None and not origin.startswith(("http://127.0.0.1", "http://localhost")):
            return 403, None
        token = _token_of(request)
        user_id = verify_token(token) if token else None
        return (101, user_id) if user_id else (401, None)

    assert_fails("websockets.handshake", by_prefix, "compared whole against the allowed set")


def test_handshake_origin_as_a_substring_of_the_allowed_fails():
    """Too loose: `origin in " ".join(allowed)` lets a truncated port (or "null") through."""
    def substring(request, verify_token, allowed_origins):
        origin = request.headers.get("Origin")
        if origin is not None and origin != "null" and origin not in " ".join(allowed_origins):
            return 403, None
        token = _token_of(request)
        user_id = verify_token(token) if token else None
        return (101, user_id) if user_id else (401, None)

    assert_fails("websockets.handshake", substring, "never by prefix, suffix or substring")


def test_handshake_fitted_to_the_notebooks_user_fails():
    """Sample-only: the user the notebook shows (104) is not the one the check draws."""
    def user_104(request, verify_token, allowed_origins):
        status, user_id = authorize(request, verify_token, allowed_origins)
        return (status, 104) if status == 101 else (status, user_id)

    assert_fails_for_some_seed("websockets.handshake", user_104, "should open the socket as user")


def test_first_message_to_the_notebooks_room_fails():
    """Sample-only: the room of the notebook's example, not the one given."""
    def fixed_room(ws_url, token, room_id, text):
        return send_and_confirm(ws_url, token, "exercise-1", text)

    assert_fails("websockets.first-message", fixed_room, "send to the room_id you were given")


# --- websockets.catch-up ------------------------------------------------------

def test_catch_up_reference_passes():
    assert_passes("websockets.catch-up")


def test_catch_up_stub_is_not_attempted():
    assert_fails("websockets.catch-up", lambda base_url, token, room_id, after_id: None,
                 "not solved yet")


def test_catch_up_first_page_only_fails():
    def first_page(base_url, token, room_id, after_id):
        body = requests.get(f"{base_url}/api/chat/{room_id}/messages",
                            params={"token": token}, timeout=5).json()
        return [m for m in body["messages"] if m["id"] > after_id]

    assert_fails("websockets.catch-up", first_page, "got 50 (only the newest page?)")


def test_catch_up_pages_in_the_wrong_order_fails():
    def appends_older_pages(base_url, token, room_id, after_id):
        missed, page = [], 1
        while True:
            body = requests.get(f"{base_url}/api/chat/{room_id}/messages",
                                params={"token": token, "page": page, "per_page": 100},
                                timeout=5).json()
            newer = [m for m in body["messages"] if m["id"] > after_id]
            missed += newer
            if len(newer) < len(body["messages"]) or not body["has_next"]:
                return missed
            page += 1

    assert_fails("websockets.catch-up", appends_older_pages, "return them oldest first")


def test_catch_up_including_the_last_seen_fails():
    def inclusive(base_url, token, room_id, after_id):
        return [m for m in catch_up(base_url, token, room_id, after_id - 1)]

    assert_fails("websockets.catch-up", inclusive, "was already seen")


def test_catch_up_three_pages_at_most_fails():
    """Sample-only: the notebook's 250 messages fit in three pages of 100; drawn counts do not.
    It reads three pages even when the first holds every message missed, which the check
    sees first, on every seed."""
    def three_pages(base_url, token, room_id, after_id):
        missed: list[dict[str, Any]] = []
        for page in (1, 2, 3):
            body = requests.get(f"{base_url}/api/chat/{room_id}/messages",
                                params={"token": token, "page": page, "per_page": 100},
                                timeout=5).json()
            missed = [m for m in body["messages"] if m["id"] > after_id] + missed
        return missed

    assert_fails("websockets.catch-up", three_pages, "but you also asked for page 2")


def test_catch_up_taking_an_error_for_nothing_missed_fails():
    """Happy path only: a failed request (401, 5xx) read as an empty history."""
    def quiet_on_error(base_url, token, room_id, after_id):
        missed: list[dict[str, Any]] = []
        page = 1
        while True:
            response = requests.get(f"{base_url}/api/chat/{room_id}/messages", timeout=5,
                                    params={"token": token, "page": page, "per_page": 100})
            if not response.ok:
                return missed
            body = response.json()
            newer = [m for m in body["messages"] if m["id"] > after_id]
            missed = newer + missed
            if len(newer) < len(body["messages"]) or not body["has_next"]:
                return missed
            page += 1

    assert_fails("websockets.catch-up", quiet_on_error, "an error is not 'nothing missed'")


def test_catch_up_reading_the_whole_history_fails():
    """Every page read on every reconnect, then filtered: right ids, but the whole history."""
    def whole_history(base_url, token, room_id, after_id):
        messages: list[dict[str, Any]] = []
        page = 1
        while True:
            response = requests.get(f"{base_url}/api/chat/{room_id}/messages", timeout=5,
                                    params={"token": token, "page": page, "per_page": 100})
            response.raise_for_status()
            body = response.json()
            messages = body["messages"] + messages
            if not body["has_next"]:
                return [m for m in messages if m["id"] > after_id]
            page += 1

    assert_fails("websockets.catch-up", whole_history, "but you also asked for page 2")


def test_catch_up_leaves_no_rows_behind():
    assert_passes("websockets.catch-up")
    with chat.start(name="websockets-test", fresh_data=False) as server:
        body = requests.get(f"{server.url}/api/chat/catch-up/messages",
                            params={"token": server.token_for(101)}, timeout=5).json()
    assert body["total"] == 0


def test_handshake_any_authorization_scheme_fails():
    """Too trusting: the last word of the Authorization header taken as the token, whatever
    its scheme."""
    def last_word(request, verify_token, allowed_origins):
        origin = request.headers.get("Origin")
        if origin is not None and origin not in allowed_origins:
            return 403, None
        header = request.headers.get("Authorization", "")
        token = header.split()[-1] if header else None
        if not token:
            token = parse_qs(urlsplit(request.path).query).get("token", [None])[0]
        user_id = verify_token(token) if token else None
        return (101, user_id) if user_id is not None else (401, None)

    assert_fails("websockets.handshake", last_word, "a valid token under the Basic scheme")
