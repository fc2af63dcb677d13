"""Every exercise of 07-queues-vs-direct: the reference passes, plausible wrong answers fail."""

from __future__ import annotations

import json
import random
import uuid

from exercise_helpers import assert_fails, assert_passes

from labsupport.labs.queues import exercises

# --- queues.safe-publish ----------------------------------------------------------


def test_safe_publish_reference_passes():
    assert_passes("queues.safe-publish")


def test_safe_publish_stub_is_not_attempted():
    async def stub(js, order):
        ...

    assert_fails("queues.safe-publish", stub, "not solved yet")


def test_publishing_without_a_retry_fails():
    async def once(js, order):
        return await js.publish(f"orders.created.{order['user_id']}", json.dumps(order).encode(),
                                headers={"Nats-Msg-Id": f"order-{order['order_id']}"})

    assert_fails("queues.safe-publish", once, "raised TimeoutError: publish again")


def test_retrying_without_a_message_id_stores_the_order_twice():
    async def no_id(js, order):
        for _ in range(3):
            try:
                return await js.publish(f"orders.created.{order['user_id']}",
                                        json.dumps(order).encode())
            except TimeoutError:
                continue

    assert_fails("queues.safe-publish", no_id, "your retry stored it again")


def test_a_new_id_per_call_stores_a_retried_request_twice():
    async def uuid_per_call(js, order):
        headers = {"Nats-Msg-Id": str(uuid.uuid4())}
        for _ in range(3):
            try:
                return await js.publish(f"orders.created.{order['user_id']}",
                                        json.dumps(order).encode(), headers=headers)
            except TimeoutError:
                continue

    assert_fails("queues.safe-publish", uuid_per_call, "Derive the id from the order")


def test_one_id_for_every_order_drops_the_next_order():
    async def constant_id(js, order):
        for _ in range(3):
            try:
                return await js.publish(f"orders.created.{order['user_id']}",
                                        json.dumps(order).encode(),
                                        headers={"Nats-Msg-Id": "order"})
            except TimeoutError:
                continue

    assert_fails("queues.safe-publish", constant_id, "a different order needs a different id")


# --- queues.idempotent ----------------------------------------------------------


def test_idempotent_reference_passes():
    assert_passes("queues.idempotent")


def test_idempotent_stub_is_not_attempted():
    assert_fails("queues.idempotent", lambda conn, message: None, "not solved yet")


def test_sending_on_every_delivery_fails():
    def every_time(conn, message):
        order = message.json()
        conn.execute("INSERT INTO sent VALUES (?, ?, ?)", (message.id, order["user_id"], "hi"))

    assert_fails("queues.idempotent", every_time, "sent 2 times")


def test_skipping_every_redelivery_fails():
    def first_delivery_only(conn, message):
        if message.deliveries > 1:
            return
        order = message.json()
        conn.execute("INSERT INTO sent VALUES (?, ?, ?)", (message.id, order["user_id"], "hi"))

    assert_fails("queues.idempotent", first_delivery_only,
                 "its first attempt was rolled back, so the redelivery must send it")


def test_remembering_ids_outside_the_transaction_fails():
    seen = set()

    def in_memory(conn, message):
        if message.id in seen:
            return
        seen.add(message.id)  # kept even when the transaction rolls back
        order = message.json()
        conn.execute("INSERT INTO sent VALUES (?, ?, ?)", (message.id, order["user_id"], "hi"))

    assert_fails("queues.idempotent", in_memory, "never sent")


# --- queues.retry-dlq ------------------------------------------------------------


def test_retry_reference_passes():
    assert_passes("queues.retry-dlq")


def test_nak_without_delay_fails():
    async def no_delay(js, msg, error, max_attempts=3):
        if msg.metadata.num_delivered < max_attempts:
            await msg.nak()
            return
        await js.publish("dlq.orders", msg.data, headers={"Reason": str(error)})
        await msg.term()

    assert_fails("queues.retry-dlq", no_delay, "nak with a delay")


def test_never_dead_lettering_fails():
    async def retry_forever(js, msg, error, max_attempts=3):
        await msg.nak(delay=0.05 * msg.metadata.num_delivered)

    assert_fails("queues.retry-dlq", retry_forever, "is not in the dead-letter stream")


