"""Load and failure: producers while workers die, and a cluster losing its stream leader."""

from __future__ import annotations

import asyncio
import random
import threading
import time

import nats
import pytest
from sqlalchemy import func, select

from labsupport import database, queues
from labsupport.labs.queues import store
from labsupport.labs.queues.worker import ORDERS, ensure_streams

pytestmark = pytest.mark.slow  # a whole system: `make quick` leaves it out

PRODUCERS = 5
PER_PRODUCER = 2000


@pytest.fixture
def broker():
    database.reset()
    with queues.start(name="queues-load") as handle:
        yield handle


def produce(servers: list[str], producer: int, republished: list[int]) -> None:
    """Publish this producer's orders; now and then publish one again, as a retry would."""
    rng = random.Random(producer)
    with queues.Bus(servers, name=f"producer-{producer}") as bus:
        for n in range(PER_PRODUCER):
            body = {"order_id": f"{producer}-{n}", "user_id": f"u{producer}"}
            msg_id = f"p{producer}-{n}"
            bus.publish(f"orders.created.u{producer}", body, msg_id=msg_id)
            if rng.random() < 0.02:
                ack = bus.publish(f"orders.created.u{producer}", body, msg_id=msg_id)
                assert ack.duplicate, "the stream kept a republished Nats-Msg-Id"
                republished.append(1)


def test_workers_killed_at_random_lose_nothing_and_apply_nothing_twice(broker):
    with queues.Bus(broker.servers) as bus:
        bus.run(ensure_streams(bus.js, storage="memory"))
    republished: list[int] = []
    producers = [threading.Thread(target=produce, args=(broker.servers, p, republished))
                 for p in range(PRODUCERS)]
    for thread in producers:
        thread.start()

    rng = random.Random(7)

    def new_worker(index: int) -> queues.Worker:
        return queues.Worker(broker.servers, ack_wait=0.5, batch=100, max_deliver=20,
                             name=f"w{index}").start()

    workers = [new_worker(i) for i in range(3)]
    kills = 0
    applied: list[int] = []
    skipped: list[int] = []
    total = PRODUCERS * PER_PRODUCER
    deadline = time.monotonic() + 60
    while store.effects_count() < total and time.monotonic() < deadline:
        time.sleep(rng.uniform(0.2, 0.6))
        index = rng.randrange(len(workers))
        workers[index].kill()  # mid-batch: effects committed but not acked come back
        kills += 1
        applied.append(workers[index].applied)
        skipped.append(workers[index].skipped)
        workers[index] = new_worker(index)
    for thread in producers:
        thread.join(30)
    dead = sum(worker.dead_lettered for worker in workers)
    for worker in workers:
        worker.stop()
        applied.append(worker.applied)
        skipped.append(worker.skipped)

    with database.current_engine().connect() as conn:
        distinct = conn.execute(select(func.count(func.distinct(
            store.notifications.c.message_id)))).scalar_one()
    assert kills > 0 and dead == 0
    assert distinct == total, f"lost {total - distinct} of {total} messages"
    assert store.duplicate_effects() == 0
    assert store.effects_count() == total
    assert sum(applied) == total  # redeliveries after kills were acked, never applied again
    print(f"{kills} kills, {len(republished)} publishes repeated (dropped by the stream), "
          f"{sum(skipped)} redeliveries skipped by the idempotent consumer")


async def leader_of(nc: nats.NATS, stream: str) -> str:
    """The stream's leader, once the cluster has one (bounded: 30 s, two Raft elections)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            info = await nc.jetstream(timeout=1).stream_info(stream)
            if info.cluster and info.cluster.leader:
                return info.cluster.leader
        except nats.errors.Error:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.1)


def test_a_cluster_survives_its_stream_leader_dying():
    database.reset()
    count = 300
    with queues.start(cluster=3, name="queues-failover") as cluster:
        errors: list[str] = []

        async def publish_all() -> tuple[int, str]:
            nc = await nats.connect(servers=cluster.servers, connect_timeout=2,
                                    reconnect_time_wait=0.1, max_reconnect_attempts=-1)
            js = nc.jetstream(timeout=1)
            await ensure_streams(js, replicas=3)
            killed = ""
            for n in range(count):
                if n == count // 3:
                    killed = await leader_of(nc, ORDERS)
                    cluster.kill_node(int(killed[1:]) - 1)
                deadline = time.monotonic() + 30  # two Raft elections of 4-9 s, at most
                while True:
                    try:
                        await js.publish("orders.created.u1", b'{"order_id": %d, "user_id": 1}'
                                         % n, headers={"Nats-Msg-Id": f"m{n}"})
                        break
                    except Exception as exc:  # the publisher retries with the same id
                        errors.append(type(exc).__name__)
                        assert time.monotonic() < deadline, f"publish {n} kept failing: {errors}"
                        await asyncio.sleep(0.1)
            new_leader = await leader_of(nc, ORDERS)
            stored = (await nc.jetstream(timeout=5).stream_info(ORDERS)).state.messages
            await nc.close()
            assert new_leader != killed
            return stored, killed

        stored, killed = asyncio.run(publish_all())
        assert stored == count, f"the stream holds {stored} messages for {count} published"
        worker = queues.Worker(cluster.servers, batch=100).start(timeout=30)  # leaders elect
        deadline = time.monotonic() + 15
        while store.effects_count() < count and time.monotonic() < deadline:
            time.sleep(0.1)
        worker.stop()
        assert store.effects_count() == count
        assert store.duplicate_effects() == 0
        assert len(errors) < 100, f"the publisher saw {len(errors)} errors: {errors[:5]}"
