"""The WebSockets lab: the document's chat, on the ``websockets`` library.

The document's server is Flask-SocketIO. Socket.IO is a protocol of its own on
top of WebSocket (its own packet framing, rooms, acknowledgements), so a plain
WebSocket client cannot talk to it, nor a Socket.IO client to a plain
WebSocket server. This module keeps the document's chat semantics and speaks
plain WebSocket with a small JSON protocol. ``start()`` serves it in the
background of the kernel::

    from labsupport import chat
    server = chat.start()
    token = server.token_for(101)     # Ada Lovelace
    # ws://127.0.0.1:PORT/ws?token=...  (or an "Authorization: Bearer ..." header)

One server on one port answers:

- ``/ws``: the WebSocket. The handshake is refused with 401 without a valid
  token and with 403 for an ``Origin`` that is not the lab's own page.
- ``/api/chat/<room_id>/messages?page=1&per_page=50``: the chat history (HTTP GET).
- ``/``: the browser client (``static/chat.html`` and ``chat.js`` beside this module).

Every frame is a JSON object with a ``type``. A client sends::

    {"type": "join_chat", "room_id": "general"}
    {"type": "leave_chat", "room_id": "general"}
    {"type": "send_message", "room_id": "general", "message": "Hello everyone!"}
    {"type": "typing", "room_id": "general", "is_typing": true}

and receives ``connected``, ``user_joined``, ``user_left``, ``new_message``,
``user_typing`` (never its own) and ``error`` (``{"type": "error", "message":
..., "in_reply_to": ...}``). A mistake gets an ``error`` and the connection
stays open; a binary frame is closed with 1003, a frame over ``max_size``
with 1009, too many mistakes with 1008, a bug in the server with 1011, and
stopping the server closes every connection with 1001.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
import hmac
import http
import inspect
import itertools
import json
import logging
import re
import secrets
import weakref
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import joinedload
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from ... import database
from ...api_errors import APIError, query_int
from ...database import ChatMessage, User, db, isoformat, utcnow
from ...harness import LOG_LINES_KEPT, LOOPBACK, AsyncioHandle, logger_for, serve_asyncio
from ...pages import static_file
from ...pagination import paginate

__all__ = [
    "start", "ChatServer", "Client", "ChatError", "TokenSigner", "authorize", "joined_room",
    "on_join_chat", "on_leave_chat", "on_send_message", "on_typing", "HANDLERS",
    "MAX_FRAME_BYTES", "MAX_MESSAGE_CHARS", "MAX_ERRORS", "MAX_PER_PAGE",
]

#: Frames larger than this close the connection with 1009 (message too big).
MAX_FRAME_BYTES = 64 * 1024
#: A chat message longer than this is refused with an ``error``.
MAX_MESSAGE_CHARS = 2000
#: After this many ``error`` replies in a row, the connection closes with 1008.
MAX_ERRORS = 20
MAX_PER_PAGE = 100
ROOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
HISTORY_PATH = re.compile(r"/api/chat/([^/]+)/messages")
STATIC_FILES = {"/": "chat.html", "/chat.js": "chat.js", "/chat.css": "chat.css"}


class ChatError(Exception):
    """A client mistake, answered with an ``error`` message on the same connection."""


# --- tokens -----------------------------------------------------------------

class TokenSigner:
    """HMAC-signed tokens ``"<user_id>.<signature>"`` with a secret made per server start.

    The document hard-codes ``SECRET_KEY = 'secret!'``; anyone who reads the
    code can then mint tokens. Here the secret is random, so tokens of an
    earlier server are worthless after a restart.
    """

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def _sign(self, user_id: int) -> str:
        return hmac.new(self._secret, str(user_id).encode(), hashlib.sha256).hexdigest()[:32]

    def token_for(self, user_id: int) -> str:
        """A token that proves the bearer is ``user_id``."""
        return f"{user_id}.{self._sign(user_id)}"

    def verify(self, token: str) -> int | None:
        """The user id a token was made for, or ``None`` if it was not made by us."""
        user_part, _, signature = token.partition(".")
        if not (user_part.isascii() and user_part.isdigit()) or len(user_part) > 9:
            return None
        user_id = int(user_part)
        expected = self._sign(user_id).encode()
        return user_id if hmac.compare_digest(signature.encode(), expected) else None


def authorize(request: Request, verify_token: Callable[[str], int | None],
              allowed_origins: set[str]) -> tuple[int, int | None]:
    """Decide the opening handshake: ``(101, user_id)``, ``(401, None)`` or ``(403, None)``.

    A browser always sends the page's ``Origin``; a page from another site must
    not open a socket with the learner's credentials (cross-site WebSocket
    hijacking), so a foreign Origin gets 403. Scripts send no Origin. The token
    comes in an ``Authorization: Bearer`` header or, from a browser (whose
    WebSocket API cannot set headers), in the ``token`` query parameter.
    """
    origin = request.headers.get("Origin")
    if origin is not None and origin not in allowed_origins:
        return 403, None
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    token = credentials if scheme.lower() == "bearer" else None
    if not token:
        token = parse_qs(urlsplit(request.path).query).get("token", [None])[0]
    user_id = verify_token(token) if token else None
    if user_id is None:
        return 401, None
    return 101, user_id


# --- state ------------------------------------------------------------------

@dataclasses.dataclass(eq=False)
class Client:
    """One open WebSocket connection and who is on it."""

    connection: ServerConnection
    user_id: int
    username: str
    rooms: set[str] = dataclasses.field(default_factory=set)
    errors_in_a_row: int = 0


class ChatServer:
    """The chat's rooms and clients, and the message handlers that act on them."""

    def __init__(
        self,
        *,
        handlers: dict[str, Callable[..., Any]] | None = None,
        handshake: Callable[..., tuple[int, int | None]] = authorize,
        allowed_origins: Iterable[str] = (),
        log: collections.deque[str] | None = None,
    ) -> None:
        self.handlers = {**HANDLERS, **(handlers or {})}
        self.handshake = handshake
        self.extra_origins = set(allowed_origins)
        self.tokens = TokenSigner()
        # Who each connection is, from its handshake: (user id, user name).
        self.identities: weakref.WeakKeyDictionary[ServerConnection, tuple[int, str]] = (
            weakref.WeakKeyDictionary())
        self.rooms: dict[str, set[Client]] = {}
        self.store_lock = asyncio.Lock()
        self.clients: set[Client] = set()
        self.log = log if log is not None else collections.deque(maxlen=LOG_LINES_KEPT)
        self.logger = _handle_logger(self.log)

    # -- what handlers call --------------------------------------------------

    def send(self, client: Client, event: dict[str, Any]) -> None:
        """Send one event (a dict with a ``type``) to one client."""
        broadcast([client.connection], json.dumps(event))

    def broadcast(self, room_id: str, event: dict[str, Any], *,
                  exclude: Client | None = None) -> None:
        """Send one event to every member of ``room_id`` (but ``exclude``)."""
        members = [c.connection for c in self.members(room_id) if c is not exclude]
        broadcast(members, json.dumps(event))

    def members(self, room_id: str) -> list[Client]:
        """The clients in a room (empty if nobody is)."""
        return list(self.rooms.get(room_id, ()))

    def join(self, client: Client, room_id: str) -> None:
        self.rooms.setdefault(room_id, set()).add(client)
        client.rooms.add(room_id)

    def leave(self, client: Client, room_id: str) -> None:
        members = self.rooms.get(room_id, set())
        members.discard(client)
        if not members:
            self.rooms.pop(room_id, None)
        client.rooms.discard(room_id)

    # -- the WebSocket -------------------------------------------------------

    async def handler(self, connection: ServerConnection) -> None:
        """Serve one connection: dispatch each frame, clean up when it goes."""
        client = Client(connection, *self.identities[connection])
        self.clients.add(client)
        self.send(client, {"type": "connected", "message": f"Welcome {client.username}!",
                           "user_id": client.user_id, "username": client.username})
        try:
            async for frame in connection:
                if isinstance(frame, bytes):
                    await connection.close(CloseCode.UNSUPPORTED_DATA,
                                           "send JSON in text frames, not binary")
                    break
                await self.dispatch(client, frame)
                if client.errors_in_a_row >= MAX_ERRORS:
                    await connection.close(CloseCode.POLICY_VIOLATION,
                                           f"{MAX_ERRORS} invalid messages in a row")
                    break
        except ConnectionClosed:
            pass
        except Exception:
            # A bug, never the client's fault: log it, then close with 1011.
            self.logger.error("handler failed for user %s", client.user_id, exc_info=True)
            await connection.close(CloseCode.INTERNAL_ERROR, "the server failed; see its log")
        finally:
            self.disconnect(client)

    async def dispatch(self, client: Client, frame: str) -> None:
        """Run the handler of one frame; a ``ChatError`` becomes an ``error`` reply."""
        kind = None
        try:
            data = parse_frame(frame)
            kind = data["type"]
            handler = self.handlers.get(kind)
            if handler is None:
                known = ", ".join(sorted(self.handlers))
                raise ChatError(f"unknown message type {kind!r}; the types are: {known}")
            outcome = handler(self, client, data)
            if inspect.isawaitable(outcome):
                await outcome
            client.errors_in_a_row = 0
        except ChatError as error:
            client.errors_in_a_row += 1
            self.send(client, {"type": "error", "message": str(error), "in_reply_to": kind})

    async def close_user(self, user_id: int, code: int = CloseCode.SERVICE_RESTART,
                         reason: str = "dropped by the lab") -> int:
        """Close every connection of ``user_id`` from the server side; how many there were."""
        connections = [c.connection for c in self.clients if c.user_id == user_id]
        await asyncio.gather(*(c.close(code, reason) for c in connections))
        return len(connections)

    def disconnect(self, client: Client) -> None:
        """The document's ``on_disconnect``: leave every room, telling the others."""
        self.clients.discard(client)
        for room_id in sorted(client.rooms):
            self.leave(client, room_id)
            self.broadcast(room_id, user_event("user_left", client, room_id))

    # -- HTTP: handshake, history, the browser client -----------------------

    async def process_request(self, connection: ServerConnection,
                              request: Request) -> Response | None:
        """Route a request: the WebSocket handshake, the history API or a static file."""
        path = urlsplit(request.path).path
        self.log.append(f"{request.method} {path}")
        if request.method != "GET":
            response = error_response(APIError(405, f"{request.method} is not allowed here; "
                                                    "everything on this server is a GET"))
            response.headers["Allow"] = "GET"
            return response
        if path == "/ws":
            return await self.open_handshake(connection, request)
        if path in STATIC_FILES:
            return static_response(STATIC_FILES[path])
        match = HISTORY_PATH.fullmatch(path)
        if match:
            return await asyncio.to_thread(self.history, request, unquote(match[1]),
                                           self.own_origins(connection, request))
        return error_response(APIError(404, f"No such page: {path}"))

    def own_origins(self, connection: ServerConnection, request: Request) -> set[str]:
        """The lab page's origins: this server's, and the origin the request was sent to
        (the ``Host``), as Jupyter Server checks its own sockets. Through jupyter-server-proxy
        the page, and so its ``Origin``, is on the notebook server's host, which the proxy
        passes on as ``Host``; a page on another site still has a foreign ``Origin``."""
        port = connection.local_address[1]
        host = request.headers.get("Host", "")
        return {f"http://127.0.0.1:{port}", f"http://localhost:{port}",
                f"http://{host}", f"https://{host}", *self.extra_origins}

    async def open_handshake(self, connection: ServerConnection,
                             request: Request) -> Response | None:
        status, user_id = self.handshake(request, self.tokens.verify,
                                         self.own_origins(connection, request))
        if status == 403:
            return error_response(APIError(403, "This Origin may not open the chat socket"))
        if (status != 101 or not isinstance(user_id, int)
                or (user := await asyncio.to_thread(_user_name, user_id)) is None):
            return error_response(APIError(401, "Connect with a valid token: "
                                                "?token=... or Authorization: Bearer ..."))
        self.identities[connection] = (user_id, user)
        return None

    def history(self, request: Request, room_id: str, origins: set[str]) -> Response:
        """The document's REST history endpoint, newest page first, each page in order."""
        try:
            status, _ = authorize(request, self.tokens.verify, origins)
            if status == 403:
                raise APIError(403, "This Origin may not read the chat history")
            if status != 101:
                raise APIError(401, "Send a valid token: ?token=... or Authorization: Bearer")
            check_room_id(room_id, error=lambda m: APIError(404, m))
            query = parse_qs(urlsplit(request.path).query)
            page = int_param(query, "page", 1, 1, 10**6)
            per_page = int_param(query, "per_page", 50, 1, MAX_PER_PAGE)
            found = paginate(
                select(ChatMessage).options(joinedload(ChatMessage.user))
                .where(ChatMessage.room_id == room_id)
                .order_by(ChatMessage.timestamp.desc(), ChatMessage.id.desc()),
                page, per_page,
            )
            return json_response(200, {
                "messages": [message_fields(m) for m in reversed(found.items)],
                "has_next": found.has_next,
                "has_prev": found.has_prev,
                "page": page,
                "pages": found.pages,
                "per_page": per_page,
                "total": found.total,
            })
        except APIError as error:
            return error_response(error)
        finally:
            db.session.remove()


