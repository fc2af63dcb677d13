"""Exercises of notebooks/06-long-polling.ipynb: no lost wake-up, backoff, a lossless poller,
the 410 resync."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import requests

from ...engine import NotAttempted, Unmet, cases, exercise, expect
from . import server as long_polling

NOTEBOOK = "06-long-polling"


# --- 1. check and wait under one lock ---------------------------------------------

def wait_for_news(inbox: long_polling.Inbox, cursor: int, timeout: float) -> list[dict]:
    """The notifications after ``cursor``, waiting up to ``timeout`` s; none slips past."""
    with inbox.changed:            # a sender needs this lock to add, so none comes in between
        inbox.changed.wait_for(lambda: inbox.latest > cursor, timeout)
        return [n for n in inbox.history if n["id"] > cursor]


GAP_WAIT = 0.3  # how long a sender tries to get in when the learner is about to wait


class _WatchedHistory(deque):
    """An inbox's history that tells the inbox each time it is read."""

    def __init__(self, inbox: _GapInbox, maxlen: int) -> None:
        super().__init__(maxlen=maxlen)
        self._inbox = inbox

    def __iter__(self) -> Iterator[Any]:
        self._inbox.looked()
        return super().__iter__()

    def __len__(self) -> int:
        self._inbox.looked()
        return super().__len__()

    def __getitem__(self, index: Any) -> Any:
        self._inbox.looked()
        return super().__getitem__(index)


class _GapCondition(threading.Condition):
    """An inbox's condition that tells the inbox when a thread is about to lock or wait."""

    def __init__(self, inbox: _GapInbox) -> None:
        super().__init__()
        self._inbox = inbox

    def __enter__(self) -> bool:
        self._inbox.about_to_wait()
        return super().__enter__()

    def wait(self, timeout: float | None = None) -> bool:
        self._inbox.about_to_wait()
        return super().wait(timeout)


class _GapInbox(long_polling.Inbox):
    """An inbox where, once armed, a notification is sent between the check and the wait.

    After the armed thread has looked (read ``latest`` or ``history``), its next
    ``with inbox.changed`` or ``wait`` first lets a sender try for ``GAP_WAIT``
    s. The sender needs ``changed``, as ``Inbox.add`` does: if the learner still
    holds it from the check, the sender gets in only when the learner's ``wait``
    lets go, and wakes it; if the learner let go after checking, the sender gets
    in at once, notifies nobody, and the learner then waits for nothing: the
    document's lost wake-up.
    """

    def __init__(self, history: int = 100) -> None:
        self._latest = 0
        self._reader: int | None = None
        self._has_looked = False
        self.sender: threading.Thread | None = None
        super().__init__(history)
        self.history = _WatchedHistory(self, history)
        self.changed = _GapCondition(self)

    @property
    def latest(self) -> int:
        self.looked()
        return self._latest

    @latest.setter
    def latest(self, value: int) -> None:
        self._latest = value

    def arm(self) -> None:
        """Send a notification between the calling thread's next check and its wait."""
        self._reader, self._has_looked = threading.get_ident(), False

    def looked(self) -> None:
        if self._reader == threading.get_ident():
            self._has_looked = True

    def about_to_wait(self) -> None:
        if self._reader != threading.get_ident() or not self._has_looked:
            return
        self._reader = None
        self.sender = threading.Thread(target=self.add, args=("message", {"text": "Now?"}),
                                       name="gap-sender", daemon=True)
        self.sender.start()
        self.sender.join(GAP_WAIT)


def _ids(result: Any) -> list[Any]:
    expect(isinstance(result, list), f"return a list of notifications, got {result!r}")
    return [n["id"] if isinstance(n, dict) else n for n in result]


