"""Exercises of notebooks/04-websockets.ipynb, each checked through a live chat server."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import requests
from flask import Flask
from flask_socketio import SocketIO, emit
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from ... import database
from ...database import ChatMessage, User, db, utcnow
from ...engine import NotAttempted, Unmet, cases, exercise, expect
from . import server as chat
from . import socketio_server as socketio_chat
from .server import ChatError, ChatServer, Client, TokenSigner

NOTEBOOK = "04-websockets"
TIMEOUT = 5


# --- helpers for the checks ---------------------------------------------------

def _open(server, user_id, room_id=None, **options):
    """A sync client as ``user_id``, past the greeting (and the join, if a room is given)."""
    ws = connect(f"{server.ws_url}?token={server.token_for(user_id)}", open_timeout=TIMEOUT,
                 legacy=True, **options)
    json.loads(ws.recv(TIMEOUT))
    if room_id is not None:
        ws.send(json.dumps({"type": "join_chat", "room_id": room_id}))
        _next(ws, "user_joined")
    return ws


def _next(ws, *types):
    """The next event of one of ``types``, skipping join/leave notices."""
    while True:
        event = json.loads(ws.recv(TIMEOUT))
        if event["type"] in types:
            return event
        if event["type"] not in ("user_joined", "user_left"):
            raise Unmet(f"expected a {' or '.join(types)} event, got {event!r}")


def _handshake_status(server, query="", **options):
    """The status of a handshake to ``/ws?{query}``: 101 if it opened."""
    try:
        with connect(f"{server.ws_url}{query}", open_timeout=TIMEOUT, **options) as ws:
            greeting = json.loads(ws.recv(TIMEOUT))
            return 101, greeting.get("user_id")
    except InvalidStatus as refused:
        return refused.response.status_code, None


# --- 1. Socket.IO by hand -----------------------------------------------------

def socketio_hello(ws: ClientConnection, token: str) -> dict[str, Any]:
    """Over ``ws``, a plain WebSocket open on a Socket.IO server's Engine.IO endpoint:
    CONNECT with ``{"token": token}`` as auth and return the data of the ``connected``
    event; raise PermissionError if the server answers CONNECT_ERROR."""
    ws.recv(2)                                          # Engine.IO OPEN: 0{"sid": ...}
    ws.send("40" + json.dumps({"token": token}))        # Socket.IO CONNECT, with auth
    while True:
        frame = ws.recv(2)
        kind, payload = frame[:2], frame[2:]
        if kind == "44":                                # CONNECT_ERROR
            raise PermissionError(json.loads(payload)["message"])
        if kind == "42":                                # EVENT: ["connected", {...}]
            event, data = json.loads(payload)
            if event == "connected":
                return data
        # anything else (40{"sid": ...}, the CONNECT's acknowledgement) is not the greeting


def _socketio_server(tokens, heard):
    """The document's ``on_connect`` on a Socket.IO server of the check's own; every CONNECT's
    auth is appended to ``heard``."""
    app = Flask("websockets-check-socketio")
    socketio = SocketIO(app)

    @socketio.on("connect")
    def on_connect(auth):
        heard.append(auth)
        token = auth.get("token") if isinstance(auth, dict) else None
        user_id = tokens.verify(token) if isinstance(token, str) else None
        if user_id is None:
            return False
        try:
            user = db.session.get(User, user_id)
            name = user.name if user else "Anonymous"
        finally:
            db.session.remove()
        emit("notice", {"message": "The chat restarts at midnight"})  # not the greeting
        emit("connected", {"message": f"Welcome {name}!"})
        return None

    return socketio_chat.serve(app, name="websockets-check-socketio")


def _hello(server, socketio_hello, token, heard):
    """Open a plain WebSocket on the server's Engine.IO endpoint and hand it to the learner."""
    heard.clear()
    with connect(socketio_chat.engineio_url(server.url, "websocket"), open_timeout=TIMEOUT,
                 close_timeout=1) as ws:
        return socketio_hello(ws, token)