# --- the message handlers (the document's @socketio.on functions) -----------

def parse_frame(frame: str) -> dict[str, Any]:
    """A text frame as a JSON object with a string ``type``, or a ``ChatError``."""
    try:
        data = json.loads(frame)
    except ValueError:
        raise ChatError("frames must be JSON objects, e.g. "
                        '{"type": "join_chat", "room_id": "general"}') from None
    if not isinstance(data, dict):
        raise ChatError(f"frames must be JSON objects, not {type(data).__name__}")
    if not isinstance(data.get("type"), str):
        raise ChatError('every message needs a "type" string')
    return data


def check_room_id(room_id: Any, error: Callable[[str], Exception] = ChatError) -> str:
    if not isinstance(room_id, str) or not ROOM_ID.fullmatch(room_id):
        raise error(f"room_id must be 1-64 letters, digits, '-' or '_', got {room_id!r}")
    return room_id


def joined_room(client: Client, data: dict[str, Any]) -> str:
    """The ``room_id`` of a message, which the client must have joined."""
    room_id = check_room_id(data.get("room_id"))
    if room_id not in client.rooms:
        raise ChatError(f"join room {room_id!r} first (send join_chat)")
    return room_id


def on_join_chat(chat: ChatServer, client: Client, data: dict[str, Any]) -> None:
    room_id = check_room_id(data.get("room_id"))
    if room_id in client.rooms:
        raise ChatError(f"already in room {room_id!r}")
    chat.join(client, room_id)
    chat.broadcast(room_id, user_event("user_joined", client, room_id))


