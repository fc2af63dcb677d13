"""Every exercise of 06-long-polling: the reference passes, plausible wrong answers fail."""

from __future__ import annotations

import random
import time
from typing import Any

import requests
from exercise_helpers import assert_fails, assert_fails_for_some_seed, assert_passes

from labsupport.engine import get

# --- long-polling.wakeup --------------------------------------------------------------


def test_wakeup_reference_passes():
    assert_passes("long-polling.wakeup")


def test_wakeup_checking_before_taking_the_lock_loses_a_wakeup():
    def unlocked_check(inbox, cursor, timeout):
        news = [n for n in inbox.history if n["id"] > cursor]   # the document's gap is here
        if news:
            return news
        with inbox.changed:
            inbox.changed.wait(timeout)
        return [n for n in inbox.history if n["id"] > cursor]

    assert_fails("long-polling.wakeup", unlocked_check,
                 "arrived between your check and your wait and woke nobody")


def test_wakeup_letting_go_of_the_lock_between_check_and_wait_fails():
    def two_locks(inbox, cursor, timeout):
        with inbox.changed:
            news = [n for n in inbox.history if n["id"] > cursor]
        if news:
            return news
        with inbox.changed:
            inbox.changed.wait(timeout)
            return [n for n in inbox.history if n["id"] > cursor]

    assert_fails("long-polling.wakeup", two_locks,
                 "arrived between your check and your wait and woke nobody")


def test_wakeup_that_removes_what_it_returns_fails():
    def destructive(inbox, cursor, timeout):
        with inbox.changed:
            inbox.changed.wait_for(lambda: inbox.latest > cursor, timeout)
            news = [n for n in inbox.history if n["id"] > cursor]
            for notification in news:
                inbox.history.remove(notification)
            return news

    assert_fails("long-polling.wakeup", destructive, "never remove them")


def test_wakeup_that_always_waits_fails():
    def always_waits(inbox, cursor, timeout):
        with inbox.changed:
            inbox.changed.wait(timeout)
            return [n for n in inbox.history if n["id"] > cursor]

    assert_fails("long-polling.wakeup", always_waits, "return at once when there is news")


def test_wakeup_stub_is_not_attempted():
    assert_fails("long-polling.wakeup", lambda inbox, cursor, timeout: None, "not solved yet")


# --- long-polling.backoff --------------------------------------------------------------


def test_backoff_reference_passes():
    assert_passes("long-polling.backoff")


def test_backoff_without_jitter_fails():
    assert_fails("long-polling.backoff",
                 lambda attempt, base=0.5, cap=30.0, rng=random: min(cap, base * 2 ** attempt),
                 "add random jitter")


def test_backoff_without_cap_fails():
    def uncapped(attempt, base=0.5, cap=30.0, rng=random):
        return rng.uniform(0, base * 2 ** attempt)

    assert_fails("long-polling.backoff", uncapped, "above the cap 8 s")


def test_backoff_stub_is_not_attempted():
    assert_fails("long-polling.backoff", lambda attempt, base=0.5, cap=30.0, rng=random: None,
                 "not solved yet")


# --- long-polling.poller ---------------------------------------------------------------


def test_poller_reference_passes():
    assert_passes("long-polling.poller")


def test_poller_without_cursor_fails():
    def no_cursor(base_url, user_id, count):
        received: list[dict[str, Any]] = []
        while len(received) < count:
            body = requests.get(f"{base_url}/api/notifications/{user_id}/poll",
                                params={"timeout": 1}, timeout=5).json()
            received.extend(body["notifications"])
        return received[:count]

    assert_fails("long-polling.poller", no_cursor, "send the cursor of the last response")


def test_poller_cursor_from_first_item_fails():
    def first_item_cursor(base_url, user_id, count):
        received: list[dict[str, Any]] = []
        cursor = 0
        while len(received) < count:
            body = requests.get(f"{base_url}/api/notifications/{user_id}/poll",
                                params={"cursor": cursor, "timeout": 1}, timeout=5).json()
            received.extend(body["notifications"])
            if body["notifications"]:
                cursor = body["notifications"][0]["id"]
        return received[:count]

    assert_fails("long-polling.poller", first_item_cursor, "send the cursor of the last response")


# --- long-polling.resync -----------------------------------------------------------------


