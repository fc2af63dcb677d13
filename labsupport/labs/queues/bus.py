"""A NATS connection usable from ordinary threads (Flask views, notebook cells, tests).

nats-py is asyncio. :class:`Bus` runs one connection on its own event loop
in a background thread (never the kernel's) and gives blocking methods with a
timeout on every wait::

    bus = Bus(broker.servers)
    ack = bus.publish("orders.created.7", {"order_id": 1}, msg_id="order-1")
    bus.close()
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

import nats
from nats.js.api import PubAck

from ...harness import BackgroundLoop

__all__ = ["Bus", "encode", "end_tasks"]

T = TypeVar("T")
TIMEOUT = 5.0


async def end_tasks(main: asyncio.Task | None = None, timeout: float = 1.0) -> None:
    """Wait for ``main``, then cancel and await what else runs on this loop.

    A loop closed with the client's tasks still pending makes asyncio print
    "Task was destroyed" from a background thread, into whatever cell runs.
    """
    if main is not None:
        await asyncio.wait([main], timeout=timeout)
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in others:
        task.cancel()
    if others:
        await asyncio.wait(others, timeout=1)


def encode(data: Any) -> bytes:
    """JSON bytes for a message body (bytes pass through)."""
    return data if isinstance(data, bytes) else json.dumps(data).encode()


class Bus:
    """One NATS connection on a background loop, with blocking, bounded calls."""

    def __init__(self, servers: str | list[str], *, name: str = "bus",
                 timeout: float = TIMEOUT) -> None:
        self.timeout = timeout
        self._background = BackgroundLoop(f"{name}-loop")
        try:
            self.nc = self.run(nats.connect(
                servers=servers, name=name, connect_timeout=2, reconnect_time_wait=0.2,
                max_reconnect_attempts=-1, allow_reconnect=True,
                error_cb=self._ignore, disconnected_cb=self._nothing,
            ))
        except BaseException:
            self._background.close()
            raise
        self.js = self.nc.jetstream(timeout=timeout)

    @staticmethod
    async def _ignore(error: Exception) -> None:
        """Connection errors are retried by the client; never printed into a cell."""

    @staticmethod
    async def _nothing() -> None:
        pass

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the bus's loop and wait for it, at most ``timeout`` s."""
        return self._background.run(coro, timeout or self.timeout + 1)

    def publish(self, subject: str, data: Any, *, msg_id: str | None = None,
                headers: dict[str, str] | None = None) -> PubAck:
        """Publish to JetStream and wait for the stream's acknowledgement."""
        headers = dict(headers or {})
        if msg_id is not None:
            headers["Nats-Msg-Id"] = msg_id
        return self.run(self.js.publish(subject, encode(data), headers=headers or None))

    def publish_core(self, subject: str, data: Any) -> None:
        """Core NATS publish: fire and forget, no stream, no acknowledgement."""
        async def publish_and_flush() -> None:
            await self.nc.publish(subject, encode(data))
            await self.nc.flush(int(self.timeout))
        self.run(publish_and_flush())

    def request(self, subject: str, data: Any, timeout: float = 1.0) -> bytes:
        """Core NATS request-reply: the reply's body."""
        return self.run(self.nc.request(subject, encode(data), timeout=timeout)).data

    def close(self) -> None:
        """Drain and close the connection, then end the loop."""
        try:
            if not self.nc.is_closed:
                self.run(self.nc.close())
            self.run(end_tasks())
        finally:
            self._background.close()

    def __enter__(self) -> Bus:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