def on_leave_chat(chat: ChatServer, client: Client, data: dict[str, Any]) -> None:
    room_id = joined_room(client, data)
    chat.broadcast(room_id, user_event("user_left", client, room_id))
    chat.leave(client, room_id)


async def on_send_message(chat: ChatServer, client: Client, data: dict[str, Any]) -> None:
    room_id = joined_room(client, data)
    message = data.get("message")
    if not isinstance(message, str) or not message.strip():
        raise ChatError("message must be a non-empty string")
    if len(message) > MAX_MESSAGE_CHARS:
        raise ChatError(f"message is {len(message)} characters; the limit is "
                        f"{MAX_MESSAGE_CHARS}")
    # The commit runs in a thread so the event loop keeps serving everyone else;
    # the lock keeps broadcasts in the order the database numbered the messages.
    async with chat.store_lock:
        event = await asyncio.to_thread(store_message, client, room_id, message.strip())
        chat.broadcast(room_id, event)


def on_typing(chat: ChatServer, client: Client, data: dict[str, Any]) -> None:
    """Tell the rest of the room that ``client`` is (or stopped) typing; never the sender."""
    room_id = joined_room(client, data)
    is_typing = data.get("is_typing", False)
    if not isinstance(is_typing, bool):
        raise ChatError("is_typing must be true or false")
    chat.broadcast(room_id, {"type": "user_typing", "username": client.username,
                             "is_typing": is_typing, "room_id": room_id}, exclude=client)