def test_resync_reference_passes():
    assert_passes("long-polling.resync")


def test_resync_raising_on_410_fails():
    def raises(base_url, user_id, cursor):
        response = requests.get(f"{base_url}/api/notifications/{user_id}/poll",
                                params={"cursor": cursor, "timeout": 0}, timeout=5)
        response.raise_for_status()
        body = response.json()
        return body["notifications"], body["cursor"]

    assert_fails("long-polling.resync", raises, "raised HTTPError: 410")


def test_resync_jumping_to_latest_loses_what_the_server_kept():
    def skip_to_latest(base_url, user_id, cursor):
        response = requests.get(f"{base_url}/api/notifications/{user_id}/poll",
                                params={"cursor": cursor, "timeout": 0}, timeout=5)
        if response.status_code == 410:
            return [], response.json()["error"]["details"]["latest"]
        body = response.json()
        return body["notifications"], body["cursor"]

    assert_fails("long-polling.resync", skip_to_latest, "take them from the snapshot")


def test_resync_restarting_from_zero_fails():
    def from_zero(base_url, user_id, cursor):
        response = requests.get(f"{base_url}/api/notifications/{user_id}/poll",
                                params={"cursor": cursor, "timeout": 0}, timeout=5)
        if response.status_code == 410:
            return [], 0
        body = response.json()
        return body["notifications"], body["cursor"]

    assert_fails("long-polling.resync", from_zero, "continue from the snapshot's cursor 12")


# --- wrong answers by class ------------------------------------------------------------


def test_backoff_with_a_few_percent_of_jitter_fails():
    """Too loose: waits spread over 10 % below the bound keep the herd together."""
    def ten_percent(attempt, base=0.5, cap=30.0, rng=random):
        return min(cap, base * 2 ** attempt) * rng.uniform(0.9, 1.0)

    assert_fails("long-polling.backoff", ten_percent, "Full jitter draws uniformly")


def test_backoff_with_the_notebooks_base_fails():
    """A constant: base 0.5 and cap 8 written in, not the arguments given."""
    def fixed(attempt, base=0.5, cap=30.0, rng=random):
        return rng.uniform(0, min(8.0, 0.5 * 2 ** attempt))

    assert_fails("long-polling.backoff", fixed, "retry_delay(")


def test_poller_for_the_notebooks_user_fails():
    """Sample-only: the user of the notebook's example, not the one given."""
    reference = get("long-polling.poller").reference

    def ada_only(base_url, user_id, count):
        return reference(base_url, "ada", count)

    assert_fails_for_some_seed("long-polling.poller", ada_only, "raised HTTPError: 404")


def test_resync_from_the_notebooks_history_size_fails():
    """Sample-only: after a 410, poll again from latest - 5, the notebook's history size."""
    def five_back(base_url, user_id, cursor):
        url = f"{base_url}/api/notifications/{user_id}/poll"
        response = requests.get(url, params={"cursor": cursor, "timeout": 0}, timeout=5)
        if response.status_code == 410:
            latest = response.json()["error"]["details"]["latest"]
            response = requests.get(url, params={"cursor": latest - 5, "timeout": 0}, timeout=5)
        response.raise_for_status()
        body = response.json()
        return body["notifications"], body["cursor"]

    assert_fails_for_some_seed("long-polling.resync", five_back, "from the snapshot")


def test_wakeup_by_position_in_history_fails():
    """Sample-only: history[cursor:] holds while no notification has been dropped yet."""
    def by_position(inbox, cursor, timeout):
        with inbox.changed:
            inbox.changed.wait_for(lambda: inbox.latest > cursor, timeout)
            return list(inbox.history)[cursor:]

    assert_fails("long-polling.wakeup", by_position, "not their position in history")


def test_poller_short_polling_fails():
    """The requirement skipped: timeout=0 and a sleep is short polling, not long polling."""
    def short_polling(base_url, user_id, count):
        received: list[dict[str, Any]] = []
        cursor = 0
        while len(received) < count:
            body = requests.get(f"{base_url}/api/notifications/{user_id}/poll",
                                params={"cursor": cursor, "timeout": 0}, timeout=5).json()
            received.extend(body["notifications"])
            cursor = body["cursor"]
            time.sleep(0.02)
        return received

    assert_fails("long-polling.poller", short_polling, "never held both their polls open")
