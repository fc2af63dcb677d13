"""A payment-style POST made safe to retry with an ``Idempotency-Key`` header.

The header comes from the IETF draft "The Idempotency-Key HTTP Header Field"
(draft-ietf-httpapi-idempotency-key-header). The server remembers, per key,
a fingerprint of the request body and the response it gave:

- the same key and body again: the stored response, replayed (nothing charged);
- the same key with another body: 422, the key is being misused;
- the same key while the first request is still running: 409, retry later;
- no key: charged every time (``require_key=True`` makes it a 400 instead).

``lose_responses=n`` makes the server charge and then drop the connection
without answering, ``n`` times: the network failure that makes clients retry.
``handle.unavailable(n)`` answers the next ``n`` POSTs ``503``, charging nothing: an
overloaded server, the status a client retries after a wait.
``ledger.attempts`` holds every POST the server received (when, and its body), whatever it
answered; ``ledger.busy_answers`` when each 503 was answered.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from ...api_errors import APIError, OrderedJSONProvider, install_error_handlers, json_object
from ...harness import ServerHandle, serve_wsgi

__all__ = ["PaymentLedger", "PaymentsHandle", "create_app", "start"]

KEY_HEADER = "Idempotency-Key"


class PaymentLedger:
    """The charges made, and what each idempotency key was answered."""

    def __init__(self) -> None:
        self.charges: list[dict[str, Any]] = []
        self.responses: dict[str, tuple[str, int, dict[str, Any]]] = {}
        self.in_flight: set[str] = set()
        self.attempts: list[tuple[float, dict[str, Any] | None]] = []  # (when, body) per POST
        self.unavailable_left = 0
        self.busy_answers: list[float] = []   # when each 503 was answered
        self.lock = threading.Lock()

    def charge(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            payment = {"id": f"pay_{len(self.charges) + 1}", **body, "status": "succeeded"}
            self.charges.append(payment)
            return payment


def _fingerprint(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _valid_payment(body: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {f: ["Unknown field"] for f in body
                                    if f not in ("amount_cents", "to")}
    amount, to = body.get("amount_cents"), body.get("to")
    if type(amount) is not int or not 1 <= amount <= 1_000_000:
        errors["amount_cents"] = ["Must be a whole number of cents from 1 to 1000000"]
    if not isinstance(to, str) or not 1 <= len(to) <= 64:
        errors["to"] = ["Must be an account name of 1 to 64 characters"]
    if errors:
        raise APIError(422, "Validation failed", details=errors)
    return {"amount_cents": amount, "to": to}


def _drop_connection() -> None:
    """Close the client's connection without a response, as a failing network would."""
    raw = request.environ.get("werkzeug.socket")
    if raw is not None:
        raw.shutdown(socket.SHUT_RDWR)


@dataclass
class _PaymentsLab:
    """What the routes serve from, kept in ``app.extensions["interview-payments"]``."""

    ledger: PaymentLedger
    require_key: bool
    losses_left: int


routes = Blueprint("interview-payments", __name__)


def _lab() -> _PaymentsLab:
    lab: _PaymentsLab = current_app.extensions["interview-payments"]
    return lab


def create_app(ledger: PaymentLedger, *, require_key: bool = False,
               lose_responses: int = 0) -> Flask:
    """``POST /api/payments`` (idempotent with a key) and ``GET /api/payments`` (the ledger)."""
    app = Flask(__name__)
    app.json = OrderedJSONProvider(app)
    install_error_handlers(app)
    app.extensions["interview-payments"] = _PaymentsLab(ledger, require_key, lose_responses)
    app.register_blueprint(routes)
    return app


def _respond(payment: dict[str, Any]) -> Response:
    lab = _lab()
    with lab.ledger.lock:
        lose = lab.losses_left > 0
        lab.losses_left -= lose
    if lose:
        _drop_connection()
    response = jsonify(payment)
    response.status_code = 201
    return response


@routes.post("/api/payments")
def pay() -> Response:
    lab = _lab()
    ledger = lab.ledger
    raw = request.get_json(silent=True)
    with ledger.lock:
        ledger.attempts.append((time.monotonic(), raw if isinstance(raw, dict) else None))
        busy = ledger.unavailable_left > 0
        ledger.unavailable_left -= busy
    if busy:
        with ledger.lock:
            ledger.busy_answers.append(time.monotonic())
        raise APIError(503, "The payment service is overloaded; retry after a pause")
    body = _valid_payment(json_object())
    key = request.headers.get(KEY_HEADER)
    if key is None:
        if lab.require_key:
            raise APIError(400, f"Send an {KEY_HEADER} header so this POST can be retried",
                           details={KEY_HEADER: ["Required"]})
        return _respond(ledger.charge(body))
    if not 1 <= len(key) <= 255:
        raise APIError(400, f"Invalid {KEY_HEADER}", details={
            KEY_HEADER: ["Must be 1 to 255 characters"]})
    fingerprint = _fingerprint(body)
    with ledger.lock:
        stored = ledger.responses.get(key)
        if stored is None and key in ledger.in_flight:
            raise APIError(409, "A request with this Idempotency-Key is still being "
                                "processed; retry later", details={KEY_HEADER: [key]})
        if stored is None:
            ledger.in_flight.add(key)
    if stored is not None:
        if stored[0] != fingerprint:
            raise APIError(422, f"This {KEY_HEADER} was used with a different body",
                           details={KEY_HEADER: [key]})
        response = jsonify(stored[2])
        response.status_code = stored[1]
        response.headers["Idempotent-Replayed"] = "true"
        return response
    try:
        payment = ledger.charge(body)
        with ledger.lock:
            ledger.responses[key] = (fingerprint, 201, payment)
    finally:
        with ledger.lock:
            ledger.in_flight.discard(key)
    return _respond(payment)


@routes.get("/api/payments")
def payments() -> Response:
    ledger = _lab().ledger
    with ledger.lock:
        return jsonify({"charges": list(ledger.charges)})


class PaymentsHandle(ServerHandle):
    """The payment server: ``ledger.charges`` lists every charge made."""

    ledger: PaymentLedger

    def unavailable(self, count: int) -> None:
        """Answer the next ``count`` POSTs ``503 Service Unavailable``, charging nothing."""
        with self.ledger.lock:
            self.ledger.unavailable_left = count


def start(*, name: str = "payments", require_key: bool = False,
          lose_responses: int = 0) -> PaymentsHandle:
    """Serve the payment API; ``handle.ledger.charges`` lists every charge made."""
    ledger = PaymentLedger()
    app = create_app(ledger, require_key=require_key, lose_responses=lose_responses)
    return serve_wsgi(name, app, handle=PaymentsHandle, ledger=ledger)
