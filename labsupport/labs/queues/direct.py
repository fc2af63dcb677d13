"""The direct way: an order service calls a notification service over HTTP, synchronously.

``start_notifier()`` serves the notification service (``POST /notify``); its
``delay`` and ``down`` settings make it slow or failing from a cell. Its side
effect is a list on the handle, ``handle.sent``: one entry per notification
"sent", duplicates included. ``notify(url, order, ...)`` is the order
service's call, with a timeout, retries with exponential backoff, and an
optional :class:`CircuitBreaker`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from flask import Flask, Response, jsonify

from ...api_errors import APIError, install_error_handlers, json_object
from ...harness import ServerHandle, serve_wsgi

__all__ = ["start_notifier", "NotifierHandle", "notify", "CircuitBreaker", "CircuitOpen",
           "NotifyFailed"]


@dataclass
class NotifierSettings:
    """How the notification service behaves right now (changed from cells)."""

    delay: float = 0.0          # seconds each notification takes
    down: bool = False          # answer 503 to everything
    sent: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def create_notifier_app(settings: NotifierSettings) -> Flask:
    """The notification service: ``POST /notify`` with ``{"order_id", "user_id"}``."""
    app = Flask(__name__)
    install_error_handlers(app)

    @app.post("/notify")
    def send() -> tuple[Response, int]:
        if settings.down:
            raise APIError(503, "Notification service unavailable")
        body = json_object()
        if "order_id" not in body or "user_id" not in body:
            raise APIError(422, "Validation failed", details={
                f: ["Required"] for f in ("order_id", "user_id") if f not in body})
        time.sleep(settings.delay)
        with settings.lock:
            settings.sent.append({"order_id": body["order_id"], "user_id": body["user_id"]})
        return jsonify({"status": "sent"}), 202

    return app


class NotifierHandle(ServerHandle):
    """The running notification service: ``settings`` (change its delay, take it down)
    and ``sent``, the notifications it has sent so far."""

    settings: NotifierSettings
    sent: list[dict[str, Any]]


def start_notifier(*, name: str = "queues-notifier", delay: float = 0.0) -> NotifierHandle:
    """Serve the notification service; ``handle.settings`` changes its delay or takes it down."""
    settings = NotifierSettings(delay=delay)
    return serve_wsgi(name, create_notifier_app(settings), handle=NotifierHandle,
                      settings=settings, sent=settings.sent)


class NotifyFailed(Exception):
    """The notification could not be delivered; ``attempts`` says how often we tried."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class CircuitOpen(NotifyFailed):
    """The breaker is open: we fail at once instead of waiting for a dead service."""


class CircuitBreaker:
    """Closed until ``threshold`` failures in a row; then open for ``reset_after`` seconds.

    While open every call fails at once (``CircuitOpen``); after ``reset_after``
    one trial call is let through (half-open): success closes it, failure
    opens it again.
    """

    def __init__(self, threshold: int = 3, reset_after: float = 1.0) -> None:
        self.threshold = threshold
        self.reset_after = reset_after
        self.failures = 0
        self.opened_at: float | None = None

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if time.monotonic() - self.opened_at >= self.reset_after else "open"

    def allow(self) -> bool:
        return self.state != "open"

    def record(self, ok: bool) -> None:
        if ok:
            self.failures, self.opened_at = 0, None
            return
        self.failures += 1
        if self.failures >= self.threshold or self.opened_at is not None:
            self.opened_at = time.monotonic()


def notify(url: str, order: dict[str, Any], *, timeout: float = 1.0, retries: int = 0,
           backoff: float = 0.05, breaker: CircuitBreaker | None = None,
           session: requests.Session | None = None) -> int:
    """POST ``order`` to the notification service; the number of attempts it took.

    Retries after a timeout, a connection error or a 5xx, waiting ``backoff``,
    then twice that, and so on. Raises :class:`NotifyFailed` when every
    attempt failed, :class:`CircuitOpen` when the breaker refuses the call.
    """
    http = session or requests
    last = "not attempted"
    for attempt in range(1, retries + 2):
        if breaker is not None and not breaker.allow():
            raise CircuitOpen("circuit open: not calling the notification service", attempt - 1)
        try:
            reply = http.post(f"{url}/notify", json=order, timeout=timeout)
            ok = reply.status_code < 500
            last = f"HTTP {reply.status_code}"
        except requests.Timeout:
            ok, last = False, f"no answer within {timeout:g} s"
        except requests.ConnectionError:
            ok, last = False, "connection refused"
        if breaker is not None:
            breaker.record(ok)
        if ok:
            return attempt
        if attempt <= retries:
            time.sleep(backoff * 2 ** (attempt - 1))
    raise NotifyFailed(f"notification failed after {retries + 1} attempt(s): {last}",
                       retries + 1)
