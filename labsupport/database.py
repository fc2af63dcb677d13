"""The labs' shared data: a real SQLite database through SQLAlchemy 2.

The document's resources (users with addresses and tags, posts, comments,
orders, chat messages) live here once, so the REST, GraphQL and gRPC labs show
the same records. ``reset()`` gives a fresh database file filled with the same
small, deterministic sample data every time.

The document's code is written Flask-SQLAlchemy style (``User.query.get(1)``,
``db.session.commit()``); ``db.session`` and ``Model.query`` here are plain
SQLAlchemy (a ``scoped_session`` and its ``query_property``), so that code runs
as printed, in any lab, with or without Flask.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import datetime as dt
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    mapped_column,
    relationship,
    scoped_session,
    sessionmaker,
    validates,
)

__all__ = [
    "db", "Base", "User", "Address", "Post", "Comment", "Order", "ChatMessage",
    "reset", "current_engine", "count_statements", "own_session", "delete_posts", "SAMPLE_EPOCH",
    "CATALOG",
]

#: The sample data's clock starts here (naive UTC, as SQLite stores it).
SAMPLE_EPOCH = dt.datetime(2024, 1, 1, 12, 0, 0)


class _Operation:
    """A key for one operation's session (weakly referenced, unlike a bare ``object()``)."""


#: Set by :func:`own_session` for an operation sharing its thread with others (an event loop).
_operation: contextvars.ContextVar[_Operation | None] = contextvars.ContextVar(
    "db_operation", default=None)


def _scope() -> object:
    """The current operation if there is one, else the current thread."""
    return _operation.get() or threading.current_thread()


session = scoped_session(sessionmaker(expire_on_commit=False), scopefunc=_scope)
# Weak keys: a thread's session goes with the thread, as with the default thread-local scope.
session.registry.registry = weakref.WeakKeyDictionary()
#: ``db.session`` as in the document's code.
db = SimpleNamespace(session=session)


@contextlib.contextmanager
def own_session() -> Iterator[None]:
    """Give the code inside, and the asyncio tasks it starts, a ``db.session`` of its own.

    ``db.session`` is one per thread, but an event loop runs many operations on one thread:
    one's ``db.session.remove()`` would detach the rows another is still reading. Enter this
    around each operation; its session is removed on the way out.
    """
    token = _operation.set(_Operation())
    try:
        yield
    finally:
        session.remove()
        _operation.reset(token)


def utcnow() -> dt.datetime:
    """The current time as naive UTC, the way the tables store it."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def isoformat(moment: dt.datetime) -> str:
    """``2024-01-01T12:00:00Z`` for a naive UTC datetime."""
    return moment.isoformat() + "Z"


class Base(DeclarativeBase):
    query = session.query_property()


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(255), unique=True)
    role: Mapped[str] = mapped_column(String(20), default="member")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)

    address: Mapped[Address | None] = relationship(
        back_populates="user", cascade="all, delete-orphan", uselist=False
    )
    posts: Mapped[list[Post]] = relationship(back_populates="author", cascade="all, delete-orphan")
    orders: Mapped[list[Order]] = relationship(back_populates="user", cascade="all, delete-orphan")
    comments: Mapped[list[Comment]] = relationship(
        back_populates="author", cascade="all, delete-orphan"
    )
    chat_messages: Mapped[list[ChatMessage]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    @validates("name", "email")
    def _canonical(self, key: str, value: Any) -> Any:
        """Names are stored trimmed, emails trimmed and lower-cased, whichever lab writes
        them, so the unique constraint sees ``Ada@x.com`` and ``ada@x.com`` as one."""
        if not isinstance(value, str):
            return value  # left for the database (and the labs' validation) to refuse
        value = value.strip()
        return value.lower() if key == "email" else value

    def to_dict(self) -> dict[str, Any]:
        """The v1 representation, as the document's ``user.to_dict()``."""
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "created_at": isoformat(self.created_at),
        }

    to_dict_v1 = to_dict

    def to_dict_v2(self) -> dict[str, Any]:
        """The v2 representation: v1 plus role, tags and address."""
        return {
            **self.to_dict(),
            "role": self.role,
            "tags": list(self.tags or []),
            "address": self.address.to_dict() if self.address else None,
        }


