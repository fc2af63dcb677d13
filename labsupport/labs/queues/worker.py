"""The notification worker: a JetStream pull consumer, idempotent, with a dead-letter stream.

A :class:`Worker` runs in a background thread on its own event loop. It
fetches batches from a durable consumer, applies each message's effect inside
one database transaction together with the message's id (so a redelivered
message changes nothing: the idempotent consumer), commits, and only then
acks. A message it cannot read goes to the dead-letter stream at once with
the reason; a message whose effect keeps failing is nak'ed with a delay and
dead-lettered when it reaches ``max_deliver``. The worker itself never dies on
a message.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nats
from nats.js.api import AckPolicy, ConsumerConfig, StorageType
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from ...harness import BackgroundLoop
from . import store
from .bus import end_tasks

__all__ = ["ORDERS", "DLQ", "Message", "Malformed", "Worker", "ensure_streams",
           "notify_effect", "dead_letters", "stored"]

ORDERS = "ORDERS"
DLQ = "DLQ"
REASON = "Lab-Dead-Letter-Reason"
MAX_DELIVERIES = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"
DB_ATTEMPTS = 5
DUPLICATE_WINDOW = 120.0  # seconds during which the stream drops a repeated Nats-Msg-Id


class Malformed(ValueError):
    """A message body the worker cannot read: dead-lettered at once, never retried."""


@dataclass(frozen=True)
class Message:
    """A delivered message: its id (``Nats-Msg-Id`` or stream:sequence), body and attempt."""

    id: str
    subject: str
    body: bytes
    deliveries: int
    seq: int

    def json(self) -> dict[str, Any]:
        """The body as a JSON object, or :class:`Malformed` saying why not."""
        try:
            data = json.loads(self.body)
        except json.JSONDecodeError as exc:
            raise Malformed(f"body is not JSON ({exc.msg})") from None
        except UnicodeDecodeError as exc:
            raise Malformed(f"body is not JSON ({exc.reason})") from None
        if not isinstance(data, dict):
            raise Malformed(f"body is JSON {type(data).__name__}, not an object")
        return data


async def ensure_streams(js: Any, *, replicas: int = 1, storage: str = "file") -> None:
    """Create (or keep) the ``ORDERS`` stream (``orders.>``) and the ``DLQ`` stream (``dlq.>``)."""
    kind = StorageType.MEMORY if storage == "memory" else StorageType.FILE
    deadline = time.monotonic() + 10
    while True:
        try:
            await js.add_stream(name=ORDERS, subjects=["orders.>"], num_replicas=replicas,
                                storage=kind, duplicate_window=DUPLICATE_WINDOW)
            await js.add_stream(name=DLQ, subjects=["dlq.>"], num_replicas=replicas, storage=kind)
            return
        except (nats.js.errors.APIError, TimeoutError) as exc:
            # a cluster just started may not yet know all its peers ("peer offline")
            if time.monotonic() > deadline or "peer" not in str(exc) and not isinstance(
                    exc, TimeoutError):
                raise
            await asyncio.sleep(0.1)


def notify_effect(conn: Connection, message: Message) -> dict[str, Any]:
    """The notification service's effect: one ``queue_notifications`` row per order message."""
    data = message.json()
    user, order = data.get("user_id"), data.get("order_id")
    if not isinstance(user, (str, int)) or isinstance(user, bool) or order is None:
        raise Malformed("body needs user_id (string or number) and order_id")
    item = f" ({data['item']})" if isinstance(data.get("item"), str) else ""
    text = str(data.get("text") or f"Your order {order}{item} is confirmed")[:500]
    conn.execute(store.notifications.insert().values(
        message_id=message.id, user_id=str(user), text=text))
    return {"user_id": str(user), "order_id": order, "text": text}


def _message(msg: Any) -> Message:
    meta = msg.metadata
    seq = meta.sequence.stream
    msg_id = (msg.headers or {}).get("Nats-Msg-Id") or f"{meta.stream}:{seq}"
    return Message(msg_id, msg.subject, msg.data, meta.num_delivered, seq)


