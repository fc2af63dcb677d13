"""Exercises of notebooks/06-long-polling.ipynb: backoff, a lossless poller, the 410 resync."""

from __future__ import annotations

import random
import threading
import time
from types import ModuleType
from typing import Any

import requests

from ...engine import NotAttempted, Unmet, exercise, expect
from . import server as long_polling

NOTEBOOK = "06-long-polling"


# --- 1. backoff with jitter -----------------------------------------------------

def retry_delay(attempt: int, base: float = 0.5, cap: float = 30.0,
                rng: random.Random | ModuleType = random) -> float:
    """Exponential backoff, capped, with full jitter: uniform in [0, min(cap, base * 2**n)]."""
    return rng.uniform(0, min(cap, base * 2 ** attempt))


@exercise(
    "long-polling.backoff",
    title="Back off with jitter after a failed poll",
    notebook=NOTEBOOK,
    hints=[
        "Double the wait on each attempt: base * 2 ** attempt.",
        "Never wait more than cap: min(cap, ...).",
        "If a thousand clients fail at once and all wait exactly that long, they all come "
        "back at once. Pick a random wait between 0 and that bound: rng.uniform(0, bound).",
    ],
    reference=retry_delay,
)
def check_backoff(retry_delay):
    rng = random.Random(2024)
    first = retry_delay(0, 0.5, 30.0, rng)
    if first is None:
        raise NotAttempted("retry_delay returns None")
    for attempt in range(12):
        bound = min(8.0, 0.5 * 2 ** attempt)
        sample = [retry_delay(attempt, 0.5, 8.0, rng) for _ in range(200)]
        for delay in sample:
            expect(isinstance(delay, (int, float)), f"return seconds as a number, got {delay!r}")
            expect(delay <= 8.0, f"attempt {attempt} waited {delay:.1f} s, above the cap 8 s")
            expect(0 <= delay <= bound + 1e-9,
                   f"attempt {attempt} waited {delay:.2f} s; with base 0.5 it should wait at "
                   f"most {bound:g} s")
        expect(len(set(sample)) > 150,
               f"attempt {attempt} gave the same wait {sample[0]:.2f} s every time: clients "
               f"that failed together would all retry together; add random jitter")
        expect(max(sample) > 0.8 * bound,
               f"attempt {attempt} never waited more than {max(sample):.2f} s of the "
               f"{bound:g} s allowed: let the wait grow")
    return "exponential, capped at 8 s, and spread by jitter"


# --- 2. a poller that never loses a message ---------------------------------------

def collect(base_url: str, user_id: str, count: int) -> list[dict]:
    """Long-poll until ``count`` notifications arrived; each once, in order."""
    received: list[dict] = []
    cursor = 0
    url = f"{base_url}/api/notifications/{user_id}/poll"
    while len(received) < count:
        response = requests.get(url, params={"cursor": cursor, "timeout": 1}, timeout=5)
        response.raise_for_status()
        body = response.json()
        received.extend(body["notifications"])
        cursor = body["cursor"]
    return received


@exercise(
    "long-polling.poller",
    title="A poller that never loses or repeats a notification, in every tab",
    notebook=NOTEBOOK,
    hints=[
        "Poll GET /api/notifications/<user>/poll?cursor=...&timeout=1 in a loop until you "
        "have `count` notifications.",
        "Send the cursor of the last response (body['cursor']) with the next poll; start "
        "at 0.",
        "A response with no notifications (timeout true) is normal: poll again.",
    ],
    reference=collect,
    timeout=15,
)
def check_poller(collect):
    with long_polling.start(name="long-polling-check", max_timeout=5) as server:
        results: dict[str, Any] = {}
        errors: dict[str, BaseException] = {}

        def tab(name):
            try:
                results[name] = collect(server.url, "ada", 6)
            except BaseException as exc:  # reported below
                errors[name] = exc

        server.hub.send("ada", "message", {"n": 1})
        server.hub.send("ada", "message", {"n": 2})
        tabs = [threading.Thread(target=tab, args=(n,), daemon=True) for n in ("tab 1", "tab 2")]
        for thread in tabs:
            thread.start()
        for n in range(3, 7):
            time.sleep(0.15)
            server.hub.send("ada", "message", {"n": n})
        for thread in tabs:
            thread.join(10)
    if errors:
        raise next(iter(errors.values()))
    for name in ("tab 1", "tab 2"):
        got = results.get(name)
        if got is None:
            raise NotAttempted("collect returns None")
        ids = [n["id"] if isinstance(n, dict) else n for n in got]
        for id in set(ids):
            expect(ids.count(id) == 1,
                   f"{name} received notification {id} {ids.count(id)} times ({ids}): send "
                   f"the cursor of the last response with the next poll")
        expect(ids == [1, 2, 3, 4, 5, 6],
               f"{name} received {ids}, expected [1, 2, 3, 4, 5, 6] in order")
    return "two tabs of one user each received notifications 1-6, once each, in order"


# --- 3. the 410 resync --------------------------------------------------------------

def poll_or_resync(base_url: str, user_id: str, cursor: int) -> tuple[list[dict], int]:
    """One poll; on 410 Gone, load the snapshot. Returns (notifications, next cursor)."""
    response = requests.get(f"{base_url}/api/notifications/{user_id}/poll",
                            params={"cursor": cursor, "timeout": 0}, timeout=5)
    if response.status_code == 410:
        response = requests.get(f"{base_url}/api/notifications/{user_id}", timeout=5)
    response.raise_for_status()
    body = response.json()
    return body["notifications"], body["cursor"]


@exercise(
    "long-polling.resync",
    title="Recover from 410 Gone: resync from the snapshot, lose nothing the server kept",
    notebook=NOTEBOOK,
    hints=[
        "Poll with the cursor and timeout=0. A 200 gives notifications and the next cursor.",
        "410 means the history no longer reaches back to your cursor. Polling again with it "
        "(or with 0) gives 410 again.",
        "GET /api/notifications/<user> returns everything the server still holds and the "
        "cursor to poll from next: return those.",
    ],
    reference=poll_or_resync,
)
def check_resync(poll_or_resync):
    with long_polling.start(name="long-polling-check", history=5) as server:
        for n in range(1, 13):
            server.hub.send("ada", "message", {"n": n})
        result = poll_or_resync(server.url, "ada", 9)
        if result is None:
            raise NotAttempted("poll_or_resync returns None")
        expect(isinstance(result, tuple) and len(result) == 2,
               f"return (notifications, cursor); got {result!r}")
        notifications, cursor = result
        ids = [n["id"] for n in notifications]
        expect(ids == [10, 11, 12] and cursor == 12,
               f"from cursor 9 expected [10, 11, 12] and cursor 12, got {ids} and {cursor}")
        notifications, cursor = poll_or_resync(server.url, "ada", 2)
        ids = [n["id"] for n in notifications]
        expect(cursor == 12, f"after the 410, continue from the snapshot's cursor 12; "
                             f"you returned {cursor}")
        if ids != [8, 9, 10, 11, 12]:
            raise Unmet(f"from cursor 2 (history holds 8-12) you returned {ids}: the server "
                        f"still had 8-12, take them from the snapshot")
        notifications, cursor = poll_or_resync(server.url, "ada", 12)
        expect(list(notifications) == [] and cursor == 12,
               f"up to date at 12: expected [] and 12, got {notifications} and {cursor}")
    return "200s followed the cursor; the 410 resynced from the snapshot with nothing lost"