class Address(Base):
    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    street: Mapped[str] = mapped_column(String(200), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    country: Mapped[str] = mapped_column(String(100), default="")
    postal_code: Mapped[str] = mapped_column(String(20), default="")

    user: Mapped[User] = relationship(back_populates="address")

    def to_dict(self) -> dict[str, str]:
        return {
            "street": self.street,
            "city": self.city,
            "country": self.country,
            "postal_code": self.postal_code,
        }


class Post(Base):
    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)

    author: Mapped[User] = relationship(back_populates="posts")
    comments: Mapped[list[Comment]] = relationship(
        back_populates="post", cascade="all, delete-orphan"
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "content": self.content,
            "author_id": self.author_id,
            "created_at": isoformat(self.created_at),
        }


class Comment(Base):
    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    content: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    author: Mapped[User] = relationship(back_populates="comments")
    post: Mapped[Post] = relationship(back_populates="comments")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "content": self.content,
            "author_id": self.author_id,
            "post_id": self.post_id,
            "created_at": isoformat(self.created_at),
        }


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    item: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    total_cents: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="orders")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "item": self.item,
            "quantity": self.quantity,
            "total_cents": self.total_cents,
            "status": self.status,
            "created_at": isoformat(self.created_at),
        }


class ChatMessage(Base):
    __tablename__ = "chat_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    room_id: Mapped[str] = mapped_column(String(100), index=True)
    message: Mapped[str] = mapped_column(Text)
    timestamp: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="chat_messages")


# --- the sample data -------------------------------------------------------

FIRST_USER_ID = 101
_PEOPLE = [
    ("Ada Lovelace", "London", "UK"), ("Alan Turing", "Manchester", "UK"),
    ("Grace Hopper", "Arlington", "USA"), ("Edsger Dijkstra", "Austin", "USA"),
    ("Barbara Liskov", "Cambridge", "USA"), ("Donald Knuth", "Stanford", "USA"),
    ("Margaret Hamilton", "Boston", "USA"), ("Tim Berners-Lee", "Geneva", "CH"),
    ("Radia Perlman", "Seattle", "USA"), ("Vint Cerf", "Reston", "USA"),
    ("Frances Allen", "Yorktown", "USA"), ("Ken Thompson", "Murray Hill", "USA"),
    ("Dennis Ritchie", "Murray Hill", "USA"), ("John McCarthy", "Stanford", "USA"),
    ("Leslie Lamport", "Palo Alto", "USA"), ("Roy Fielding", "Irvine", "USA"),
    ("Hedy Lamarr", "Vienna", "AT"), ("Katherine Johnson", "Hampton", "USA"),
    ("Niklaus Wirth", "Zurich", "CH"), ("Sophie Wilson", "Cambridge", "UK"),
    ("Bjarne Stroustrup", "Aarhus", "DK"), ("Guido van Rossum", "Amsterdam", "NL"),
    ("John Doe", "Anytown", "USA"), ("Adele Goldberg", "Palo Alto", "USA"),
    ("Whitfield Diffie", "Washington", "USA"),
]
_TAGS = [["customer"], ["customer", "premium"], [], ["staff"]]
#: What the sample shop sells, and the price of one in cents.
CATALOG = {"Keyboard": 4999, "Monitor": 18999, "Cable": 999, "Headset": 7999}
_ITEMS = list(CATALOG.items())
_STATUSES = ["pending", "paid", "shipped", "delivered"]
POSTS_COUNT = 60


