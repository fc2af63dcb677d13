"""The long-polling lab: the document's notification API, corrected, and a polling client.

``start()`` serves it in the background of the kernel::

    from labsupport import long_polling
    server = long_polling.start()
    poller = long_polling.Poller(server.url, "user-123", timeout=1)
    poller.poll()        # the notifications after poller.cursor (waits up to 1 s)

What it adds to the document's code: a sequence cursor per user (1, 2, 3...)
instead of timestamps, so ids never collide and nothing is skipped; reads that
never delete, so every tab of a user receives every notification; the check
and the wait under one ``threading.Condition``, so no wake-up is lost; the
wait bounded by the request's timeout (at most ``max_timeout``); a bounded
history, with 410 Gone when a cursor is older than it; and clear 4xx errors in
the document's envelope for every bad input.
"""

from __future__ import annotations

import math
import random
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import requests
from flask import Blueprint, Flask, Response, current_app, jsonify, request

from ...api_errors import (
    EVENT_TYPE_RULE,
    APIError,
    OrderedJSONProvider,
    install_error_handlers,
    is_event_type,
    json_object,
    query_int,
)
from ...database import isoformat, utcnow
from ...harness import ServerHandle, serve_wsgi
from ...pages import static_response

__all__ = [
    "Inbox", "NotificationHub", "CursorGone", "create_app", "start", "Poller", "retry_delay",
    "USERS", "MAX_BATCH",
]

USERS = ("user-123", "user-456", "ada", "alan")
MAX_BATCH = 100
CLIENT_CHECK_INTERVAL = 0.25  # how often a held poll checks that its client is still there


class CursorGone(Exception):
    """The history no longer holds the notifications after this cursor."""

    def __init__(self, cursor: int, oldest: int, latest: int) -> None:
        super().__init__(f"notifications after {cursor} are gone; the oldest kept is {oldest}")
        self.oldest = oldest
        self.latest = latest


class Inbox:
    """One user's notifications: ids 1, 2, 3..., a bounded history, and the polls waiting."""

    def __init__(self, history: int) -> None:
        self.changed = threading.Condition()
        self.history: deque[dict[str, Any]] = deque(maxlen=history)
        self.latest = 0
        self.waiting = 0

    def add(self, type: str, data: Any) -> dict[str, Any]:
        with self.changed:
            self.latest += 1
            notification = {"id": self.latest, "type": type, "data": data,
                            "timestamp": isoformat(utcnow())}
            self.history.append(notification)
            self.changed.notify_all()
        return notification

    def after(self, cursor: int) -> list[dict[str, Any]]:
        """Notifications after ``cursor`` (call holding ``changed``); raises CursorGone."""
        if cursor > self.latest:
            raise ValueError(f"cursor {cursor} is ahead of the latest notification "
                             f"({self.latest})")
        oldest = self.history[0]["id"] if self.history else self.latest + 1
        if cursor < oldest - 1:
            raise CursorGone(cursor, oldest, self.latest)
        return [n for n in self.history if n["id"] > cursor][:MAX_BATCH]


class NotificationHub:
    """Every user's inbox; ``poll`` checks and waits under one lock, so no wake-up is lost."""

    def __init__(self, users: tuple[str, ...] = USERS, history: int = 100) -> None:
        self.inboxes = {user: Inbox(history) for user in users}
        self._stopped = False

    def send(self, user_id: str, type: str, data: Any) -> dict[str, Any]:
        return self.inboxes[user_id].add(type, data)

    def poll(self, user_id: str, cursor: int, timeout: float,
             client_gone: Callable[[], bool] | None = None) -> tuple[list[dict[str, Any]], bool]:
        """Notifications after ``cursor``, waiting up to ``timeout`` s; ``(batch, timed_out)``.

        ``client_gone``, checked every ``CLIENT_CHECK_INTERVAL`` s, ends the wait
        early when the client has hung up, so no thread outlives its client.
        """
        inbox = self.inboxes[user_id]
        deadline = time.monotonic() + timeout
        with inbox.changed:
            batch = inbox.after(cursor)
            if batch or timeout <= 0:
                return batch, not batch
            inbox.waiting += 1
            try:
                while not inbox.changed.wait_for(
                        lambda: inbox.latest > cursor or self._stopped,
                        min(CLIENT_CHECK_INTERVAL, max(0.0, deadline - time.monotonic()))):
                    if time.monotonic() >= deadline or (client_gone and client_gone()):
                        break
            finally:
                inbox.waiting -= 1
            batch = inbox.after(cursor)
            return batch, not batch

    def waiting(self) -> int:
        """Polls being held open right now, over every user."""
        return sum(inbox.waiting for inbox in self.inboxes.values())

    def stop(self) -> None:
        """Answer every waiting poll now; used when the server stops."""
        self._stopped = True
        for inbox in self.inboxes.values():
            with inbox.changed:
                inbox.changed.notify_all()