class Worker:
    """A competing consumer on a durable pull consumer, running until ``stop()`` or ``kill()``.

    ``effect(conn, message)`` runs inside the database transaction and returns
    what ``on_commit`` receives once the transaction has committed (e.g. to
    push it to a browser). ``idempotent=False`` applies the effect on every
    delivery: the at-least-once consumer, duplicates and all.
    """

    def __init__(self, servers: str | list[str], *,
                 effect: Callable[[Connection, Message], Any] = notify_effect,
                 on_commit: Callable[[list[Any]], None] | None = None,
                 engine: Engine | None = None, durable: str = "notifier",
                 stream: str = ORDERS, filter_subject: str = "orders.>",
                 batch: int = 20, ack_wait: float = 1.0, max_deliver: int = 3,
                 nak_delay: float = 0.1, max_ack_pending: int | None = None,
                 idempotent: bool = True, name: str = "worker") -> None:
        self.servers = servers
        self.effect = effect
        self.on_commit = on_commit
        self.engine = store.ensure_tables(engine)
        self.durable, self.stream, self.filter_subject = durable, stream, filter_subject
        self.batch, self.ack_wait, self.max_deliver = batch, ack_wait, max_deliver
        self.nak_delay, self.max_ack_pending = nak_delay, max_ack_pending
        self.idempotent = idempotent
        self.name = name
        self.handled = 0            # messages acked (effect applied, or already applied)
        self.applied = 0            # effects this worker applied
        self.skipped = 0            # redelivered messages whose effect was already applied
        self.dead_lettered = 0
        self.log: collections.deque[str] = collections.deque(maxlen=200)
        self._loop: BackgroundLoop | None = None
        self._task: asyncio.Task | None = None
        self._stopping: asyncio.Event | None = None
        self._start_deadline = 0.0

    # --- running -----------------------------------------------------------

    def start(self, timeout: float = 5.0) -> Worker:
        """Connect, create the durable consumer if needed, and start fetching.

        Waits at most ``timeout`` seconds (a cluster that just lost a node may
        need a few seconds to elect new leaders).
        """
        self._loop = BackgroundLoop(f"{self.name}-loop")
        self._start_deadline = self._loop.loop.time() + timeout
        ready: asyncio.Future = self._loop.loop.create_future()

        async def begin() -> None:
            self._stopping = asyncio.Event()
            self._task = asyncio.ensure_future(self._run(ready))

        self._loop.run(begin())
        try:
            asyncio.run_coroutine_threadsafe(asyncio.wait_for(_shield(ready), timeout),
                                             self._loop.loop).result(timeout + 1)
        except BaseException:
            self.kill()
            raise
        return self

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the batch in hand, ack it, close the connection."""
        if self._loop is None:
            return
        if self._stopping is not None:
            self._loop.loop.call_soon_threadsafe(self._stopping.set)
        self._finish(timeout)

    def kill(self) -> None:
        """Die at once, as a crashed process would: nothing more is acked."""
        if self._loop is None:
            return
        if self._task is not None:
            self._loop.loop.call_soon_threadsafe(self._task.cancel)
        self._finish(5.0)

    def _finish(self, timeout: float) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        # already finished, or could not end in time: either way the loop goes
        with contextlib.suppress(Exception):
            loop.run(end_tasks(self._task, timeout), timeout + 1)
        loop.close()

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- the loop ----------------------------------------------------------

    async def _run(self, ready: asyncio.Future) -> None:
        nc = None
        try:
            nc = await nats.connect(servers=self.servers, name=self.name, connect_timeout=2,
                                    reconnect_time_wait=0.2, max_reconnect_attempts=-1,
                                    error_cb=_ignore)
            js = nc.jetstream(timeout=2)
            config = ConsumerConfig(durable_name=self.durable, ack_policy=AckPolicy.EXPLICIT,
                                    ack_wait=self.ack_wait, max_deliver=self.max_deliver,
                                    filter_subject=self.filter_subject,
                                    max_ack_pending=self.max_ack_pending)
            sub = await self._subscribe(js, config)
            await nc.subscribe(f"{MAX_DELIVERIES}.{self.stream}.{self.durable}",
                               cb=functools.partial(self._exhausted, js))
            if not ready.done():
                ready.set_result(True)
            stopping = self._stopping
            assert stopping is not None
            while not stopping.is_set():
                try:
                    msgs = await sub.fetch(self.batch, timeout=0.2)
                except TimeoutError:  # nats-py raises its own or asyncio's
                    continue
                except (nats.errors.ConnectionClosedError, nats.js.errors.APIError,
                        nats.errors.NoRespondersError) as exc:
                    self.log.append(f"fetch failed: {type(exc).__name__}: {exc}")
                    await asyncio.sleep(0.1)
                    continue
                await self._handle(js, msgs)
        except asyncio.CancelledError:
            self.log.append("killed")
        except Exception as exc:
            self.log.append(f"stopped by {type(exc).__name__}: {exc}")
            if not ready.done():
                ready.set_exception(exc)
        finally:
            if nc is not None:
                with contextlib.suppress(BaseException):  # a killed worker's connection just goes
                    await asyncio.shield(nc.close())

    async def _subscribe(self, js: Any, config: ConsumerConfig) -> Any:
        """Bind to the durable consumer, retrying while a cluster elects its leaders."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                return await js.pull_subscribe(self.filter_subject, durable=self.durable,
                                               stream=self.stream, config=config)
            except (TimeoutError, nats.js.errors.ServiceUnavailableError) as exc:
                if loop.time() > self._start_deadline:
                    raise
                self.log.append(f"consumer not ready yet ({type(exc).__name__}), retrying")
                await asyncio.sleep(0.2)

    async def _handle(self, js: Any, msgs: list[Any]) -> None:
        messages = [_message(msg) for msg in msgs]
        try:
            outcomes = self._apply(messages)
        except OperationalError as exc:  # the database stays busy: all come back later
            self.log.append(f"database busy, batch retried later: {exc}")
            for msg in msgs:
                await msg.nak(delay=self.nak_delay)
            return
        if self.on_commit is not None:
            results = [r for r, _ in outcomes.values() if r is not None]
            if results:
                try:
                    self.on_commit(results)
                except Exception as exc:  # the effect is committed; the push is best effort
                    self.log.append(f"on_commit failed: {exc}")
        for msg, message in zip(msgs, messages, strict=True):
            _, problem = outcomes[message.id]
            if problem is None:
                await msg.ack()
                self.handled += 1
            elif isinstance(problem, Malformed) or message.deliveries >= self.max_deliver:
                await self._dead_letter(js, message, str(problem))
                await msg.term()
            else:
                await msg.nak(delay=self.nak_delay)

    def _apply(self, messages: list[Message]) -> dict[str, tuple[Any, Exception | None]]:
        """Each message's effect in one transaction, a savepoint each; what went wrong.

        The database being busy is not the message's fault: the whole batch is
        tried again (a few times) before any message is blamed.
        """
        for attempt in range(DB_ATTEMPTS):
            try:
                return self._apply_once(messages)
            except OperationalError:
                if attempt == DB_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def _apply_once(self, messages: list[Message]) -> dict[str, tuple[Any, Exception | None]]:
        outcomes: dict[str, tuple[Any, Exception | None]] = {}
        applied = skipped = 0
        with self.engine.begin() as conn:
            for message in messages:
                if message.id in outcomes:
                    continue
                try:
                    with conn.begin_nested():
                        if self.idempotent and not store.mark_processed(
                                conn, message.id, self.durable):
                            outcomes[message.id] = (None, None)  # done before: only ack
                            skipped += 1
                            continue
                        outcomes[message.id] = (self.effect(conn, message), None)
                        applied += 1
                except OperationalError:
                    raise
                except Exception as exc:
                    outcomes[message.id] = (None, exc)
        self.applied += applied
        self.skipped += skipped
        return outcomes

    async def _exhausted(self, js: Any, advisory: Any) -> None:
        """JetStream gave up on a message (``max_deliver``) we never saw fail: dead-letter it."""
        try:
            seq = json.loads(advisory.data)["stream_seq"]
            stored = await js.get_msg(self.stream, seq)
            msg_id = (stored.headers or {}).get("Nats-Msg-Id") or f"{self.stream}:{seq}"
            message = Message(msg_id, stored.subject, stored.data, self.max_deliver, seq)
            await self._dead_letter(js, message, f"delivered {self.max_deliver} times, never acked")
        except Exception as exc:  # kept for the reader, never printed
            self.log.append(f"max-deliveries advisory not handled: {exc}")

    async def _dead_letter(self, js: Any, message: Message, reason: str) -> None:
        headers = {REASON: reason[:200], "Nats-Msg-Id": f"dlq:{message.id}",
                   "Lab-Original-Subject": message.subject}
        await js.publish(f"dlq.{self.stream.lower()}", message.body, headers=headers)
        self.dead_lettered += 1
        self.log.append(f"dead-lettered {message.id}: {reason}")


async def _shield(future: asyncio.Future) -> Any:
    return await asyncio.shield(future)


async def _ignore(error: Exception) -> None:
    """The client reconnects by itself; its errors never print into a cell."""


async def stored(js: Any, stream: str, *, limit: int = 1000) -> list[Any]:
    """The messages a stream holds, oldest first (at most ``limit``)."""
    info = await js.stream_info(stream)
    found: list[Any] = []
    if not info.state.messages:
        return found
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        if len(found) == limit:
            break
        with contextlib.suppress(nats.js.errors.NotFoundError):
            found.append(await js.get_msg(stream, seq))
    return found


async def dead_letters(js: Any, *, limit: int = 100) -> list[tuple[str, str]]:
    """(reason, body) of the messages in the DLQ stream, oldest first (at most ``limit``)."""
    return [((msg.headers or {}).get(REASON, ""), msg.data.decode(errors="replace"))
            for msg in await stored(js, DLQ, limit=limit)]
