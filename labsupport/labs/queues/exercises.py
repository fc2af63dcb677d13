"""Exercises of notebooks/07-queues-vs-direct.ipynb, each checked against a live NATS broker.

1. ``queues.safe-publish``: a publish whose lost ack is retried without storing it twice.
2. ``queues.idempotent``: an idempotent consumer (duplicates delivered, effect applied once).
3. ``queues.retry-dlq``: retry with growing delays, then dead-letter after N attempts.
4. ``queues.per-key-order``: competing consumers that keep each key's order.
5. ``queues.outbox``: the transactional outbox, with a crash between the two writes.

The checks use their own broker (``queues-checks``, started once per kernel)
and their own stream per check, removed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import random
import sqlite3
import uuid
import zlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import nats
import nats.aio.msg
import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig, StorageType

from ...elsewhere import call_elsewhere, uses
from ...engine import NotAttempted, Unmet, cases, exercise, expect
from ...harness import running
from .broker import BrokerHandle, start
from .worker import Message, stored

if TYPE_CHECKING:
    from .. import queues

NOTEBOOK = "07-queues-vs-direct"
CHECK_BROKER = "queues-checks"


def _broker() -> BrokerHandle:
    handle = running().get(CHECK_BROKER)
    return handle if isinstance(handle, BrokerHandle) else start(name=CHECK_BROKER)


@contextlib.asynccontextmanager
async def _stream(subjects: str = "in.>") -> AsyncIterator[tuple[Any, str, str]]:
    """A fresh memory stream on the check broker: (jetstream, stream name, subject prefix)."""
    nc = await nats.connect(_broker().url, connect_timeout=2)
    js = nc.jetstream(timeout=2)
    name = f"CHECK_{uuid.uuid4().hex[:10].upper()}"
    prefix = name.lower()
    await js.add_stream(name=name, subjects=[f"{prefix}.>"], storage=StorageType.MEMORY,
                        duplicate_window=60)
    try:
        yield js, name, prefix
    finally:
        with contextlib.suppress(Exception):
            await js.delete_stream(name)
        await nc.close()


def _run(coro: Any) -> Any:
    """Run a check's coroutine on a fresh loop in the checking thread."""
    return asyncio.run(coro)


def _message(msg: Any) -> Message:
    meta = msg.metadata
    msg_id = (msg.headers or {}).get("Nats-Msg-Id") or f"{meta.stream}:{meta.sequence.stream}"
    return Message(msg_id, msg.subject, msg.data, meta.num_delivered, meta.sequence.stream)


def _tables() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    conn.executescript("""
        CREATE TABLE processed (message_id TEXT PRIMARY KEY);
        CREATE TABLE sent (message_id TEXT, user_id TEXT, text TEXT);
    """)
    return conn


# --- 1. a publish that is safe to retry ------------------------------------------

async def publish_order(js: nats.js.JetStreamContext, order: dict) -> nats.js.api.PubAck:
    """Publish ``order`` to orders.created.<user_id>; a lost ack is retried with the same id."""
    subject = f"orders.created.{order['user_id']}"
    body = json.dumps(order).encode()
    headers = {"Nats-Msg-Id": f"order-{order['order_id']}"}  # the same on every attempt
    attempt = 1
    while True:
        try:
            return await js.publish(subject, body, headers=headers, timeout=1)
        except TimeoutError:      # no ack: the broker may have stored it or not; ask again
            if attempt == 3:
                raise
            attempt += 1


class _LossyJetStream:
    """A JetStream context whose publishes go to the check's stream, the first ack lost.

    Each publish really reaches the broker; for the first, the broker stores the
    message and then the ack "never arrives" (a ``TimeoutError``), as on a network
    that drops the answer.
    """

    def __init__(self, js: Any, prefix: str) -> None:
        self.js, self.prefix = js, prefix
        self.lose = 1
        self.publishes: list[tuple[str, dict[str, str]]] = []

    async def publish(self, subject: str, payload: bytes = b"", timeout: float | None = None,
                      stream: str | None = None, headers: dict[str, str] | None = None,
                      **options: Any) -> Any:
        self.publishes.append((subject, dict(headers or {})))
        ack = await self.js.publish(f"{self.prefix}.{subject}", payload, headers=headers)
        if self.lose:
            self.lose -= 1
            raise nats.errors.TimeoutError  # stored, but the ack never came back
        return ack