HANDLERS: dict[str, Callable[..., Any]] = {
    "join_chat": on_join_chat,
    "leave_chat": on_leave_chat,
    "send_message": on_send_message,
    "typing": on_typing,
}


# --- helpers ----------------------------------------------------------------

def user_event(kind: str, client: Client, room_id: str) -> dict[str, Any]:
    """A ``user_joined`` or ``user_left`` event, worded as in the document."""
    verb = "joined" if kind == "user_joined" else "left"
    return {"type": kind, "username": client.username,
            "message": f"{client.username} {verb} the room", "room_id": room_id}

def store_message(client: Client, room_id: str, message: str) -> dict[str, Any]:
    """Save one ChatMessage; the ``new_message`` event that announces it."""
    try:
        saved = ChatMessage(user_id=client.user_id, room_id=room_id, message=message,
                            timestamp=utcnow())
        db.session.add(saved)
        db.session.commit()
        return {"type": "new_message", **message_fields(saved, client.username),
                "room_id": room_id}
    finally:
        db.session.remove()


def message_fields(message: ChatMessage, username: str | None = None) -> dict[str, Any]:
    return {
        "id": message.id,
        "user_id": message.user_id,
        "username": username or message.user.name,
        "message": message.message,
        "timestamp": isoformat(message.timestamp),
    }