def _fill(sess: Any) -> None:
    """Insert the deterministic sample data (ids start at 101, so user 123 exists)."""
    for index, (name, city, country) in enumerate(_PEOPLE):
        user_id = FIRST_USER_ID + index
        handle = name.lower().replace(" ", ".")
        user = User(
            id=user_id, name=name, email=f"{handle}@example.com",
            role="admin" if index == 0 else "member", tags=_TAGS[index % len(_TAGS)],
            created_at=SAMPLE_EPOCH + dt.timedelta(days=index),
        )
        user.address = Address(
            street=f"{index + 1} Main St", city=city, country=country,
            postal_code=f"{10000 + index * 37}",
        )
        sess.add(user)
    for index in range(POSTS_COUNT):
        # Every third post shares its second with the one before it: real feeds
        # have ties, and a cursor on the timestamp alone skips them.
        hour = index - index // 3
        sess.add(Post(
            id=index + 1, title=f"Post {index + 1}",
            content=f"Notes number {index + 1} on how systems talk.",
            author_id=FIRST_USER_ID + (index * 7) % 10,
            created_at=SAMPLE_EPOCH + dt.timedelta(hours=hour),
        ))
    for index in range(2 * POSTS_COUNT):
        sess.add(Comment(
            id=index + 1, content=f"Comment {index + 1}", post_id=index % POSTS_COUNT + 1,
            author_id=FIRST_USER_ID + (index * 3) % len(_PEOPLE),
            created_at=SAMPLE_EPOCH + dt.timedelta(hours=index, minutes=30),
        ))
    for index in range(50):
        item, price = _ITEMS[index % len(_ITEMS)]
        quantity = index % 3 + 1
        sess.add(Order(
            id=index + 1, user_id=FIRST_USER_ID + index % 25, item=item, quantity=quantity,
            total_cents=price * quantity, status=_STATUSES[index % len(_STATUSES)],
            created_at=SAMPLE_EPOCH + dt.timedelta(days=index // 2, hours=index % 2),
        ))


# --- one current database per kernel ----------------------------------------

_state = threading.Lock()
_workdir = Path(tempfile.mkdtemp(prefix="protocol-lab-db-"))
atexit.register(shutil.rmtree, _workdir, ignore_errors=True)
_current: Engine | None = None
_generation = 0


def _enable_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA foreign_keys = ON")


def _new_engine(path: Path) -> Engine:
    engine = create_engine(
        f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 10}
    )
    event.listen(engine, "connect", _enable_foreign_keys)
    return engine


def _template(sample: bool) -> Path:
    """A database file built once per process; each reset copies it (about 1 ms)."""
    path = _workdir / ("template-sample.sqlite3" if sample else "template-empty.sqlite3")
    if not path.exists():
        engine = _new_engine(path)
        Base.metadata.create_all(engine)
        if sample:
            with sessionmaker(engine)() as fresh, fresh.begin():
                _fill(fresh)
        engine.dispose()
    return path


def reset(sample: bool = True) -> Engine:
    """Switch ``db.session`` to a fresh SQLite file, filled with the sample data.

    Every lab's ``start()`` calls this unless told to keep the current data.
    """
    global _current, _generation
    with _state:
        _generation += 1
        path = _workdir / f"lab-{_generation}.sqlite3"
        shutil.copyfile(_template(sample), path)
        engine = _new_engine(path)
        session.remove()
        session.configure(bind=engine)
        previous, _current = _current, engine
    if previous is not None:
        previous.dispose()
        Path(previous.url.database or "").unlink(missing_ok=True)
    return engine


def current_engine() -> Engine:
    """The engine ``db.session`` is bound to (a fresh one is made if none yet)."""
    return _current if _current is not None else reset()


def ready(fresh_data: bool) -> Engine:
    """The database a lab starts on: the sample data afresh, or as it is (made if none yet).

    Every lab's ``start(fresh_data=...)`` calls this, so ``fresh_data=False``
    works in a fresh kernel too.
    """
    return reset() if fresh_data else current_engine()


def delete_posts(ids: list[int]) -> None:
    """Delete the posts ``ids`` (those still there), as a check does with the posts it added."""
    for id in ids:
        post = db.session.get(Post, id)
        if post is not None:
            db.session.delete(post)
    db.session.commit()
    db.session.remove()


@contextlib.contextmanager
def count_statements() -> Iterator[list[str]]:
    """Collect the SQL statements run against the current database.

    >>> with count_statements() as statements:
    ...     User.query.all()
    >>> len(statements)
    1
    """
    statements: list[str] = []
    engine = current_engine()

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