def _what_was_wrong(heard, token):
    """Why a CONNECT with a valid ``token`` got no greeting, from what the server heard."""
    if not heard:
        return ("the server never got a Socket.IO CONNECT: after the open packet (0{...}), "
                "send 40 followed by the auth object as JSON, 40{\"token\": ...}")
    if heard[-1] != {"token": token}:
        return (f"your CONNECT carried the auth {heard[-1]!r}, which the server refused "
                f"(44): the auth object is {{\"token\": <the token>}}, right after the 40")
    return None


@exercise(
    "websockets.socketio-by-hand",
    title="Speak Socket.IO over a plain WebSocket: CONNECT with a token, read the greeting",
    notebook=NOTEBOOK,
    hints=[
        "The first frame is Engine.IO's open packet, 0{...}: read it (ws.recv(2)) and move on. "
        "Then send the CONNECT: \"40\" + json.dumps({\"token\": token}).",
        "Read frames (ws.recv(2)) until one starts with 42 (an EVENT) or 44 (CONNECT_ERROR). "
        "The greeting can come before the CONNECT's acknowledgement, 40{\"sid\": ...}.",
        "frame[2:] of an EVENT is a JSON array [name, data]: return data when name is "
        "\"connected\". For 44, raise PermissionError.",
    ],
    reference=socketio_hello,
    timeout=20,
)
def check_socketio_by_hand(socketio_hello):
    database.ready(False)
    tokens = TokenSigner()
    heard: list[Any] = []
    with _socketio_server(tokens, heard) as server:
        for user_id in cases().sample(range(101, 126), 2):
            name = _user_name(user_id)
            token = tokens.token_for(user_id)
            try:
                data = _hello(server, socketio_hello, token, heard)
            except (TimeoutError, PermissionError) as exc:
                wrong = _what_was_wrong(heard, token)
                if wrong:
                    raise Unmet(wrong) from None
                if isinstance(exc, PermissionError):
                    raise
                raise Unmet("the server accepted your CONNECT and sent its greeting, "
                            "42[\"connected\", {...}], but your code kept waiting: the greeting "
                            "can come before the CONNECT's acknowledgement 40{\"sid\": ...}, so "
                            "take it from whichever 42 frame arrives") from None
            if data is None:
                raise NotAttempted("socketio_hello returns None")
            expected = {"message": f"Welcome {name}!"}
            if isinstance(data, (str, bytes)):
                raise Unmet(f"return a dict: json.loads what follows a frame's two type digits "
                            f"(4 message, 2 event), got the text {data!r}")
            if isinstance(data, list):
                raise Unmet(f"return the event's data, the dict after its name: got the whole "
                            f"array {data!r}")
            expect(isinstance(data, dict), f"return the connected event's data as a dict, got "
                                           f"{type(data).__name__}: {data!r}")
            expect("sid" not in data, f"{data!r} is a session id, from Engine.IO's open packet "
                                      f"(0) or the CONNECT's acknowledgement (40): the greeting "
                                      f"is the EVENT 42[\"connected\", {{...}}]")
            expect(data == expected or not _what_was_wrong(heard, token),
                   _what_was_wrong(heard, token) or "")
            expect(data == expected, f"as user {user_id}, expected the greeting {expected!r}, "
                                     f"got {data!r}" + (
                                         ": that is the data of another event (the server "
                                         "sent 42[\"notice\", ...] first); return the one "
                                         "whose name is \"connected\""
                                         if "restarts" in str(data) else ""))
        forged = "101." + "0" * 32
        try:
            refused = _hello(server, socketio_hello, forged, heard)
        except PermissionError:
            pass
        except TimeoutError:
            raise Unmet(f"with the forged token {forged} the server answers 44 (CONNECT_ERROR) "
                        f"and never greets, but your code kept waiting: raise PermissionError "
                        f"on a frame that starts with 44") from None
        else:
            raise Unmet(f"with the forged token {forged} the server answers 44 (CONNECT_ERROR): "
                        f"raise PermissionError, you returned {refused!r}")
    return "CONNECT with the token's auth, the greeting's data returned, 44 raised"


# --- 2. a first message -------------------------------------------------------

