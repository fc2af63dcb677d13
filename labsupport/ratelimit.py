"""Token-bucket rate limiting, the algorithm behind most APIs' 429 responses."""

from __future__ import annotations

import threading
from collections.abc import Callable


class TokenBucket:
    """Allow bursts of ``capacity`` requests, refilled at ``rate`` tokens a second.

    ``take(now)`` spends one token and returns 0.0, or, when the bucket is
    empty, spends nothing and returns how many seconds until a token is free
    (what ``Retry-After`` tells the client). The clock is passed in, so the
    bucket is easy to test and to share between threads under one lock.
    """

    def __init__(self, capacity: int, rate: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = float(capacity)
        self.updated: float | None = None

    def take(self, now: float) -> float:
        if self.updated is not None:
            elapsed = max(0.0, now - self.updated)
            self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class RateLimiter:
    """One bucket per client key, made on first sight by ``bucket_factory``."""

    def __init__(self, bucket_factory: Callable[[], TokenBucket]) -> None:
        self._factory = bucket_factory
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def wait_time(self, key: str, now: float) -> float:
        """Seconds the client ``key`` must wait; 0.0 means serve the request."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = self._factory()
            return bucket.take(now)
