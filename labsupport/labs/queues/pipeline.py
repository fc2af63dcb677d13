"""Interview question Q5 end to end: User action -> API -> queue -> notification service -> push.

``start(broker)`` serves one Flask app on 127.0.0.1 (a free port) that joins
the pieces of the labs:

- ``POST /orders`` (REST lab style, the document's error envelope) writes the
  order and its message in one transaction (the outbox); a relay publishes it
  to the ``ORDERS`` stream;
- a notification :class:`~.worker.Worker` consumes the stream, records each
  notification once (idempotent), and pushes it to the user's browser through
  the SSE lab's server (``labsupport.sse``: its app and its broker, reused);
- ``GET /orders-page`` is a page that places orders and shows the user's
  notifications as they arrive (``static/orders.html``).

Stopping the worker (``handle.stop_worker()``) leaves orders waiting in the
stream; ``handle.start_worker()`` catches up. A user offline meanwhile gets
the missed notifications on reconnect (``Last-Event-ID``).
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from ... import database
from ...api_errors import APIError, json_object
from ...harness import ServerHandle, serve_wsgi
from ...pages import static_response
from ..sse import server as sse
from . import store
from .broker import BrokerHandle
from .bus import Bus
from .outbox import Relay, place_order
from .subjects import InvalidSubject, token
from .worker import Worker, ensure_streams

__all__ = ["start", "PipelineHandle"]

PRICE_CENTS = 1250
_copies = itertools.count(1)


class PipelineHandle(ServerHandle):
    """The Q5 app: ``.sse`` (the SSE broker), ``.worker``, ``.relay``, ``.bus``."""

    sse: sse.Broker
    worker: Worker | None
    relay: Relay
    bus: Bus
    engine: Engine
    servers: list[str]

    def start_worker(self, **options: Any) -> Worker:
        """Start the notification worker (again); it resumes where its durable consumer was."""
        self.stop_worker()
        self.worker = Worker(self.servers, on_commit=self._push, engine=self.engine,
                             **options).start()
        return self.worker

    def stop_worker(self) -> None:
        """Stop the notification worker; orders keep arriving and wait in the stream."""
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    def _push(self, notifications: list[dict[str, Any]]) -> None:
        for note in notifications:
            self.sse.publish("notification", note, to=f"user-{note['user_id']}")


def _orders_blueprint(engine: Any, relay: Relay) -> Blueprint:
    orders = Blueprint("orders", __name__)

    @orders.get("/orders-page")
    def page() -> Response:
        return static_response(__package__, "orders.html")

    @orders.get("/orders-static/orders.js")
    def script() -> Response:
        return static_response(__package__, "orders.js")

    @orders.post("/orders")
    def create_order() -> tuple[Response, int]:
        body = json_object()
        errors: dict[str, list[str]] = {}
        user_id, item, quantity = body.get("user_id"), body.get("item"), body.get("quantity", 1)
        try:
            token(user_id)
        except InvalidSubject as exc:
            errors["user_id"] = [str(exc)]
        if not isinstance(user_id, int) or isinstance(user_id, bool):
            errors.setdefault("user_id", []).append("must be a user's id (a number)")
        if not isinstance(item, str) or not 1 <= len(item.strip()) <= 200:
            errors["item"] = ["must be text of 1-200 characters"]
        if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= 100:
            errors["quantity"] = ["must be a whole number from 1 to 100"]
        unknown = sorted(set(body) - {"user_id", "item", "quantity"})
        errors.update({field: ["Unknown field"] for field in unknown})
        if errors or not isinstance(user_id, int) or not isinstance(item, str):
            raise APIError(422, "Validation failed", details=errors)
        with engine.begin() as conn:
            users = database.User.__table__
            if conn.execute(users.select().where(users.c.id == user_id)).first() is None:
                raise APIError(404, f"User {user_id} not found")
            order = place_order(conn, user_id, item.strip(), quantity, PRICE_CENTS * quantity)
        relay.wake()
        return jsonify(order), 201

    return orders


def _own_database(fresh_data: bool) -> Engine:
    """A SQLite file of the pipeline's own: a copy of the labs' database at start.

    The orders app outlives the cells after it, and any of them may call
    ``database.reset()``, which deletes the shared file; on it, "Place order"
    would answer 500 ("attempt to write a readonly database"). The copy sits in
    the same temporary directory and goes with it when the kernel exits.
    """
    source = database.ready(fresh_data)
    path = Path(source.url.database or "").with_name(f"pipeline-{next(_copies)}.sqlite3")
    with source.connect() as conn, sqlite3.connect(path) as target:
        raw = conn.connection.driver_connection
        assert isinstance(raw, sqlite3.Connection), "the labs' database is SQLite"
        raw.backup(target)
    target.close()
    return create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False,
                                                            "timeout": 10})


def start(broker: BrokerHandle, *, name: str = "queues-pipeline", heartbeat: float = 0.5,
          retry_ms: int = 500, worker: bool = True, fresh_data: bool = True) -> PipelineHandle:
    """Serve the Q5 pipeline against ``broker``; the worker runs unless ``worker=False``.

    Its orders and notifications live in a database of its own (``handle.engine``), a
    copy of the labs' sample data (of the current data with ``fresh_data=False``).
    """
    engine = _own_database(fresh_data)
    writer = store.ensure_tables(engine)
    bus = Bus(broker.servers, name=f"{name}-bus")
    try:
        bus.run(ensure_streams(bus.js))
    except BaseException:
        bus.close()
        raise
    relay = Relay(writer, bus)
    sse_broker = sse.Broker()
    stop = threading.Event()
    app = sse.create_app(sse_broker, heartbeat=heartbeat, retry_ms=retry_ms, stop=stop)
    app.register_blueprint(_orders_blueprint(writer, relay))
    holder: dict[str, PipelineHandle] = {}

    def on_stop() -> None:
        stop.set()
        sse_broker.stop()
        handle = holder["handle"]
        handle.stop_worker()
        relay.stop()
        bus.close()
        writer.dispose()
        engine.dispose()
        Path(engine.url.database or "").unlink(missing_ok=True)

    handle = serve_wsgi(name, app, on_stop=on_stop, handle=PipelineHandle, sse=sse_broker,
                        relay=relay, bus=bus, engine=writer, servers=broker.servers, worker=None)
    holder["handle"] = handle
    if worker:
        handle.start_worker()
    return handle
