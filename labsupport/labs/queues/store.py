"""The queues lab's tables, in the labs' SQLite database: effects, processed ids, the outbox.

``notifications`` is the side effect of the notification service (one row per
notification "sent"); ``processed_messages`` holds the id of every message a
consumer has handled, written in the same transaction as the effect, which is
what makes the consumer idempotent; ``outbox`` holds messages an order service
wrote with its order, for a relay to publish.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from ... import database

__all__ = ["metadata", "notifications", "processed_messages", "outbox", "ensure_tables",
           "effects_count", "duplicate_effects", "texts", "writer_engine", "mark_processed"]

metadata = MetaData()
_writers: dict[str, Engine] = {}
_writers_lock = threading.Lock()

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


def _begin_immediate(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we say BEGIN ourselves (pysqlite's is late)
    # A commit survives this process crashing; only a power cut could lose the last ones.
    # The lab's file is temporary, and a disk sync per batch would dominate every timing.
    dbapi_connection.execute("PRAGMA synchronous = OFF")


def _on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def writer_engine(engine: Engine | None = None) -> Engine:
    """An engine on the same SQLite file whose transactions take the write lock at BEGIN.

    Workers write in every transaction: ``BEGIN IMMEDIATE`` makes them queue
    for the lock instead of failing with "database is locked", and real
    transactions make savepoints cheap (pysqlite would otherwise commit, with
    a disk sync, at every savepoint's release).
    """
    engine = engine or database.current_engine()
    with _writers_lock:
        writer = _writers.get(str(engine.url))
        if writer is None:
            writer = create_engine(engine.url, connect_args={"check_same_thread": False,
                                                             "timeout": 10})
            event.listen(writer, "connect", _begin_immediate)
            event.listen(writer, "begin", _on_begin)
            _writers[str(engine.url)] = writer
    return writer


def ensure_tables(engine: Engine | None = None) -> Engine:
    """Create the lab's tables (default: in the current lab database); its writer engine."""
    engine = engine or database.current_engine()
    metadata.create_all(engine)
    return writer_engine(engine)


def mark_processed(conn: Connection, message_id: str, consumer: str) -> bool:
    """Record ``message_id`` as handled by ``consumer``; False if it already was.

    A write, not a read then a write: the transaction takes SQLite's write lock
    on its first statement, so concurrent workers wait for each other instead
    of failing with "database is locked".
    """
    inserted = conn.execute(sqlite_insert(processed_messages).values(
        message_id=message_id, consumer=consumer).on_conflict_do_nothing())
    return inserted.rowcount == 1


def effects_count(engine: Engine | None = None) -> int:
    """How many notifications have been recorded."""
    with (engine or database.current_engine()).connect() as conn:
        return conn.execute(select(func.count()).select_from(notifications)).scalar_one()


def texts(engine: Engine | None = None) -> list[str]:
    """The text of every notification recorded, oldest first."""
    with (engine or database.current_engine()).connect() as conn:
        return list(conn.execute(select(notifications.c.text).order_by(notifications.c.id))
                    .scalars())


def duplicate_effects(engine: Engine | None = None) -> int:
    """Notifications recorded more than once for the same message id."""
    with (engine or database.current_engine()).connect() as conn:
        counts = select(notifications.c.message_id, func.count().label("n")).group_by(
            notifications.c.message_id).subquery()
        return conn.execute(select(func.coalesce(func.sum(counts.c.n - 1), 0))).scalar_one()
