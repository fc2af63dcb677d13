"""Q5 extended: presence, per-user rate limiting and preferences on the queues lab's pipeline.

The queues lab's pipeline takes ``POST /orders`` through an outbox and
JetStream to an idempotent worker, which commits each notification to the
user's inbox (a table) and then pushes it over SSE. :class:`Delivery` decides
that last step, per notification, after the commit:

- **preferences**: a user who muted a kind keeps it in the inbox, never pushed;
- **presence**: a user with no open SSE connection is offline; the
  notification is held and pushed as soon as the user connects again;
- **rate limiting**: a token bucket per user (``burst``, then ``per_second``);
  over it, the notification stays in the inbox, and the next push says how
  many were held back.

``attach(pipeline)`` runs the queues lab's own :class:`Worker` with
``on_commit=delivery.deliver``; nothing of that lab changes.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from ...ratelimit import RateLimiter, TokenBucket
from ..queues import Worker
from ..sse.server import Broker

__all__ = ["Delivery", "attach"]

KIND = "order"   # the pipeline's notifications are about orders


class Delivery:
    """Routes committed notifications: muted, held for an offline user, limited, or pushed.

    Presence is what the SSE broker says: a user is online while a stream of
    theirs is open. A watcher looks every ``presence_interval`` seconds and
    pushes what is held for users who have come back. ``close()`` ends it.
    """

    def __init__(self, broker: Broker, *, burst: int = 3, per_second: float = 0.2,
                 clock: Callable[[], float] = time.monotonic,
                 presence_interval: float = 0.05) -> None:
        self.broker = broker
        self.clock = clock
        self.muted: dict[str, set[str]] = defaultdict(set)
        self.limiter = RateLimiter(lambda: TokenBucket(burst, per_second))
        self.held: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.limited: Counter[str] = Counter()
        self.outcomes: list[tuple[str, str, str]] = []   # (user, outcome, text)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._watcher = threading.Thread(target=self._watch, args=(presence_interval,),
                                         name="interview-presence", daemon=True)
        self._watcher.start()

    def mute(self, user_id: int, kind: str = KIND) -> None:
        """The user's preference: never push ``kind`` (it still reaches the inbox)."""
        self.muted[f"user-{user_id}"].add(kind)

    def online(self, client: str) -> bool:
        return client in self.broker.connections()

    def deliver(self, notes: list[dict[str, Any]]) -> None:
        """The worker's ``on_commit``: route each notification it has just committed."""
        for note in notes:
            self._route(f"user-{note['user_id']}", note)

    def _route(self, client: str, note: dict[str, Any]) -> None:
        with self._lock:
            if KIND in self.muted[client]:
                outcome = "muted: inbox only"
            elif not self.online(client):
                self.held[client].append(note)
                outcome = "offline: held until the user returns"
            elif self.limiter.wait_time(client, self.clock()) > 0:
                self.limited[client] += 1
                outcome = "rate-limited: inbox only"
            else:
                self._push(client, note)
                outcome = "pushed"
            self.outcomes.append((client, outcome, note["text"]))

    def _push(self, client: str, note: dict[str, Any]) -> None:
        held_back = self.limited.pop(client, 0)
        self.broker.publish("notification", {**note, "held_back": held_back}, to=client)

    def _watch(self, interval: float) -> None:
        while not self._closed.wait(interval):
            online = set(self.broker.connections())
            with self._lock:
                for client in [c for c in self.held if c in online]:
                    for note in self.held.pop(client):
                        self._push(client, note)
                        self.outcomes.append((client, "returned: pushed on connect",
                                              note["text"]))

    def close(self) -> None:
        """Stop watching for returning users."""
        self._closed.set()
        self._watcher.join(timeout=2)

    def __enter__(self) -> Delivery:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def attach(pipeline: Any, **options: Any) -> Delivery:
    """Route ``pipeline``'s notifications through a new :class:`Delivery` (its worker restarts)."""
    delivery = Delivery(pipeline.sse, **options)
    pipeline.stop_worker()
    pipeline.worker = Worker(pipeline.servers, on_commit=delivery.deliver,
                             engine=pipeline.engine, name="interview-worker").start()
    return delivery