def _user_name(user_id: int) -> str | None:
    try:
        user = db.session.get(User, user_id)
        return user.name if user else None
    finally:
        db.session.remove()


def int_param(query: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    return query_int(query.get(name, [None])[0], name, default, low, high)


def json_response(status: int, body: Any) -> Response:
    payload = json.dumps(body).encode()
    headers = Headers([("Content-Type", "application/json"),
                       ("Content-Length", str(len(payload))), ("Cache-Control", "no-store")])
    return Response(status, http.HTTPStatus(status).phrase, headers, payload)


def error_response(error: APIError) -> Response:
    return json_response(error.status, error.to_dict())


def static_response(name: str) -> Response:
    payload, content_type = static_file(__package__, name)
    headers = Headers([("Content-Type", content_type),
                       ("Content-Length", str(len(payload))),
                       ("Content-Security-Policy", "default-src 'self'; connect-src 'self'")])
    return Response(200, "OK", headers, payload)


_loggers = itertools.count(1)


def _handle_logger(log: collections.deque[str]) -> logging.Logger:
    """A logger of its own for each server, whose lines go to its handle."""
    return logger_for(f"labsupport.chat.server{next(_loggers)}", log)


# --- start ------------------------------------------------------------------

class ChatHandle(AsyncioHandle):
    """The chat server: its WebSocket address, sample users' tokens, and dropping users."""

    app: ChatServer

    @property
    def ws_url(self) -> str:
        """The WebSocket address, ``ws://127.0.0.1:<port>/ws``."""
        return f"ws://{self.host}:{self.port}/ws"

    def token_for(self, user_id: int) -> str:
        """A token for one of the sample users (101-125)."""
        return self.app.tokens.token_for(user_id)

    def drop(self, user_id: int) -> int:
        """Close ``user_id``'s connections with 1012 (service restart), to try reconnecting."""
        result: int = self.loop.run(self.app.close_user(user_id))
        return result


def start(
    *,
    fresh_data: bool = True,
    name: str = "websockets",
    handlers: dict[str, Callable[..., Any]] | None = None,
    handshake: Callable[..., tuple[int, int | None]] = authorize,
    allowed_origins: Iterable[str] = (),
    max_size: int = MAX_FRAME_BYTES,
) -> ChatHandle:
    """Start the chat server in the background; returns its handle.

    ``server.ws_url`` is the WebSocket address, ``server.token_for(user_id)``
    makes a token for one of the sample users (101-125), ``server.drop(user_id)``
    closes that user's connections (1012), ``server.app`` is the live
    :class:`ChatServer`. ``handlers`` (message type -> function) and
    ``handshake`` let exercises plug a learner's code into the server;
    ``allowed_origins`` adds origins besides the lab's own page.
    """
    database.ready(fresh_data)
    log: collections.deque[str] = collections.deque(maxlen=LOG_LINES_KEPT)
    chat = ChatServer(handlers=handlers, handshake=handshake,
                      allowed_origins=allowed_origins, log=log)

    async def listen() -> tuple[int, Callable[[], Any]]:
        server = await serve(
            chat.handler, LOOPBACK, 0, process_request=chat.process_request,
            max_size=max_size, logger=chat.logger, close_timeout=2,
        )
        port = server.sockets[0].getsockname()[1]

        async def aclose() -> None:
            server.close(code=CloseCode.GOING_AWAY, reason="the lab server is stopping")
            await asyncio.wait_for(server.wait_closed(), 5)

        return port, aclose

    return serve_asyncio(name, listen, app=chat, log=log, handle=ChatHandle)
