"""The transactional outbox: an order and its message written in one transaction, then relayed.

Publishing right after the database commit loses the message if the process
dies between the two; publishing before the commit announces an order that
may never exist. Instead :func:`place_order` writes the order row and an
``queue_outbox`` row in the same transaction, and a :class:`Relay` publishes
unpublished outbox rows with ``Nats-Msg-Id`` set to the row's message id, then
marks them published. A relay that dies between publish and mark publishes
again on restart, and the stream drops the duplicate by its id.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine

from ... import database
from . import store
from .bus import Bus
from .subjects import subject

__all__ = ["place_order", "publish_pending", "Relay"]


def place_order(conn: Connection, user_id: int, item: str, quantity: int = 1,
                total_cents: int = 0) -> dict[str, Any]:
    """Insert an order and its ``orders.created.<user>`` message in the caller's transaction."""
    inserted = conn.execute(insert(database.Order).values(
        user_id=user_id, item=item, quantity=quantity, total_cents=total_cents,
        status="pending", created_at=database.utcnow()))
    assert inserted.inserted_primary_key is not None
    order_id = inserted.inserted_primary_key[0]
    body = {"order_id": order_id, "user_id": str(user_id), "item": item, "quantity": quantity}
    message_id = f"order-{order_id}-{uuid.uuid4().hex[:8]}"
    conn.execute(store.outbox.insert().values(
        message_id=message_id, subject=subject("orders.created", user_id), body=body))
    return {**body, "message_id": message_id}


def publish_pending(engine: Engine, bus: Bus, limit: int = 100) -> int:
    """Publish up to ``limit`` unpublished outbox rows, oldest first; how many were sent."""
    with engine.connect() as conn:
        rows = conn.execute(select(store.outbox).where(store.outbox.c.published == 0)
                            .order_by(store.outbox.c.id).limit(limit)).all()
    for row in rows:
        bus.publish(row.subject, row.body, msg_id=row.message_id)
        with engine.begin() as conn:
            conn.execute(update(store.outbox).where(store.outbox.c.id == row.id)
                         .values(published=1))
    return len(rows)


class Relay:
    """Publishes the outbox in a background thread, woken by :meth:`wake` or every ``interval``."""

    def __init__(self, engine: Engine, bus: Bus, *, interval: float = 0.2) -> None:
        self.engine, self.bus, self.interval = engine, bus, interval
        self.published = 0
        self.errors: list[str] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
        self.thread.start()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.published += publish_pending(self.engine, self.bus)
            except Exception as exc:  # broker away: the rows wait in the outbox
                self.errors.append(f"{type(exc).__name__}: {exc}")
                del self.errors[:-20]

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.thread.join(5)
