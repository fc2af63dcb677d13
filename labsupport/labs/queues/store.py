"""The queues lab's tables, in the labs' SQLite database: effects, processed ids, the outbox.

``notifications`` is the side effect of the notification service (one row per
notification "sent"); ``processed_messages`` holds the id of every message a
consumer has handled, written in the same transaction as the effect, which is
what makes the consumer idempotent; ``outbox`` holds messages an order service
wrote with its order, for a relay to publish.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    func,
    select,
)
from sqlalchemy.engine import Connection, Engine

from ... import database

__all__ = ["metadata", "notifications", "processed_messages", "outbox", "ensure_tables",
           "effects_count", "duplicate_effects"]

metadata = MetaData()

notifications = Table(
    "queue_notifications", metadata,
    Column("id", Integer, primary_key=True),
    Column("message_id", String(100), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("text", String(500), nullable=False),
)

processed_messages = Table(
    "queue_processed_messages", metadata,
    Column("message_id", String(100), primary_key=True),
    Column("consumer", String(64), primary_key=True),
)

outbox = Table(
    "queue_outbox", metadata,
    Column("id", Integer, primary_key=True),
    Column("message_id", String(100), nullable=False, unique=True),
    Column("subject", String(200), nullable=False),
    Column("body", JSON, nullable=False),
    Column("published", Integer, nullable=False, default=0),
)


def ensure_tables(engine: Engine | None = None) -> Engine:
    """Create the lab's tables in ``engine`` (default: the current lab database)."""
    engine = engine or database.current_engine()
    metadata.create_all(engine)
    return engine


def mark_processed(conn: Connection, message_id: str, consumer: str) -> bool:
    """Record ``message_id`` as handled by ``consumer``; False if it already was."""
    exists = conn.execute(select(processed_messages.c.message_id).where(
        processed_messages.c.message_id == message_id,
        processed_messages.c.consumer == consumer)).first()
    if exists:
        return False
    conn.execute(processed_messages.insert().values(message_id=message_id, consumer=consumer))
    return True


def effects_count(engine: Engine | None = None) -> int:
    """How many notifications have been recorded."""
    with (engine or database.current_engine()).connect() as conn:
        return conn.execute(select(func.count()).select_from(notifications)).scalar_one()


def duplicate_effects(engine: Engine | None = None) -> int:
    """Notifications recorded more than once for the same message id."""
    with (engine or database.current_engine()).connect() as conn:
        counts = select(notifications.c.message_id, func.count().label("n")).group_by(
            notifications.c.message_id).subquery()
        return conn.execute(select(func.coalesce(func.sum(counts.c.n - 1), 0))).scalar_one()