async def _call(function: Callable[..., Any], *args: Any) -> Any:
    result = function(*args)
    if inspect.isawaitable(result):
        result = await asyncio.wait_for(result, 5)
    return result


async def _drive_publish(publish_order: Callable[..., Any]) -> dict[str, Any]:
    async with _stream() as (js, name, prefix):
        lossy = _LossyJetStream(js, prefix)
        outcome: dict[str, Any] = {"prefix": prefix, "publishes": lossy.publishes}
        try:
            outcome["first"] = await _call(publish_order, lossy, {"order_id": 41, "user_id": "u7"})
        except TimeoutError:
            outcome["raised"] = True
            outcome["stored"] = await stored(js, name)
            return outcome
        outcome["after_first"] = await stored(js, name)
        outcome["first_publishes"] = list(lossy.publishes)
        if len(outcome["after_first"]) == 1:
            outcome["again"] = await _call(publish_order, lossy, {"order_id": 41, "user_id": "u7"})
            outcome["after_again"] = await stored(js, name)
            await _call(publish_order, lossy, {"order_id": 42, "user_id": "u7"})
            outcome["stored"] = await stored(js, name)
            # The broker answers no more: every ack is lost; a bounded retry gives up and says so.
            lossy.lose, before = 20, len(lossy.publishes)
            try:
                outcome["hopeless"] = await _call(publish_order, lossy,
                                                  {"order_id": 43, "user_id": "u7"})
            except TimeoutError:
                outcome["hopeless"] = TimeoutError
            outcome["hopeless_attempts"] = len(lossy.publishes) - before
        return outcome


def _order_ids(messages: list[Any]) -> list[Any]:
    ids = []
    for msg in messages:
        try:
            ids.append(json.loads(msg.data).get("order_id"))
        except (ValueError, AttributeError):
            ids.append(None)
    return ids


@exercise(
    "queues.safe-publish",
    title="A publish that is safe to retry: a lost ack, the order stored once",
    notebook=NOTEBOOK,
    hints=[
        "Catch TimeoutError around await js.publish(...) and publish again, at most 3 "
        "attempts in all. Without an id, the stream cannot tell the retry from a new order.",
        "Give the publish headers={'Nats-Msg-Id': ...}, the same on every attempt: the stream "
        "stores a message id once and acks a repeat with duplicate=True.",
        "Derive the id from the order, e.g. f\"order-{order['order_id']}\": then even a second "
        "call for the same order (a retried request) is recognised. A uuid4() is new each call.",
    ],
    reference=publish_order,
    timeout=20,
)
def check_safe_publish(publish_order: Callable[..., Any]) -> str:
    outcome = _run(_drive_publish(publish_order))
    if not outcome["publishes"]:
        raise NotAttempted("publish_order published nothing")
    prefix, publishes = outcome["prefix"], outcome["publishes"]
    expect(publishes[0][0] == "orders.created.u7",
           f"order 41 of user u7 was published to {publishes[0][0]!r}: publish it to "
           f"orders.created.<user_id>, here 'orders.created.u7'")
    expect(not outcome.get("raised"),
           "the broker stored order 41 but its ack was lost, and publish_order raised "
           "TimeoutError: publish again (up to 3 attempts)")
    first = outcome["after_first"]
    expect(_order_ids(first)[:1] == [41],
           f"the stream holds {[m.data for m in first]}: publish the order as JSON "
           f"(json.dumps(order).encode())")
    if len(first) > 1:
        ids = [headers.get("Nats-Msg-Id") for _, headers in outcome["first_publishes"]]
        if any(id is None for id in ids):
            why = "give every publish a header Nats-Msg-Id, the same on every attempt"
        else:
            why = f"your attempts carried the ids {ids}: use the same Nats-Msg-Id each time"
        raise Unmet(f"the ack of order 41 was lost and your retry stored it again: the stream "
                    f"holds it {len(first)} times; {why}")
    expect(getattr(outcome["first"], "seq", None) == first[0].seq,
           f"return the PubAck that js.publish returns; you returned {outcome['first']!r}")
    again = outcome["after_again"]
    expect(len(again) == 1,
           f"a second publish_order call for order 41 (a retried request) stored it again: the "
           f"stream holds it {len(again)} times. Derive the id from the order (order-<order_id>), "
           f"not from uuid4() or the clock")
    expect(getattr(outcome["again"], "duplicate", None),
           f"the repeat of order 41 should be acked as a duplicate; you returned "
           f"{outcome['again']!r}")
    stored_ids = _order_ids(outcome["stored"])
    expect(stored_ids == [41, 42],
           f"after order 41 then order 42 the stream holds orders {stored_ids}: a different "
           f"order needs a different id")
    tries = outcome["hopeless_attempts"]
    expect(tries <= 3, f"every ack of order 43 was lost and publish_order tried {tries} times: "
                       "retry a bounded number of times (at most 3 attempts), then raise")
    expect(outcome["hopeless"] is TimeoutError,
           f"every ack of order 43 was lost, and publish_order returned "
           f"{outcome['hopeless']!r} after {tries} attempts: after the last attempt raise the "
           "TimeoutError, so the caller knows the order may not be stored")
    subjects = {msg.subject.removeprefix(f"{prefix}.") for msg in outcome["stored"]}
    return (f"a lost ack retried with the same id: order 41 stored once, its repeat acked as a "
            f"duplicate, order 42 stored too ({', '.join(sorted(subjects))})")