def send_and_confirm(ws_url: str, token: str, room_id: str, text: str) -> dict[str, Any]:
    """Join ``room_id``, send ``text`` and return the server's ``new_message`` for it."""
    with connect(f"{ws_url}?token={token}", open_timeout=5) as ws:
        ws.recv(5)  # the "connected" greeting
        ws.send(json.dumps({"type": "join_chat", "room_id": room_id}))
        ws.send(json.dumps({"type": "send_message", "room_id": room_id, "message": text}))
        while True:
            event = json.loads(ws.recv(5))
            if event["type"] == "error":
                raise RuntimeError(event["message"])
            if event["type"] == "new_message" and event["message"] == text:
                return event


@exercise(
    "websockets.first-message",
    title="Connect with a token, join a room, send, and wait for the broadcast",
    notebook=NOTEBOOK,
    hints=[
        "Connect to f\"{ws_url}?token={token}\" with websockets.sync.client.connect, in a "
        "with block so it closes.",
        "The server greets you first ({\"type\": \"connected\"}); you must send join_chat "
        "before send_message, or you get an error event.",
        "Keep reading (ws.recv(5), then json.loads) until a new_message whose message is "
        "your text arrives: other events (user_joined) come first.",
    ],
    reference=send_and_confirm,
)
def check_first_message(send_and_confirm):
    draw = cases()
    sender, other = draw.sample(range(101, 126), 2)
    room = f"exercise-{draw.randrange(1, 1000)}"
    text = draw.choice(["Hello everyone!", "Grüße aus Köln 👋", "line one\nline two",
                        "{\"type\": \"not json inside\"}"])
    with chat.start(name="websockets-check", fresh_data=False) as server:
        name = _user_name(sender)
        listener = _open(server, other, room)
        try:
            event = send_and_confirm(server.ws_url, server.token_for(sender), room, text)
            if event is None:
                raise NotAttempted("send_and_confirm returns None")
            expect(isinstance(event, dict), f"return the event as a dict (json.loads), "
                                            f"got {type(event).__name__}: {event!r}")
            expect(event.get("type") == "new_message",
                   f"expected the new_message event, got a {event.get('type')!r} event: "
                   f"{event!r}")
            expect(event.get("message") == text and event.get("username") == name,
                   f"as user {sender} ({name}) in room {room!r} you sent {text!r}: the "
                   f"new_message should carry that text and name, got {event!r}")
            try:
                heard = _next(listener, "new_message")
            except TimeoutError:
                raise Unmet(f"user {other}, in room {room!r}, got no new_message: send to the "
                            "room_id you were given") from None
            expect(heard == event, "the other member of the room got a different event: "
                                   f"{heard!r}")
        finally:
            listener.close()
        response = requests.get(f"{server.url}/api/chat/{room}/messages",
                                params={"token": server.token_for(sender)}, timeout=TIMEOUT)
        stored = [m["id"] for m in response.json()["messages"]]
        expect(event["id"] in stored, f"message {event['id']} is not in the room's history")
    return "joined, sent, the room got the same new_message, and the history has it"


def _user_name(user_id: int) -> str:
    try:
        user = db.session.get(User, user_id)
        return user.name if user else "Anonymous"
    finally:
        db.session.remove()


# --- 3. typing, to everyone but the sender ------------------------------------