def _timed(wait_for_news: Callable[..., Any], inbox: _GapInbox, cursor: int, timeout: float,
           *, arm: bool = False) -> tuple[Any, float]:
    """Call the learner's function in a thread of its own: (its result, the seconds it took)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        if arm:
            inbox.arm()
        started = time.monotonic()
        try:
            outcome["result"] = wait_for_news(inbox, cursor, timeout)
        except BaseException as exc:  # reported below
            outcome["error"] = exc
        outcome["took"] = time.monotonic() - started

    thread = threading.Thread(target=run, name="wait-for-news", daemon=True)
    thread.start()
    thread.join(timeout + 2)
    if thread.is_alive():
        raise Unmet(f"wait_for_news(inbox, {cursor}, {timeout:g}) was still waiting "
                    f"{timeout + 2:g} s later: wait at most timeout seconds")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"], outcome["took"]


@exercise(
    "long-polling.wakeup",
    title="Check and wait under one lock: no lost wake-up",
    notebook=NOTEBOOK,
    hints=[
        "Hold the lock around both the check and the wait: with inbox.changed: ... A sender "
        "needs that lock to add a notification, so none can arrive in between.",
        "inbox.changed.wait_for(lambda: inbox.latest > cursor, timeout) checks first, then "
        "waits (letting go of the lock while it waits) until the condition holds or the "
        "timeout passes.",
        "Then, still inside the with, return [n for n in inbox.history if n['id'] > cursor]. "
        "Never remove them: another tab needs them too.",
    ],
    reference=wait_for_news,
    timeout=20,
)
def check_wakeup(wait_for_news):
    inbox = _GapInbox()
    for n in (1, 2, 3):
        inbox.add("message", {"n": n})
    result, took = _timed(wait_for_news, inbox, 1, 2.0)
    if result is None:
        raise NotAttempted("wait_for_news returns None")
    ids = _ids(result)
    expect(ids == [2, 3], f"with notifications 1-3 and cursor 1, expected [2, 3], got {ids}")
    expect(took < 1.0, f"notifications 2 and 3 were there already, yet you answered after "
                       f"{took:.1f} s: return at once when there is news")
    again, _ = _timed(wait_for_news, inbox, 1, 2.0)
    expect(_ids(again) == [2, 3],
           f"a second tab, also at cursor 1, got {_ids(again)}: return the notifications, "
           f"never remove them")

    result, took = _timed(wait_for_news, inbox, 3, 0.5)
    expect(_ids(result) == [], f"nothing after cursor 3, yet you returned {_ids(result)}")
    expect(took >= 0.4, f"nothing new after cursor 3: you answered after {took:.2f} s; hold "
                        f"the request until news comes or the timeout (0.5 s) passes")

    timer = threading.Timer(0.2, inbox.add, ("message", {"n": 4}))
    timer.start()
    result, took = _timed(wait_for_news, inbox, 3, 3.0)
    timer.join(1)
    expect(_ids(result) == [4], f"notification 4 arrived while you waited at cursor 3; you "
                                f"returned {_ids(result)}")
    expect(took < 2.0, f"notification 4 arrived 0.2 s into the wait, yet you answered after "
                       f"{took:.1f} s: wait on inbox.changed, which its sender notifies")

    result, took = _timed(wait_for_news, inbox, 4, 3.0, arm=True)
    if inbox.sender is not None:
        inbox.sender.join(1)
    expect(inbox.sender is not None,
           f"nothing came after cursor 4 and you answered after {took:.1f} s without waiting on "
           f"inbox.changed: wait on the condition, which every sender notifies")
    expect(took < 2.0, f"notification 5 arrived between your check and your wait and woke "
                       f"nobody: you answered after {took:.1f} s, the whole timeout. Check and "
                       f"wait while holding inbox.changed")
    expect(_ids(result) == [5], f"notification 5 arrived just as you looked at cursor 4; you "
                                f"returned {_ids(result)}")
    _check_wrapped_history(wait_for_news, cases())
    return ("news at once, a wait bounded by the timeout, woken by a new notification, and "
            "none lost between the check and the wait")


def _check_wrapped_history(wait_for_news, draw) -> None:
    """An inbox whose history has dropped its oldest: ids no longer match positions."""
    kept = draw.randint(3, 6)
    total = kept + draw.randint(2, 6)
    inbox = _GapInbox(history=kept)
    for n in range(1, total + 1):
        inbox.add("message", {"n": n})
    cursor = draw.randrange(total - kept + 1, total)
    result, _ = _timed(wait_for_news, inbox, cursor, 1.0)
    want = list(range(cursor + 1, total + 1))
    expect(_ids(result) == want,
           f"an inbox that keeps its last {kept} of {total} notifications holds ids "
           f"{total - kept + 1}-{total}; after cursor {cursor} expected {want}, you returned "
           f"{_ids(result)}: pick notifications by their id, not their position in history")


# --- 2. backoff with jitter -----------------------------------------------------

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
    _check_drawn_backoff(retry_delay, cases())
    return "exponential, capped, and spread by full jitter over [0, bound]"


def _check_drawn_backoff(retry_delay, draw) -> None:
    """A base and a cap the learner has not seen, and the spread of the waits: full jitter
    spreads a herd of clients over the whole [0, bound], not a few percent below it."""
    base, cap = draw.choice([0.1, 0.25, 1.0, 2.0]), draw.choice([5.0, 12.0, 20.0])
    rng = random.Random(draw.randrange(2**32))
    for attempt in range(8):
        bound = min(cap, base * 2 ** attempt)
        case = f"retry_delay({attempt}, base={base:g}, cap={cap:g})"
        sample = sorted(retry_delay(attempt, base, cap, rng) for _ in range(300))
        expect(sample[-1] <= bound + 1e-9 and sample[0] >= 0,
               f"{case} waited up to {sample[-1]:.2f} s; it should wait between 0 and "
               f"min(cap, base * 2 ** attempt) = {bound:g} s")
        expect(sample[-1] > 0.8 * bound,
               f"{case} never waited more than {sample[-1]:.2f} s of the {bound:g} s allowed: "
               "let the wait grow with base and attempt")
        mean = sum(sample) / len(sample)
        expect(sample[0] < 0.3 * bound and 0.35 * bound < mean < 0.65 * bound,
               f"{case}: 300 waits ran from {sample[0]:.2f} to {sample[-1]:.2f} s (mean "
               f"{mean:.2f}): clients that failed together still come back nearly together. "
               f"Full jitter draws uniformly from the whole [0, {bound:g}]")


# --- 3. a poller that never loses a message ---------------------------------------

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
    draw = cases()
    user, count = draw.choice(["ada", "grace", "zoë", "user-7"]), draw.randint(5, 9)
    early = draw.randint(2, 4)  # so the first answer holds several: its first id is not its last
    with long_polling.start(name="long-polling-check", max_timeout=5,
                            users=(user, f"not-{user}")) as server:
        results: dict[str, Any] = {}
        errors: dict[str, BaseException] = {}

        def tab(name):
            try:
                results[name] = collect(server.url, user, count)
            except BaseException as exc:  # reported below
                errors[name] = exc

        server.hub.send(f"not-{user}", "message", {"n": 1})  # another user's inbox
        for n in range(1, early + 1):
            server.hub.send(user, "message", {"n": n})
        tabs = [threading.Thread(target=tab, args=(n,), daemon=True) for n in ("tab 1", "tab 2")]
        for thread in tabs:
            thread.start()
        # The rest only once both tabs hold a poll open (bounded: a client that never waits
        # is not waited for), so a first answer never already holds every notification.
        settle = time.monotonic() + 3
        while server.hub.waiting() < 2 and time.monotonic() < settle:
            time.sleep(0.01)
        held = server.hub.waiting() >= 2
        for n in range(early + 1, count + 1):
            time.sleep(draw.choice([0.0, 0.05, 0.15]))
            server.hub.send(user, "message", {"n": n})
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
        want = list(range(1, count + 1))
        expect(ids == want, f"{name} of user {user!r} received {ids}, expected {want} in order")
    expect(held, "both tabs received every notification, but in 3 s the server never held "
                 "both their polls open: a poll with timeout=0 answers at once, so an idle tab "
                 "sends request after request (short polling). Send timeout=1 or more: the "
                 "server holds the request until news comes")
    return f"two tabs of one user each received notifications 1-{count}, once each, in order"


# --- 4. the 410 resync --------------------------------------------------------------

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
    _check_drawn_resync(poll_or_resync, cases())
    return "200s followed the cursor; the 410 resynced from the snapshot with nothing lost"


def _check_drawn_resync(poll_or_resync, draw) -> None:
    """A history size, a user and a count the learner has not seen."""
    kept = draw.randint(3, 9)
    sent = kept + draw.randint(3, 12)
    user = draw.choice(["grace", "linus", "zoë", "user-42"])
    with long_polling.start(name="long-polling-check", history=kept, users=(user,)) as server:
        for n in range(sent):
            server.hub.send(user, "message", {"n": n})
        oldest = sent - kept + 1
        case = f"with {sent} notifications sent to {user!r} and the last {kept} kept"
        stale = draw.randrange(0, oldest - 1)
        notifications, cursor = poll_or_resync(server.url, user, stale)
        ids = [n["id"] for n in notifications]
        expect(ids == list(range(oldest, sent + 1)) and cursor == sent,
               f"{case}, from cursor {stale} (410 Gone) expected ids {oldest}-{sent} from the "
               f"snapshot and cursor {sent}; got {ids} and {cursor}")
        fresh = draw.randrange(oldest, sent)
        notifications, cursor = poll_or_resync(server.url, user, fresh)
        ids = [n["id"] for n in notifications]
        expect(ids == list(range(fresh + 1, sent + 1)) and cursor == sent,
               f"{case}, from cursor {fresh} expected ids {fresh + 1}-{sent} and cursor "
               f"{sent}; got {ids} and {cursor}")