# --- 2. the idempotent consumer ----------------------------------------------

def process(conn: sqlite3.Connection, message: queues.Message) -> None:
    """Send the notification for ``message`` once, however often it is delivered."""
    already = conn.execute("SELECT 1 FROM processed WHERE message_id = ?",
                           (message.id,)).fetchone()
    if already:
        return
    order = message.json()
    conn.execute("INSERT INTO processed (message_id) VALUES (?)", (message.id,))
    conn.execute("INSERT INTO sent (message_id, user_id, text) VALUES (?, ?, ?)",
                 (message.id, order["user_id"], f"Order {order['order_id']} confirmed"))


async def _drive_idempotent(process: Callable[..., Any]) -> dict[str, Any]:
    conn = _tables()
    async with _stream() as (js, name, prefix):
        orders = [f"o{n}" for n in range(6)]
        for n, order in enumerate(orders):
            body = json.dumps({"order_id": order, "user_id": f"u{n % 2}"}).encode()
            await js.publish(f"{prefix}.orders", body, headers={"Nats-Msg-Id": order})
        # o1: the worker dies after committing, before its ack -> delivered again.
        # o2: the worker dies before committing -> rolled back, delivered again.
        # o3: delivered twice more by the retries of a slow network.
        fates = {"o1": ["commit-no-ack"], "o2": ["rollback"], "o3": ["commit-no-ack"] * 2}
        consumer = ConsumerConfig(durable_name="idem", ack_policy=AckPolicy.EXPLICIT,
                                  ack_wait=0.3, max_deliver=10)
        sub = await js.pull_subscribe(f"{prefix}.orders", durable="idem", stream=name,
                                      config=consumer)
        deliveries: dict[str, int] = {}
        acked: set[str] = set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 6
        while len(acked) < len(orders) and loop.time() < deadline:
            try:
                msgs = await sub.fetch(10, timeout=0.5)
            except TimeoutError:  # nats-py raises its own or asyncio's
                continue
            for msg in msgs:
                message = _message(msg)
                deliveries[message.id] = deliveries.get(message.id, 0) + 1
                fate = fates.get(message.id, [])
                action = fate.pop(0) if fate else "commit-ack"
                conn.execute("BEGIN")
                try:
                    result = process(conn, message)
                    if inspect.isawaitable(result):
                        raise Unmet("process must be a plain function (def, not async def)")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                if action == "rollback":
                    conn.execute("ROLLBACK")
                    continue
                conn.execute("COMMIT")
                if action == "commit-ack":
                    await msg.ack()
                    acked.add(message.id)
    sent = conn.execute("SELECT message_id, COUNT(*) FROM sent GROUP BY message_id").fetchall()
    processed = conn.execute("SELECT COUNT(*) FROM processed").fetchone()[0]
    return {"orders": orders, "sent": dict(sent), "deliveries": deliveries,
            "processed": processed}