@exercise(
    "websockets.typing",
    title="Broadcast the typing indicator to the room, excluding the sender",
    notebook=NOTEBOOK,
    hints=[
        "joined_room(client, data) returns the room_id, or raises ChatError if the client "
        "is not in it: the server turns that into an error event.",
        "is_typing must be a bool: raise ChatError otherwise.",
        "chat.broadcast(room_id, event, exclude=client) sends to every member but one. The "
        "event is {\"type\": \"user_typing\", \"username\": ..., \"is_typing\": ..., "
        "\"room_id\": ...}.",
    ],
    reference=chat.on_typing,
)
def check_typing(on_typing):
    if not _sends_anything(on_typing):
        raise NotAttempted("on_typing sends nothing yet")
    draw = cases()
    number, text = draw.choice([1, 0]), draw.choice(["yes", None, "false"])
    with chat.start(name="websockets-check", fresh_data=False,
                    handlers={"typing": on_typing}) as server:
        ada, alan = _open(server, 101, "typing-1"), _open(server, 102, "typing-1")
        grace = _open(server, 103, "typing-2")
        try:
            _next(ada, "user_joined")  # Alan joined
            ada.send(json.dumps({"type": "typing", "room_id": "typing-1", "is_typing": True}))
            expected = {"type": "user_typing", "username": "Ada Lovelace", "is_typing": True,
                        "room_id": "typing-1"}
            got = _pending(alan)
            expect(got, "Alan, in the room, got nothing: broadcast to the room")
            expect(got == [expected], f"Alan should get {expected!r} once, got {got!r}")
            expect(not _pending(ada), "the sender got its own user_typing event: use "
                                      "exclude=client")
            expect(not _pending(grace), "Grace, in another room, got the user_typing event: "
                                        "send to the room only")
            for bad, what in (({"room_id": "typing-2", "is_typing": True},
                               "typing in a room the sender has not joined"),
                              ({"room_id": "typing-1", "is_typing": text},
                               f"is_typing {text!r} (not a bool)"),
                              ({"room_id": "typing-1", "is_typing": number},
                               f"is_typing {number!r} (not a bool), a number: {number} == "
                               f"{bool(number)} in Python, so compare the type, "
                               "isinstance(value, bool)")):
                ada.send(json.dumps({"type": "typing", **bad}))
                replies = _pending(ada)
                expect([r.get("in_reply_to") for r in replies] == ["typing"],
                       f"{what} should get an error event, got {replies or 'nothing'!r}")
                expect(not _pending(alan) and not _pending(grace),
                       f"{what} was broadcast anyway")
        finally:
            for ws in (ada, alan, grace):
                ws.close()
    return "the room gets user_typing, the sender and other rooms do not, bad input an error"


PROBE = {"type": "send_message", "room_id": "nowhere", "message": "probe"}


def _pending(ws):
    """Every event waiting for ``ws``: send a probe that always fails, read up to its error."""
    ws.send(json.dumps(PROBE))
    events: list[dict] = []
    while True:
        event = json.loads(ws.recv(TIMEOUT))
        if event.get("in_reply_to") == "send_message" and "'nowhere'" in event["message"]:
            return events
        events.append(event)


class _Recorder:
    """Stands in for the ChatServer: records what a handler sends."""

    def __init__(self, sender, other):
        self.other, self.sent = other, []
        self.clients = {sender, other}

    def send(self, *args, **kwargs):
        self.sent.append(args)

    broadcast = send

    def members(self, room_id):
        return [self.other]


def _sends_anything(handler, data=None):
    """Whether ``handler`` sends or raises anything for a valid message (stubs do not)."""
    no_connection = cast(ServerConnection, None)  # the recorder sends nothing anywhere
    ada = chat.Client(no_connection, 101, "Ada Lovelace", {"typing-1"})
    recorder = _Recorder(ada, chat.Client(no_connection, 102, "Alan Turing", {"typing-1"}))
    data = data or {"type": "typing", "room_id": "typing-1", "is_typing": True}
    try:
        handler(recorder, ada, data)
    except Exception:
        return True
    return bool(recorder.sent)


# --- 4. a new message type: private messages ---------------------------------

def on_private_message(chat: ChatServer, client: Client, data: dict[str, Any]) -> None:
    """Deliver ``message`` to every connection of user ``to_user_id``, and echo it to the
    sender's own connections (their other tabs); nobody else sees it."""
    to_user_id = data.get("to_user_id")
    message = data.get("message")
    if not isinstance(message, str) or not message.strip():
        raise ChatError("message must be a non-empty string")
    targets = [c for c in chat.clients if c.user_id == to_user_id]
    if not targets:
        raise ChatError(f"user {to_user_id!r} is not connected")
    event = {"type": "private_message", "from_user_id": client.user_id,
             "username": client.username, "to_user_id": to_user_id,
             "message": message.strip()}
    senders = [c for c in chat.clients if c.user_id == client.user_id]
    for other in {*targets, *senders}:
        chat.send(other, event)