# --- the app ----------------------------------------------------------------


def _query_seconds(name: str, default: float, high: float) -> float:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 <= value <= high:
        raise APIError(400, f"Invalid query parameter {name!r}", "INVALID_PARAMETER",
                       {name: [f"must be a number of seconds from 0 to {high:g}, "
                               f"got {raw[:40]!r}"]})
    return value


def _client_gone_check() -> Callable[[], bool] | None:
    """A check that the client of this request has closed its connection (EOF on the socket)."""
    connection = request.environ.get("werkzeug.socket")
    if connection is None:
        return None

    def gone() -> bool:
        try:
            readable, _, _ = select.select([connection], [], [], 0)
            return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    return gone


@dataclass
class _LongPollingLab:
    """What the long-polling routes serve from, kept in ``app.extensions["long_polling"]``."""

    hub: NotificationHub
    max_timeout: float


routes = Blueprint("long_polling", __name__)


def _lab() -> _LongPollingLab:
    lab: _LongPollingLab = current_app.extensions["long_polling"]
    return lab


def _hub() -> NotificationHub:
    return _lab().hub


def create_app(hub: NotificationHub, *, max_timeout: float = 30.0) -> Flask:
    """Build the long-polling lab's Flask app around ``hub``.

    A poll waits at most ``?timeout=`` seconds (default and cap ``max_timeout``).
    """
    app = Flask(__name__, static_folder=None)
    app.json = OrderedJSONProvider(app)
    install_error_handlers(app)
    app.extensions["long_polling"] = _LongPollingLab(hub, max_timeout)
    app.register_blueprint(routes)
    return app


def _known_inbox(user_id: str) -> Inbox:
    inboxes = _hub().inboxes
    if user_id not in inboxes:
        raise APIError(404, f"User {user_id!r} not found", details={
            "user_id": [f"the users are {', '.join(inboxes)}"]})
    return inboxes[user_id]


def _poll_response(user_id: str) -> Response:
    _known_inbox(user_id)
    cursor = query_int(request.args.get("cursor"), "cursor", 0, 0)
    max_timeout = _lab().max_timeout
    timeout = _query_seconds("timeout", max_timeout, max_timeout)
    try:
        batch, timed_out = _hub().poll(user_id, cursor, timeout, _client_gone_check())
    except ValueError as exc:
        raise APIError(400, "Invalid query parameter 'cursor'", "INVALID_PARAMETER",
                       {"cursor": [str(exc)]}) from None
    except CursorGone as exc:
        raise APIError(410, "Cursor too old: fetch the snapshot and poll from its cursor",
                       details={"cursor": [str(exc)], "oldest": exc.oldest,
                                "latest": exc.latest}) from None
    latest = _hub().inboxes[user_id].latest
    next_cursor = batch[-1]["id"] if batch else cursor
    return jsonify({"notifications": batch, "cursor": next_cursor,
                    "has_more": next_cursor < latest, "timeout": timed_out})


def _valid_body(fields: dict[str, type]) -> dict[str, Any]:
    body = json_object()
    errors = {f: ["Unknown field"] for f in body if f not in fields}
    for field, kind in fields.items():
        if field not in body:
            if kind is not dict:
                errors[field] = ["is required"]
        elif not isinstance(body[field], kind):
            errors[field] = [f"must be {'an object' if kind is dict else 'a string'}"]
    user = body.get("user_id", body.get("recipient_id"))
    if isinstance(user, str) and user not in _hub().inboxes:
        errors["user_id" if "user_id" in fields else "recipient_id"] = [
            f"no user {user[:40]!r}; the users are {', '.join(_hub().inboxes)}"]
    if isinstance(body.get("type"), str) and not is_event_type(body["type"]):
        errors["type"] = [EVENT_TYPE_RULE]
    if errors:
        raise APIError(422, "Validation failed", details=errors)
    return body


@routes.get("/", defaults={"name": "long-polling.html"})
@routes.get("/static/long-polling-client.js", defaults={"name": "long-polling-client.js"})
def page(name: str) -> Response:
    """The browser page and its script, from ``static/`` beside this module."""
    return static_response(__package__, name)