@exercise(
    "queues.idempotent",
    title="An idempotent consumer: duplicates delivered, the effect applied once",
    notebook=NOTEBOOK,
    hints=[
        "JetStream is at-least-once: the same message (same message.id) can arrive again. "
        "Remember which ids you have handled.",
        "Keep the ids in the database, in the table processed, in the same transaction as the "
        "effect: then either both are saved or neither is.",
        "First look for message.id in processed: if it is there, return without sending. "
        "Otherwise insert it into processed and insert the row into sent.",
    ],
    reference=process,
    timeout=20,
)
def check_idempotent(process: Callable[[sqlite3.Connection, Message], None]) -> str:
    outcome = _run(_drive_idempotent(process))
    sent, orders = outcome["sent"], outcome["orders"]
    if not sent and outcome["processed"] == 0:
        raise NotAttempted("process sent nothing: insert a row into sent for each order")
    for order in orders:
        count = sent.get(order, 0)
        times = outcome["deliveries"].get(order, 0)
        expect(count != 0, f"order {order} was delivered {times} times but never sent"
               + (": its first attempt was rolled back, so the redelivery must send it"
                  if order == "o2" else ""))
        expect(count == 1, f"order {order} was delivered {times} times and sent {count} times: "
                           "send it only if its id is not in processed yet")
    redelivered = sum(n - 1 for n in outcome["deliveries"].values())
    return f"{len(orders)} orders, {redelivered} redeliveries, each notification sent once"


# --- 3. retry with backoff, then dead-letter -----------------------------------

async def on_failure(js: nats.js.JetStreamContext, msg: nats.aio.msg.Msg, error: Exception,
                     max_attempts: int = 3) -> None:
    """Retry later with a growing delay; after max_attempts, move it to the dead letters."""
    attempt = msg.metadata.num_delivered
    if attempt < max_attempts:
        await msg.nak(delay=0.05 * 2 ** (attempt - 1))
        return
    await js.publish("dlq.orders", msg.data, headers={"Reason": str(error)})
    await msg.term()


class _Recorded:
    """A message whose ack/nak/term calls are recorded (and passed on to the server)."""

    def __init__(self, msg: Any, calls: list[tuple[str, Any]]) -> None:
        self._msg, self._calls = msg, calls
        self.data, self.subject, self.headers = msg.data, msg.subject, msg.headers
        self.metadata = msg.metadata

    async def ack(self) -> None:
        self._calls.append(("ack", None))
        await self._msg.ack()

    async def nak(self, delay: float | None = None) -> None:
        self._calls.append(("nak", delay))
        await self._msg.nak(delay=delay)

    async def term(self) -> None:
        self._calls.append(("term", None))
        await self._msg.term()

    async def in_progress(self) -> None:
        await self._msg.in_progress()


class _RecordedJetStream:
    """A JetStream context whose publishes are recorded in the same list as the acks."""

    def __init__(self, js: Any, calls: list[tuple[str, Any]]) -> None:
        self._js, self._calls = js, calls

    async def publish(self, subject: str, *args: Any, **kwargs: Any) -> Any:
        self._calls.append(("publish", subject))
        return await self._js.publish(subject, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._js, name)


async def _drive_retry(on_failure: Callable[..., Any], max_attempts: int) -> dict[str, Any]:
    nc = await nats.connect(_broker().url, connect_timeout=2)
    js = nc.jetstream(timeout=2)
    name = f"CHECK_{uuid.uuid4().hex[:10].upper()}"
    dlq = f"{name}_DLQ"
    await js.add_stream(name=name, subjects=[f"{name.lower()}.>"], storage=StorageType.MEMORY)
    await js.add_stream(name=dlq, subjects=["dlq.>"], storage=StorageType.MEMORY)
    calls: list[tuple[str, Any]] = []
    recorded_js = _RecordedJetStream(js, calls)
    attempts = 0      # deliveries the learner's function saw
    crashed = False   # the first delivery went to a worker process that died
    try:
        await js.publish(f"{name.lower()}.orders", b'{"order_id": "poison"}')
        consumer = ConsumerConfig(durable_name="retry", ack_policy=AckPolicy.EXPLICIT,
                                  ack_wait=0.5, max_deliver=8)
        sub = await js.pull_subscribe(f"{name.lower()}.orders", durable="retry", stream=name,
                                      config=consumer)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while loop.time() < deadline:
            try:
                msgs = await sub.fetch(1, timeout=0.3)
            except TimeoutError:  # nats-py raises its own or asyncio's
                if attempts >= max_attempts + 1 or (calls and calls[-1][0] in ("term", "ack")
                                                    and attempts >= max_attempts - 1):
                    break
                continue
            for msg in msgs:
                if not crashed:  # its attempt 1 died with its process: the server redelivers
                    crashed = True
                    await msg.nak()
                    continue
                attempts += 1
                result = on_failure(recorded_js, _Recorded(msg, calls),
                                    ValueError("payment declined"), max_attempts=max_attempts)
                if inspect.isawaitable(result):
                    await asyncio.wait_for(result, 2)
                if attempts == 1 and not calls and not await stored(js, dlq):
                    return {"attempts": 0, "calls": [], "dead": []}
        dead = [(msg.data, dict(msg.headers or {})) for msg in await stored(js, dlq)]
        return {"attempts": attempts + crashed, "calls": calls, "dead": dead}
    finally:
        for stream in (name, dlq):
            with contextlib.suppress(Exception):
                await js.delete_stream(stream)
        await nc.close()


