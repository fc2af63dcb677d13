"""Measured, in one run, against a floor: what a queue costs next to a direct call.

``await measure(broker.url, notifier.url)`` returns median times (seconds) of
a core-NATS request-reply round trip (the floor), a direct HTTP call, a
JetStream publish acknowledged (memory and file storage), publish -> consume
end to end, and the time for 1 and for 4 competing workers to drain a backlog
whose messages each take ``work`` seconds of waiting (I/O) to handle. The
notebook runs it with small counts; ``tools/bench_queues.py`` with larger.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from typing import Any

import nats
import requests
from nats.js.api import AckPolicy, ConsumerConfig, StorageType

__all__ = ["measure", "ratios"]


def _median(samples: list[float]) -> float:
    return statistics.median(samples)


async def _timed(coro_factory: Any, count: int) -> float:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        await coro_factory()
        samples.append(time.perf_counter() - start)
    return _median(samples)


async def _drain(js: Any, stream: str, subject: str, workers: int, messages: int,
                 work: float) -> float:
    """Seconds for ``workers`` competing consumers to handle ``messages`` messages."""
    durable = f"drain{workers}"
    for n in range(messages):
        await js.publish(subject, b"%d" % n)
    config = ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT, ack_wait=5)
    subs = [await js.pull_subscribe(subject, durable=durable, stream=stream, config=config)
            for _ in range(workers)]
    done = 0
    finished = asyncio.Event()

    async def worker(sub: Any) -> None:
        nonlocal done
        while True:
            try:
                msgs = await sub.fetch(1, timeout=0.5)
            except TimeoutError:  # nats-py raises its own or asyncio's
                continue
            for msg in msgs:
                await asyncio.sleep(work)  # the work: waiting on a database, an email API...
                await msg.ack()
                done += 1
                if done == messages:
                    finished.set()

    start = time.perf_counter()
    tasks = [asyncio.ensure_future(worker(sub)) for sub in subs]
    try:
        await asyncio.wait_for(finished.wait(), 30)
        elapsed = time.perf_counter() - start
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for sub in subs:
            await sub.unsubscribe()
    await js.delete_consumer(stream, durable)
    await js.purge_stream(stream)
    return elapsed


async def measure(url: str, http_url: str, *, count: int = 50, messages: int = 40,
                  work: float = 0.005) -> dict[str, float]:
    """Median seconds of each way (``count`` samples each) and drain times; see module doc."""
    nc = await nats.connect(url, connect_timeout=2)
    js = nc.jetstream(timeout=2)
    tag = uuid.uuid4().hex[:6].upper()
    results: dict[str, float] = {}
    try:
        async def pong(msg: Any) -> None:
            await msg.respond(b"pong")

        await nc.subscribe(f"floor.{tag}", cb=pong)
        await nc.request(f"floor.{tag}", b"", timeout=2)  # warm up
        results["core NATS request-reply"] = await _timed(
            lambda: nc.request(f"floor.{tag}", b"ping", timeout=2), count)

        session = requests.Session()
        session.post(f"{http_url}/notify", json={"order_id": 0, "user_id": "u"}, timeout=5)

        async def http_call() -> None:
            await asyncio.to_thread(session.post, f"{http_url}/notify",
                                    json={"order_id": 1, "user_id": "u"}, timeout=5)
        results["direct HTTP call"] = await _timed(http_call, count)
        session.close()

        for storage in (StorageType.MEMORY, StorageType.FILE):
            name = f"M{storage.value.upper()}{tag}"
            await js.add_stream(name=name, subjects=[f"{name.lower()}.>"], storage=storage)
            subject = f"{name.lower()}.x"
            await js.publish(subject, b"warm")
            results[f"JetStream publish ack ({storage.value})"] = await _timed(
                lambda subject=subject: js.publish(subject, b'{"order_id": 1}'), count)
            await js.delete_stream(name)

        name = f"E2E{tag}"
        await js.add_stream(name=name, subjects=[f"{name.lower()}.>"],
                            storage=StorageType.MEMORY)
        sub = await js.pull_subscribe(f"{name.lower()}.x", durable="e2e", stream=name)

        async def publish_then_consume() -> None:
            await js.publish(f"{name.lower()}.x", b"1")
            for msg in await sub.fetch(1, timeout=2):
                await msg.ack()
        results["publish -> consume"] = await _timed(publish_then_consume, count)
        await sub.unsubscribe()
        await js.delete_consumer(name, "e2e")
        await js.purge_stream(name)
        for workers in (1, 4):
            results[f"drain, {workers} worker{'s' if workers > 1 else ''}"] = await _drain(
                js, name, f"{name.lower()}.y", workers, messages, work)
        await js.delete_stream(name)
    finally:
        await nc.close()
    return results


def ratios(results: dict[str, float], floor: str = "core NATS request-reply") -> dict[str, float]:
    """Each latency as a multiple of the floor (drain times are left out)."""
    base = results[floor]
    return {k: v / base for k, v in results.items() if not k.startswith("drain")}