@exercise(
    "websockets.private-message",
    title="A new message type: private messages to every tab of one user",
    notebook=NOTEBOOK,
    hints=[
        "chat.clients is every open connection (a Client has .user_id and .username); one "
        "user may have several, one per browser tab.",
        "Raise ChatError for an empty message, or when no connection has user_id == "
        "to_user_id: the server turns it into an error event.",
        "chat.send(other, event) sends to one connection. Send the event to each of the "
        "target's connections and each of the sender's, once each (a set of Clients).",
    ],
    reference=on_private_message,
)
def check_private_message(on_private_message):
    if not _sends_anything(on_private_message, {"type": "private_message",
                                                "to_user_id": 102, "message": "psst"}):
        raise NotAttempted("on_private_message sends nothing yet")
    draw = cases()
    sender, to, bystander = draw.sample(range(101, 126), 3)
    text = draw.choice(["Lunch at noon?", "Größe: 42 📦", "two\nlines"])
    with chat.start(name="websockets-check", fresh_data=False,
                    handlers={"private_message": on_private_message}) as server:
        tabs = [_open(server, sender), _open(server, sender)]
        alan, grace = _open(server, to), _open(server, bystander)
        try:
            tabs[0].send(json.dumps({"type": "private_message", "to_user_id": to,
                                     "message": text}))
            expected = {"type": "private_message", "from_user_id": sender,
                        "username": _user_name(sender), "to_user_id": to,
                        "message": text}
            got = _pending(alan)
            expect(got == [expected], f"user {to} (the recipient) should get {expected!r} once, "
                                      f"got {got or 'nothing'!r}")
            got = _pending(tabs[0])
            expect(got == [expected], f"the sender should get the same event back once (its "
                                      f"confirmation), got {got or 'nothing'!r}")
            got = _pending(tabs[1])
            expect(got == [expected], f"the sender's other tab (a second connection of user "
                                      f"{sender}) should get it once too, got "
                                      f"{got or 'nothing'!r}")
            expect(not _pending(grace), f"user {bystander} got a private message between users "
                                        f"{sender} and {to}")
            tabs[1].send(json.dumps({"type": "private_message", "to_user_id": sender,
                                     "message": text}))
            to_self = {**expected, "to_user_id": sender}
            for n, tab in enumerate(tabs):
                got = _pending(tab)
                expect(got == [to_self],
                       f"user {sender} sent a private message to themself: each of their tabs "
                       f"should get it once, tab {n + 1} got {len(got)}: the recipient's and "
                       "the sender's connections overlap, send to each Client once (a set)")
            offline = next(id for id in range(101, 126) if id not in (sender, to, bystander))
            for bad, what in (({"to_user_id": offline, "message": "hi"},
                               f"to user {offline}, who is not connected,"),
                              ({"to_user_id": to, "message": "  "}, "with an empty message"),
                              ({"to_user_id": to}, "without a message")):
                tabs[0].send(json.dumps({"type": "private_message", **bad}))
                replies = _pending(tabs[0])
                expect([r.get("type") for r in replies] == ["error"],
                       f"a private message {what} should get one error event, got "
                       f"{replies or 'nothing'!r}")
                expect(not _pending(alan) and not _pending(tabs[1]),
                       f"a private message {what} was delivered anyway")
        finally:
            for ws in (*tabs, alan, grace):
                ws.close()
    return "delivered to every tab of the recipient and the sender, nobody else; errors otherwise"


# --- 5. authentication at the handshake ---------------------------------------