@exercise(
    "queues.retry-dlq",
    title="Retry with growing delays, then dead-letter after N attempts",
    notebook=NOTEBOOK,
    hints=[
        "msg.metadata.num_delivered is this attempt's number: 1 the first time.",
        "Before the last attempt: await msg.nak(delay=...) with a delay that grows with the "
        "attempt (e.g. 0.05 * 2 ** (attempt - 1)); the server redelivers after it.",
        "At attempt max_attempts: await js.publish('dlq.orders', msg.data, headers={'Reason': "
        "str(error)}), then await msg.term() so the server never delivers it again.",
    ],
    reference=on_failure,
    timeout=15,
)
def check_retry(on_failure: Callable[..., Any]) -> str:
    most = cases().choice([4, 5])  # not the notebook's 3: the limit is the argument
    outcome = _run(_drive_retry(on_failure, most))
    if outcome["attempts"] == 0:
        raise NotAttempted("on_failure did nothing with the message")
    calls, dead = outcome["calls"], outcome["dead"]
    naks = [delay for kind, delay in calls if kind == "nak"]
    expect(outcome["attempts"] <= most or not dead,
           f"the message was delivered {outcome['attempts']} times: with max_attempts={most} "
           f"it must not come back after attempt {most} (attempt 1 ran on a worker process "
           "that died: count attempts with msg.metadata.num_delivered, which the server keeps)")
    expect(dead, f"after {outcome['attempts']} failed attempts the message is not in the "
                 "dead-letter stream: publish it to dlq.orders at attempt max_attempts")
    expect(len(dead) == 1, f"the dead-letter stream holds it {len(dead)} times")
    expect(outcome["attempts"] >= most,
           f"with max_attempts={most} you dead-lettered the message at attempt "
           f"{outcome['attempts']}: count attempts with max_attempts, not a number of your own")
    expect(dead[0][0] == b'{"order_id": "poison"}', "dead-letter the message's own body")
    expect(any("payment declined" in v for v in dead[0][1].values()),
           f"say why in a header (e.g. Reason: str(error)); its headers: {dead[0][1]}")
    kinds = [kind for kind, _ in calls]
    ended = [i for i, kind in enumerate(kinds) if kind in ("term", "ack")]
    expect(not ended or "publish" not in kinds or kinds.index("publish") < ended[0],
           f"you ended the message ({kinds[ended[0]] if ended else ''}) before publishing it "
           "to dlq.orders: had that publish failed, the message was gone for good. Publish the "
           "dead letter first, then term()")
    expect(len(naks) == most - 2,
           f"attempt 1 ran on a worker process that died; attempts 2 to {most - 1} should nak "
           f"(retry), yours did {calls}: count attempts with msg.metadata.num_delivered, which "
           "the server keeps, not in your process")
    expect(all(d is not None and d > 0 for d in naks),
           f"nak with a delay (nak(delay=...)), or the retries come at once: {naks}")
    expect(all(b > a for a, b in itertools.pairwise(naks)),
           f"the delay should grow with each attempt: {naks}")
    expect(outcome["attempts"] == most and calls[-1][0] in ("term", "ack"),
           f"after dead-lettering, term() (or ack()) the message, or the server delivers it "
           f"again: {outcome['attempts']} deliveries, calls {calls}")
    return (f"retried after {', '.join(f'{d:g}' for d in naks)} s, dead-lettered at attempt "
            f"{most}, after a worker died in attempt 1")


# --- 4. competing consumers that keep per-key order ----------------------------

def partition(key: str, partitions: int) -> int:
    """The partition (0 .. partitions-1) for ``key``: always the same for the same key."""
    return zlib.crc32(key.encode()) % partitions


KEYS, PARTITIONS, PER_KEY = 24, 4, 3