@routes.get("/api/notifications/<user_id>/poll")
def poll_notifications(user_id: str) -> Response:
    """Notifications after ``?cursor=`` (default 0), held up to ``?timeout=`` seconds."""
    return _poll_response(user_id)


@routes.get("/api/notifications/<user_id>")
def snapshot(user_id: str) -> Response:
    """What the history still holds, and the cursor to poll from after it (410 resync)."""
    inbox = _known_inbox(user_id)
    with inbox.changed:
        return jsonify({"notifications": list(inbox.history), "cursor": inbox.latest})


@routes.post("/api/notifications/send")
def send_notification() -> tuple[Response, int]:
    body = _valid_body({"user_id": str, "type": str, "data": dict})
    notification = _hub().send(body["user_id"], body["type"], body.get("data", {}))
    return jsonify({"status": "sent", "id": notification["id"]}), 201


@routes.get("/api/poll/<user_id>")
def long_poll(user_id: str) -> Response:
    """The document's message poll: the same inbox, messages are type ``message``."""
    return _poll_response(user_id)


@routes.post("/api/send_message")
def send_message() -> tuple[Response, int]:
    body = _valid_body({"recipient_id": str, "sender_id": str, "message": str})
    notification = _hub().send(body["recipient_id"], "message", {
        "sender_id": body["sender_id"], "message": body["message"]})
    return jsonify({"status": "sent", "message_id": notification["id"]}), 201


@routes.get("/api/stats")
def stats() -> Response:
    return jsonify({"waiting": _hub().waiting(),
                    "latest": {u: inbox.latest for u, inbox in _hub().inboxes.items()}})



class LongPollingHandle(ServerHandle):
    """The long-polling lab's server: ``hub`` sends notifications directly."""

    hub: NotificationHub


def start(*, name: str = "long-polling", users: tuple[str, ...] = USERS, history: int = 100,
          max_timeout: float = 30.0) -> LongPollingHandle:
    """Serve the long-polling lab on 127.0.0.1 (a free port); ``handle.hub`` sends directly."""
    hub = NotificationHub(users, history)
    return serve_wsgi(name, create_app(hub, max_timeout=max_timeout), on_stop=hub.stop,
                      handle=LongPollingHandle, hub=hub)


# --- the client ---------------------------------------------------------------


def retry_delay(attempt: int, base: float = 0.5, cap: float = 30.0,
                rng: random.Random | None = None) -> float:
    """Seconds to wait before retry ``attempt`` (0, 1, 2...): exponential, capped, full jitter."""
    return (rng or random).uniform(0, min(cap, base * 2 ** attempt))


class Poller:
    """A long-polling client that never loses a notification.

    It sends the cursor of the last notification it received, so a lost
    response is simply asked for again; on 410 it reloads the snapshot; on
    errors it backs off with jitter.
    """

    def __init__(self, base_url: str, user_id: str, *, cursor: int = 0, timeout: float = 25.0,
                 session: requests.Session | None = None) -> None:
        self.base_url = base_url
        self.user_id = user_id
        self.cursor = cursor
        self.timeout = timeout
        self.requests = 0
        self.resyncs = 0
        self._session = session or requests.Session()

    def poll(self, timeout: float | None = None) -> list[dict[str, Any]]:
        """One long poll: the notifications after the cursor (maybe none), cursor advanced."""
        wait = self.timeout if timeout is None else timeout
        url = f"{self.base_url}/api/notifications/{self.user_id}/poll"
        self.requests += 1
        response = self._session.get(url, params={"cursor": self.cursor, "timeout": wait},
                                     timeout=(5, wait + 5))
        if response.status_code == 410:
            return self.resync()
        response.raise_for_status()
        body = response.json()
        self.cursor = body["cursor"]
        return body["notifications"]

    def resync(self) -> list[dict[str, Any]]:
        """After 410: take what the server still holds and poll on from its cursor."""
        self.resyncs += 1
        response = self._session.get(f"{self.base_url}/api/notifications/{self.user_id}",
                                     timeout=5)
        response.raise_for_status()
        body = response.json()
        self.cursor = body["cursor"]
        return body["notifications"]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Every notification, forever; errors are retried with backoff."""
        failures = 0
        while True:
            try:
                batch = self.poll()
            except (requests.RequestException, ValueError):
                time.sleep(retry_delay(failures))
                failures += 1
                continue
            failures = 0
            yield from batch