def test_dead_lettering_without_term_fails():
    async def no_term(js, msg, error, max_attempts=3):
        attempt = msg.metadata.num_delivered
        if attempt < max_attempts:
            await msg.nak(delay=0.05 * 2 ** (attempt - 1))
        elif attempt == max_attempts:
            await js.publish("dlq.orders", msg.data, headers={"Reason": str(error)})

    assert_fails("queues.retry-dlq", no_term, "must not come back after attempt")


# --- queues.per-key-order ----------------------------------------------------------


def test_partition_reference_passes():
    assert_passes("queues.per-key-order")


def test_random_partition_fails():
    rng = random.Random(1)
    assert_fails("queues.per-key-order", lambda key, n: rng.randrange(n),
                 "not on state kept in one process, the order keys arrive in, or chance")


def test_one_partition_fails():
    assert_fails("queues.per-key-order", lambda key, n: 0, "used only 1 of 4 partitions")


def test_out_of_range_partition_fails():
    assert_fails("queues.per-key-order", lambda key, n: len(key), "return 0, 1, 2 or 3")


# --- queues.outbox ---------------------------------------------------------------


def test_outbox_reference_passes():
    assert_passes("queues.outbox")


def test_relay_without_msg_id_fails():
    def no_msg_id(conn, publish):
        rows = conn.execute("SELECT id, subject, body FROM outbox WHERE published = 0").fetchall()
        for row_id, subject, body in rows:
            publish(subject, body.encode())
            conn.execute("UPDATE outbox SET published = 1 WHERE id = ?", (row_id,))
            conn.commit()
        return len(rows)

    assert_fails("queues.outbox", no_msg_id, "publish with msg_id=")


def test_marking_before_publishing_fails():
    def mark_first(conn, publish):
        rows = conn.execute("SELECT id, message_id, subject, body FROM outbox "
                            "WHERE published = 0").fetchall()
        for row_id, message_id, subject, body in rows:
            conn.execute("UPDATE outbox SET published = 1 WHERE id = ?", (row_id,))
            conn.commit()
            publish(subject, body.encode(), msg_id=message_id)
        return len(rows)

    assert_fails("queues.outbox", mark_first, "never reached the stream")


def test_the_lab_place_order_writes_both_rows_or_neither():
    conn = exercises._outbox_tables()
    conn.execute("BEGIN")
    order_id = exercises.place_order(conn, "u1", "Keyboard")
    conn.rollback()
    assert conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    conn.execute("BEGIN")
    order_id = exercises.place_order(conn, "u1", "Keyboard")
    conn.commit()
    body = conn.execute("SELECT body FROM outbox").fetchone()[0]
    assert json.loads(body)["order_id"] == order_id


def test_python_hash_partition_fails_across_processes():
    # Issue 20: one process computed every partition, so hash() looked stable.
    assert_fails("queues.per-key-order", lambda key, n: hash(key) % n,
                 "Python's hash() of a str is salted per process")


def test_partition_state_kept_in_one_process_fails():
    assigned: dict[str, int] = {}

    def round_robin_remembered(key, partitions):
        return assigned.setdefault(key, len(assigned) % partitions)

    assert_fails("queues.per-key-order", round_robin_remembered,
                 "not on state kept in one process")


def test_partition_by_the_sample_keys_digits_fails():
    # Sample-only: the keys are drawn at check time, so a table of the sample's keys fails.
    table = {f"user-{n}": i % 4 for i, n in enumerate((3, 14, 15, 92, 65, 35, 89, 79))}
    assert_fails("queues.per-key-order", lambda key, n: table.get(key, 0),
                 "used only 1 of 4 partitions")


def test_relay_that_marks_without_committing_fails():
    # Issue 23, "requirement skipped": the rows look published on the relay's own connection.
    def no_commit(conn, publish):
        rows = conn.execute("SELECT id, message_id, subject, body FROM outbox "
                            "WHERE published = 0").fetchall()
        for row_id, message_id, subject, body in rows:
            publish(subject, body.encode(), msg_id=message_id)
            conn.execute("UPDATE outbox SET published = 1 WHERE id = ?", (row_id,))
        return len(rows)

    assert_fails("queues.outbox", no_commit, "marked the rows published but never committed")


def test_retry_with_a_fixed_delay_fails():
    # Issue 23, "happy path only": a fixed pause where the lesson is a growing delay.
    async def fixed(js, msg, error, max_attempts=3):
        if msg.metadata.num_delivered < max_attempts:
            await msg.nak(delay=0.1)
            return
        await js.publish("dlq.orders", msg.data, headers={"Reason": str(error)})
        await msg.term()

    assert_fails("queues.retry-dlq", fixed, "the delay should grow with each attempt")