def _keys(seed: int) -> list[str]:
    """Keys drawn at check time (not the sample's), the same for the same seed."""
    rng = random.Random(seed)
    numbers = rng.sample(range(1, 100_000), KEYS)
    # A third are not user-<number>: a key is any text, so only a hash of all of it spreads it
    return [f"user-{n}" if i % 3 != 1 else f"{rng.choice(['ada', 'zoë', 'cust'])}.{n:x}@shop"
            for i, n in enumerate(numbers)]


def _elsewhere(partition: Callable[[str, int], int], keys: list[str]) -> dict[int, dict]:
    """What two other producer processes (their own hash seeds, keys in another order) pick."""
    picked: dict[int, dict] = {}
    for hash_seed, order in ((1, keys), (2, keys[::-1])):
        results = call_elsewhere(partition, [(key, PARTITIONS) for key in order],
                                 hash_seed=hash_seed)
        picked[hash_seed] = dict(zip(order, results, strict=True))
    return picked


async def _drive_partitions(partition: Callable[[str, int], int],
                            keys: list[str]) -> dict[str, Any]:
    chosen = {key: partition(key, PARTITIONS) for key in keys}
    if all(value is None for value in chosen.values()):
        return {"chosen": chosen}
    for key, value in chosen.items():
        if not isinstance(value, int) or not 0 <= value < PARTITIONS:
            raise Unmet(f"partition({key!r}, 4) returned {value!r}: return 0, 1, 2 or 3")
    handled: dict[str, list[int]] = {key: [] for key in keys}
    per_worker: dict[int, int] = {}
    rng = random.Random(5)
    async with _stream() as (js, name, prefix):
        for seq in range(PER_KEY):
            for key in keys:
                body = json.dumps({"key": key, "seq": seq}).encode()
                await js.publish(f"{prefix}.p{partition(key, PARTITIONS)}.{key}", body)

        async def worker(index: int) -> None:
            config = ConsumerConfig(durable_name=f"w{index}", ack_policy=AckPolicy.EXPLICIT,
                                    filter_subject=f"{prefix}.p{index}.>", ack_wait=2)
            sub = await js.pull_subscribe(f"{prefix}.p{index}.>", durable=f"w{index}",
                                          stream=name, config=config)
            while True:
                try:
                    msgs = await sub.fetch(1, timeout=0.3)
                except TimeoutError:  # nats-py raises its own or asyncio's
                    return
                for msg in msgs:
                    data = json.loads(msg.data)
                    await asyncio.sleep(rng.uniform(0, 0.005))  # work takes a while
                    handled[data["key"]].append(data["seq"])
                    per_worker[index] = per_worker.get(index, 0) + 1
                    await msg.ack()

        await asyncio.wait_for(asyncio.gather(*(worker(i) for i in range(PARTITIONS))), 10)
    return {"chosen": chosen, "handled": handled, "per_worker": per_worker}


@exercise(
    "queues.per-key-order",
    title="Competing consumers that keep each key's order",
    notebook=NOTEBOOK,
    hints=[
        "Messages of one key must all go to the same worker: that worker handles them one at "
        "a time, in order. Different keys may go to different workers.",
        "So the partition must depend on the key only, and spread keys over all partitions. "
        "Every producer, in its own process, must pick the same partition for a key.",
        "A stable hash modulo the number of partitions: zlib.crc32(key.encode()) % partitions. "
        "(Python's hash() of a str changes from one process to the next.)",
    ],
    reference=partition,
    timeout=25,
)
def check_partition(partition: Callable[[str, int], int]) -> str:
    seed = random.randrange(1_000_000)
    keys = _keys(seed)
    if partition(keys[0], PARTITIONS) is None:
        raise NotAttempted("partition returns None")
    elsewhere = _elsewhere(partition, keys)  # before any call here fills a learner's cache
    for key in keys:
        picks = [elsewhere[hash_seed][key] for hash_seed in (1, 2)]
        for kind, value in picks:
            expect(kind == "ok", f"partition({key!r}, 4) raised in another process: {value}. "
                                 "A key is any text, not always user-<number>: hash all of it")
        one, other = (value for _, value in picks)
        if one != other:
            why = ("Python's hash() of a str is salted per process (PYTHONHASHSEED): use a "
                   "stable hash such as zlib.crc32(key.encode())" if uses(partition, "hash")
                   else "the partition must depend on the key alone, not on state kept in one "
                        "process, the order keys arrive in, or chance")
            raise Unmet(f"two producer processes put {key!r} on partitions {one} and {other}, "
                        f"so its messages reach two workers and lose their order (keys drawn "
                        f"with seed {seed}): {why}")
    outcome = _run(_drive_partitions(partition, keys))
    chosen = outcome["chosen"]
    again = {key: partition(key, PARTITIONS) for key in chosen}
    expect(again == chosen, "partition gave a different answer for the same key the second "
                            "time: a key must always go to the same partition")
    for key in keys:
        there = elsewhere[1][key][1]
        expect(chosen[key] == there,
               f"this process puts {key!r} on partition {chosen[key]}, another process on "
               f"{there} (keys drawn with seed {seed}): every producer must agree")
    for key, seqs in outcome["handled"].items():
        expect(sorted(seqs) == list(range(PER_KEY)),
               f"{key}: handled {seqs}, expected each of its {PER_KEY} messages once")
        expect(seqs == sorted(seqs), f"{key}'s messages were handled in the order {seqs}: "
                                     "one key's messages went to different workers")
    used = len(set(chosen.values()))
    expect(used >= 3, f"{KEYS} keys used only {used} of 4 partitions: the other workers sit "
                      "idle; spread the keys with a hash")
    return (f"{KEYS} keys drawn at random, the same partition for each in 3 processes with "
            f"different hash seeds, each key's {PER_KEY} messages in order; messages per "
            f"worker: {sorted(outcome['per_worker'].values())}")


