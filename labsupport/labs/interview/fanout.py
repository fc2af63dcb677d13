"""Fan-out across server processes: SSE servers that share one NATS subject.

Each SSE server knows only its own connections. Behind a load balancer, a
user's browser is on one of them and the event that concerns it may be
published on another. ``start(broker, count)`` runs ``count`` SSE lab servers
(here in one kernel; in production, separate processes or machines: what
matters is that none sees another's connections), each subscribed to the
subject ``fanout.events`` on the queues lab's broker. ``publish`` sends one
event to that subject, and every server pushes it to its own clients.
"""

from __future__ import annotations

import json
from typing import Any

from ..queues import Bus
from ..sse import server as sse
from ..sse.server import SSEHandle

__all__ = ["SUBJECT", "Fleet", "start"]

SUBJECT = "fanout.events"


class Fleet:
    """The SSE servers, their subscriptions, and a connection to publish with."""

    def __init__(self, servers: list[SSEHandle], buses: list[Bus], publisher: Bus) -> None:
        self.servers = servers
        self._buses = buses
        self._publisher = publisher

    def publish(self, type: str, data: Any, to: str | None = None) -> None:
        """One event on the broker; every server pushes it to its own clients."""
        self._publisher.publish_core(SUBJECT, {"type": type, "data": data, "to": to})

    def stop(self) -> None:
        for bus in [*self._buses, self._publisher]:
            bus.close()
        for server in self.servers:
            server.stop()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _relay_into(server: SSEHandle, bus: Bus) -> None:
    """Subscribe ``server``'s SSE broker to the subject; wait until the server has it."""
    broker = server.broker

    async def on_event(msg: Any) -> None:
        event = json.loads(msg.data)
        broker.publish(event["type"], event["data"], to=event.get("to"))

    async def subscribe() -> None:
        await bus.nc.subscribe(SUBJECT, cb=on_event)
        await bus.nc.flush(2)   # the subscription has reached the broker

    bus.run(subscribe())


def start(broker: Any, count: int = 2, *, heartbeat: float = 0.5) -> Fleet:
    """``count`` SSE servers (names ``fanout-1``...), each relaying ``fanout.events``."""
    servers: list[SSEHandle] = []
    buses: list[Bus] = []
    try:
        for n in range(1, count + 1):
            server = sse.start(name=f"fanout-{n}", heartbeat=heartbeat)
            servers.append(server)
            bus = Bus(broker.servers, name=f"fanout-{n}")
            buses.append(bus)
            _relay_into(server, bus)
        publisher = Bus(broker.servers, name="fanout-publisher")
    except BaseException:
        for bus in buses:
            bus.close()
        for server in servers:
            server.stop()
        raise
    return Fleet(servers, buses, publisher)