# --- wrong answers by class (red team b) ---------------------------------------------


def test_publish_retrying_forever_fails():
    """Happy path only: retry until it works, however long the broker stays silent."""
    async def forever(js, order):
        while True:
            try:
                return await js.publish(f"orders.created.{order['user_id']}",
                                        json.dumps(order).encode(), timeout=1,
                                        headers={"Nats-Msg-Id": f"order-{order['order_id']}"})
            except TimeoutError:
                continue

    assert_fails("queues.safe-publish", forever, "retry a bounded number of times")


def test_publish_swallowing_the_last_timeout_fails():
    """Happy path only: three attempts, then None as if the order were stored."""
    async def swallow(js, order):
        for _ in range(3):
            try:
                return await js.publish(f"orders.created.{order['user_id']}",
                                        json.dumps(order).encode(), timeout=1,
                                        headers={"Nats-Msg-Id": f"order-{order['order_id']}"})
            except TimeoutError:
                pass
        return None

    assert_fails("queues.safe-publish", swallow, "raise the TimeoutError")


def test_retry_with_the_notebooks_three_fails():
    """A constant: the notebook's max_attempts=3 instead of the argument."""
    async def three(js, msg, error, max_attempts=3):
        attempt = msg.metadata.num_delivered
        if attempt < 3:
            await msg.nak(delay=0.05 * 2 ** (attempt - 1))
            return
        await js.publish("dlq.orders", msg.data, headers={"Reason": str(error)})
        await msg.term()

    assert_fails("queues.retry-dlq", three, "count attempts with max_attempts")


def test_retry_terminating_before_dead_lettering_fails():
    """Happy path only: term() first, so a failed publish to the dead letters loses it."""
    async def term_first(js, msg, error, max_attempts=3):
        attempt = msg.metadata.num_delivered
        if attempt < max_attempts:
            await msg.nak(delay=0.05 * 2 ** (attempt - 1))
            return
        await msg.term()
        await js.publish("dlq.orders", msg.data, headers={"Reason": str(error)})

    assert_fails("queues.retry-dlq", term_first, "Publish the dead letter first")


_attempts_here: dict[tuple[str, int], int] = {}


def test_retry_counting_attempts_in_the_process_fails():
    """One-process state: attempts counted in a module-level dict restart with the worker."""
    async def counted_here(js, msg, error, max_attempts=3):
        key = (msg.metadata.stream, msg.metadata.sequence.stream)
        _attempts_here[key] = attempt = _attempts_here.get(key, 0) + 1
        if attempt < max_attempts:
            await msg.nak(delay=0.05 * 2 ** (attempt - 1))
            return
        await js.publish("dlq.orders", msg.data, headers={"Reason": str(error)})
        await msg.term()

    assert_fails("queues.retry-dlq", counted_here, "msg.metadata.num_delivered")


def test_relay_republishing_every_row_fails():
    """Retries of everything: every row on every run, trusting the duplicate window."""
    def every_row(conn, publish):
        rows = conn.execute("SELECT id, message_id, subject, body FROM outbox").fetchall()
        for row_id, message_id, subject, body in rows:
            publish(subject, body.encode(), msg_id=message_id)
            conn.execute("UPDATE outbox SET published = 1 WHERE id = ?", (row_id,))
            conn.commit()
        return len(rows)

    assert_fails("queues.outbox", every_row, "published = 0")


def test_partition_by_the_keys_number_fails():
    """Sample-only: the number in user-<n> spreads the sample's keys, and no other key."""
    def by_number(key, partitions):
        return int(key.rsplit("-", 1)[1]) % partitions

    assert_fails("queues.per-key-order", by_number, "A key is any text")


def test_relay_swallowing_publish_errors_fails():
    """Happy path only: except Exception around publish, as if a dying process could carry on."""
    def swallow(conn, publish):
        rows = conn.execute("SELECT id, message_id, subject, body FROM outbox "
                            "WHERE published = 0 ORDER BY id").fetchall()
        for row_id, message_id, subject, body in rows:
            try:
                publish(subject, body.encode(), msg_id=message_id)
            except Exception:
                continue
            conn.execute("UPDATE outbox SET published = 1 WHERE id = ?", (row_id,))
            conn.commit()
        return len(rows)

    assert_fails("queues.outbox", swallow, "caught the exception of publish")