@exercise(
    "websockets.handshake",
    title="Authenticate at the handshake: 401 without a valid token, 403 for a foreign Origin",
    notebook=NOTEBOOK,
    hints=[
        "request.path is '/ws?token=...': parse_qs(urlsplit(request.path).query) gives the "
        "query; request.headers.get('Authorization') may hold 'Bearer <token>'.",
        "verify_token(token) returns the user id, or None for a token the server did not "
        "sign. Never trust the user id written in the token itself.",
        "Browsers always send Origin; scripts send none. Refuse an Origin that is present "
        "and not in allowed_origins (403), accept a missing one.",
    ],
    reference=chat.authorize,
)
def check_handshake(authorize):
    draw = cases()
    user_id = draw.randrange(101, 126)
    with chat.start(name="websockets-check", fresh_data=False, handshake=authorize) as server:
        token = server.token_for(user_id)
        forged = f"{user_id}." + "0" * 32
        if authorize(_FakeRequest(f"/ws?token={token}"), server.app.tokens.verify,
                     set()) is None:
            raise NotAttempted("authorize returns None")
        status, user = _handshake_status(server, f"?token={token}")
        expect((status, user) == (101, user_id),
               f"a valid token in ?token= should open the socket as user {user_id}, got "
               f"{status}" + (f" as user {user}" if user else ""))
        status, user = _handshake_status(server, additional_headers={
            "Authorization": f"Bearer {token}"})
        expect((status, user) == (101, user_id),
               f"a valid token in 'Authorization: Bearer ...' should open the socket as user "
               f"{user_id}, got {status}")
        signature = token.partition(".")[2]
        for query, what in (("", "no token"), (f"?token={forged}", f"a forged token {forged}"),
                            (f"?token={user_id}", "a token without a signature"),
                            (f"?token={user_id % 25 + 101}.{signature}",
                             f"user {user_id}'s signature on another user's id")):
            status, _ = _handshake_status(server, query)
            expect(status == 401, f"{what} should be refused with 401, got {status}")
        status, _ = _handshake_status(server, f"?token={token}", origin="http://evil.example")
        expect(status == 403, f"a page on http://evil.example opened a socket with a valid "
                              f"token: expected 403, got {status}")
        port = server.port
        lookalikes = [f"http://127.0.0.1.evil.example:{port}",
                      f"http://localhost.evil.example:{port}",
                      "https://evil-127.0.0.1.example",
                      f"http://127.0.0.1:{port + 1 if port < 65535 else port - 1}",
                      f"http://127.0.0.1:{str(port)[:-1]}", "null"]
        for origin in draw.sample(lookalikes[:2], 1) + lookalikes[2:]:
            status, _ = _handshake_status(server, f"?token={token}", origin=origin)
            expect(status == 403,
                   f"a page with Origin {origin!r} opened a socket with a valid token (status "
                   f"{status}): an origin is scheme://host:port, compared whole against the "
                   "allowed set, never by prefix, suffix or substring")
        own = f"http://127.0.0.1:{server.port}"
        status, _ = _handshake_status(server, f"?token={token}", origin=own)
        expect(status == 101, f"the lab's own page (Origin {own}) was refused with {status}")
        status, _ = _handshake_status(server, additional_headers={
            "Authorization": f"Basic {token}"})
        expect(status == 401,
               f"a valid token under the Basic scheme ('Authorization: Basic ...') opened the "
               f"socket ({status}): only 'Bearer <token>' carries a token; compare the scheme "
               "too, not just the last word of the header")
    return ("401 without a valid token (query or Bearer), 403 for a foreign or look-alike "
            "Origin, else 101")


class _FakeRequest:
    def __init__(self, path):
        self.path = path
        self.headers = {}


# --- 6. catching up after a reconnect -----------------------------------------

def catch_up(base_url: str, token: str, room_id: str, after_id: int) -> list[dict]:
    """Every message of ``room_id`` with an id above ``after_id``, oldest first."""
    missed: list[dict] = []
    page = 1
    while True:
        params: dict[str, str | int] = {"token": token, "page": page, "per_page": 100}
        response = requests.get(f"{base_url}/api/chat/{room_id}/messages", params=params,
                                timeout=5)
        response.raise_for_status()
        body = response.json()
        newer = [m for m in body["messages"] if m["id"] > after_id]
        missed = newer + missed
        if len(newer) < len(body["messages"]) or not body["has_next"]:
            return missed
        page += 1


def _post_history(room_id, count):
    """``count`` messages in ``room_id``, straight into the database; their ids."""
    start = utcnow() - dt.timedelta(minutes=count)
    rows = [ChatMessage(user_id=101 + n % 5, room_id=room_id, message=f"missed {n + 1}",
                        timestamp=start + dt.timedelta(seconds=n)) for n in range(count)]
    try:
        db.session.add_all(rows)
        db.session.commit()
        return [row.id for row in rows]
    finally:
        db.session.remove()