# --- 5. the transactional outbox ---------------------------------------------

def place_order(conn: sqlite3.Connection, user_id: str, item: str) -> int:
    """Write the order and its message in the caller's transaction; the order's id."""
    order_id = conn.execute("INSERT INTO orders (user_id, item) VALUES (?, ?)",
                            (user_id, item)).lastrowid or 0
    body = json.dumps({"order_id": order_id, "user_id": user_id, "item": item})
    conn.execute("INSERT INTO outbox (message_id, subject, body) VALUES (?, ?, ?)",
                 (f"order-{order_id}", "orders.created", body))
    return order_id


def relay(conn: sqlite3.Connection, publish: Callable[..., object]) -> int:
    """Publish every unpublished outbox row, then mark it; how many were published."""
    rows = conn.execute("SELECT id, message_id, subject, body FROM outbox "
                        "WHERE published = 0 ORDER BY id").fetchall()
    for row_id, message_id, subject, body in rows:
        publish(subject, body.encode(), msg_id=message_id)
        conn.execute("UPDATE outbox SET published = 1 WHERE id = ?", (row_id,))
        conn.commit()
    return len(rows)


class Crash(Exception):
    """The process dies here (raised by the check)."""


def _outbox_tables() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.executescript("""
        CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id TEXT NOT NULL, item TEXT NOT NULL);
        CREATE TABLE outbox (id INTEGER PRIMARY KEY, message_id TEXT UNIQUE NOT NULL,
                             subject TEXT NOT NULL, body TEXT NOT NULL,
                             published INTEGER NOT NULL DEFAULT 0);
    """)
    return conn


class _Publisher:
    """``publish(subject, body, msg_id=None)`` into the check's stream, synchronously."""

    def __init__(self, loop: asyncio.AbstractEventLoop, js: Any, prefix: str) -> None:
        self.loop, self.js, self.prefix = loop, js, prefix
        self.calls = 0
        self.count = 0
        #: the relay dies at these calls: after the 1st publish (before its row is marked),
        #: then at the next call, before publishing
        self.crashes = {1: "after", 2: "before"}

    def __call__(self, subject: str, body: bytes, msg_id: str | None = None) -> None:
        self.calls += 1
        crash = self.crashes.pop(self.calls, None)
        if crash == "before":
            raise Crash("the relay died before this message reached the broker")
        if isinstance(body, str):
            body = body.encode()
        headers = {"Nats-Msg-Id": msg_id} if msg_id else None
        future = asyncio.run_coroutine_threadsafe(
            self.js.publish(f"{self.prefix}.{subject}", body, headers=headers), self.loop)
        future.result(5)
        self.count += 1
        if crash == "after":
            raise Crash("the relay died after publishing, before marking the row")