@exercise(
    "websockets.catch-up",
    title="Reconnect without losing history: fetch what was missed, across pages",
    notebook=NOTEBOOK,
    hints=[
        "Page 1 of /api/chat/<room_id>/messages is the newest messages; each page lists its "
        "messages oldest first. per_page can be at most 100.",
        "Walk page 1, 2, 3, ... keeping the messages with id > after_id, until a page holds "
        "an older one (or has_next is false).",
        "Later pages are older: put each page's messages before those you already have.",
    ],
    reference=catch_up,
    timeout=20,
)
def check_catch_up(catch_up):
    with chat.start(name="websockets-check", fresh_data=False) as server:
        try:
            _check_catch_up_through(server, catch_up)
        finally:
            db.session.query(ChatMessage).filter_by(room_id="catch-up").delete()
            db.session.commit()
            db.session.remove()
    return "nothing missed, nothing repeated, oldest first, across pages of at most 100"


def _counting_history(server) -> list[dict[str, list[str]]]:
    """Note the query of every request for the chat history (what crossed the wire)."""
    asked: list[dict[str, list[str]]] = []
    history = server.app.history

    def noted(request, room_id, origins):
        asked.append(parse_qs(urlsplit(request.path).query))
        return history(request, room_id, origins)

    server.app.history = noted
    return asked


def _check_catch_up_through(server, catch_up):
    draw = cases()
    count = draw.randint(160, 320)
    ids = _post_history("catch-up", count)
    token = server.token_for(101)
    asked = _counting_history(server)
    first = catch_up(server.url, token, "catch-up", ids[-1])
    if first is None:
        raise NotAttempted("catch_up returns None")
    expect(ids[-1] not in [m["id"] for m in first],
           f"message {ids[-1]} was already seen: return only ids above after_id")
    expect(list(first) == [], f"after the newest message nothing was missed, got "
                              f"{len(first)} messages")
    for seen in (ids[-draw.randint(2, 9)], ids[draw.randrange(40, count - 101)], ids[0] - 1):
        asked.clear()
        missed = catch_up(server.url, token, "catch-up", seen)
        got = [m["id"] for m in missed]
        want = [i for i in ids if i > seen]
        expect(seen not in got, f"message {seen} was already seen: return only ids "
                                f"above after_id")
        expect(sorted(got) == want,
               f"with {count} messages in the room, after id {seen} {len(want)} were missed; "
               f"got {len(got)}"
               + (" (only the newest page?)" if len(got) in (50, 100) else ""))
        expect(got == want, f"after id {seen}: return them oldest first, got ids "
                            f"{got[:3]}...{got[-3:]}")
        _expect_no_page_past(asked, ids, seen)
    forged = "101." + "0" * 32
    try:
        returned = catch_up(server.url, forged, "catch-up", ids[0] - 1)
    except Exception:
        returned = None
    expect(returned is None,
           f"with the token {forged}, which the server did not sign, the history answers 401 "
           f"and you returned {_short(returned)}: an error is not 'nothing missed'; raise it "
           "(response.raise_for_status()), or the client silently loses the messages")
    ws = _open(server, 102, "catch-up")
    ws.send(json.dumps({"type": "send_message", "room_id": "catch-up",
                        "message": "live again"}))
    live = _next(ws, "new_message")
    ws.close()
    missed = catch_up(server.url, token, "catch-up", ids[-1])
    expect([m["id"] for m in missed] == [live["id"]],
           f"a message sent over the socket after id {ids[-1]} should be caught up, got "
           f"{[m['id'] for m in missed]}")


def _short(value) -> str:
    return f"a list of {len(value)}" if isinstance(value, list) else repr(value)[:80]


def _expect_no_page_past(asked: list[dict[str, list[str]]], ids: list[int], seen: int) -> None:
    """No page asked for beyond the one that holds ``seen`` (pages are newest first)."""
    from_newest = len(ids) - 1 - ids.index(seen) if seen in ids else len(ids)
    for query in asked:
        page = int(query.get("page", ["1"])[0])
        per_page = int(query.get("per_page", ["50"])[0])
        holding = from_newest // per_page + 1
        expect(page <= holding,
               f"after id {seen}, page {holding} (per_page={per_page}) already holds message "
               f"{seen}, but you also asked for page {page}: stop at the page that holds an id "
               "at or below after_id; reading the whole history on every reconnect does not "
               "scale")