async def _drive_outbox(place_order: Callable[..., Any], relay: Callable[..., Any]) -> dict:
    async with _stream() as (js, name, prefix):
        loop = asyncio.get_running_loop()
        publish = _Publisher(loop, js, prefix)

        def scenario() -> dict[str, Any]:
            conn = _outbox_tables()
            conn.execute("BEGIN")
            ids = [place_order(conn, "u1", "Keyboard"), place_order(conn, "u2", "Mouse")]
            conn.commit()
            if ids == [None, None] and not conn.execute("SELECT * FROM outbox").fetchall():
                return {"attempted": False}
            # A third order whose transaction fails after place_order: rolled back.
            conn.execute("BEGIN")
            place_order(conn, "u3", "Monitor")
            conn.rollback()
            conn.execute("BEGIN")
            ids.append(place_order(conn, "u4", "Cable"))
            conn.commit()
            crashed = 0
            for _ in range(3):  # the relay dies twice; each time it restarts
                try:
                    relay(conn, publish)
                except Crash:
                    crashed += 1
                    conn.rollback()
                if publish.calls == 0:
                    return {"attempted": True, "relayed": 0}
            before = publish.count
            with contextlib.suppress(Crash):
                relay(conn, publish)  # nothing is left to publish: a relay publishes nothing
            republished = publish.count - before
            marked = conn.execute("SELECT COUNT(*) FROM outbox WHERE published = 1"
                                  ).fetchone()[0]
            conn.rollback()  # the relay's process ends: what it did not commit is gone
            unpublished = conn.execute("SELECT COUNT(*) FROM outbox WHERE published = 0"
                                       ).fetchone()[0]
            return {"attempted": True, "ids": ids, "crashed": crashed,
                    "unpublished": unpublished, "marked": marked, "republished": republished,
                    "orders": conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0]}

        result = await asyncio.wait_for(asyncio.to_thread(scenario), 10)
        if not result["attempted"] or result.get("relayed") == 0:
            return result
        result["stream"] = [json.loads(msg.data) for msg in await stored(js, name)]
        return result


@exercise(
    "queues.outbox",
    title="The transactional outbox: no lost or phantom messages across a crash",
    notebook=NOTEBOOK,
    hints=[
        "relay reads the rows with published = 0, publishes each, then sets published = 1 and "
        "commits. Publish first, mark second: a crash in between means publishing again.",
        "Publishing again is harmless if the message has a stable id: pass "
        "msg_id=<the row's message_id>, and the stream drops the repeat (Nats-Msg-Id).",
    ],
    reference=relay,
    timeout=20,
)
def check_outbox(relay: Callable[..., Any],
                 place_order: Callable[..., Any] = place_order) -> str:
    outcome = _run(_drive_outbox(place_order, relay))
    if not outcome["attempted"]:
        raise NotAttempted("place_order wrote nothing: insert the order and its outbox row")
    if outcome.get("relayed") == 0:
        raise NotAttempted("relay published nothing")
    stream = outcome["stream"]
    expect(outcome["crashed"], "the relay never died where the check killed it: either it "
                               "never published, or it caught the exception of publish (a Crash "
                               "stands for the process dying). Publish each unpublished row, and "
                               "let publish's errors end the run: the row stays unpublished")
    ids = [o for o in outcome["ids"]]
    seen = [m.get("order_id") for m in stream]
    for order_id in ids:
        times = seen.count(order_id)
        expect(times != 0, f"order {order_id} never reached the stream: mark a row published "
                           "only after publishing it, and publish every unpublished row")
        expect(times == 1, f"the stream holds order {order_id} {times} times after the relay "
                           "restarted: publish with msg_id=<the row's message_id> so the "
                           "stream drops the repeat")
    expect(len(stream) == len(ids), f"the stream holds {len(stream)} messages for "
                                    f"{len(ids)} committed orders: {seen}")
    if outcome["unpublished"] and outcome["marked"]:
        raise Unmet(f"your relay marked the rows published but never committed: when its "
                    f"process ended, {outcome['unpublished']} rows were unpublished again, and "
                    f"the next relay publishes them again; commit after marking each row")
    expect(outcome["unpublished"] == 0, "rows are left unpublished after the relay ran")
    expect(outcome["republished"] == 0,
           f"every row was published and marked, yet the next relay run published "
           f"{outcome['republished']} messages again: publish only the rows with "
           "published = 0 (the stream's duplicate window is minutes, not forever)")
    return (f"{len(ids)} committed orders, 1 rolled back, a crash between publish and mark: "
            "each order in the stream once")
