"""Every exercise of 05-sse and 06-long-polling: the reference passes, wrong answers fail."""

from __future__ import annotations

import random

import requests
from exercise_helpers import assert_fails, assert_passes

from labsupport import sse

# --- sse.format-event -----------------------------------------------------------


def test_format_event_reference_passes():
    assert_passes("sse.format-event")


def test_format_event_stub_is_not_attempted():
    assert_fails("sse.format-event", lambda data, event=None, id=None: None, "not solved yet")


def test_format_event_with_newlines_in_one_data_line_fails():
    def one_data_line(data, event=None, id=None):
        head = (f"id: {id}\n" if id is not None else "") + (f"event: {event}\n" if event else "")
        return f"{head}data: {data}\n\n"

    assert_fails("sse.format-event", one_data_line, "put each line in its own 'data: ' line")


def test_format_event_without_the_blank_line_fails():
    def no_blank_line(data, event=None, id=None):
        return sse.format_event(data, event, id)[:-1]

    assert_fails("sse.format-event", no_blank_line, "an event ends with a blank line")


# --- sse.heartbeat ---------------------------------------------------------------


def test_heartbeat_reference_passes():
    assert_passes("sse.heartbeat")


def test_heartbeat_as_data_event_fails():
    def data_heartbeat(next_event, interval):
        while True:
            yield next_event(timeout=interval) or 'data: {"type": "heartbeat"}\n\n'

    assert_fails("sse.heartbeat", data_heartbeat, "is dispatched to the page as an event")


def test_no_heartbeat_fails():
    def silent(next_event, interval):
        while True:
            event = next_event(timeout=None)
            if event:
                yield event

    assert_fails("sse.heartbeat", silent, "with no byte sent")


def test_heartbeat_stub_is_not_attempted():
    assert_fails("sse.heartbeat", lambda next_event, interval: None, "not solved yet")


# --- sse.replay ---------------------------------------------------------------------


def test_replay_reference_passes():
    assert_passes("sse.replay")


def test_replay_lab_function_passes():
    assert_passes("sse.replay", sse.events_to_replay)


def test_replay_including_the_last_seen_event_fails():
    def inclusive(history, last_event_id):
        if last_event_id is None:
            return []
        return [e for e in history if e.id >= int(last_event_id)]

    assert_fails("sse.replay", inclusive, "replay [4, 5, 6], you replay [3, 4, 5, 6]")


def test_replay_ignoring_the_gap_fails():
    def no_gap_check(history, last_event_id):
        if last_event_id is None:
            return []
        if not last_event_id.isdigit():
            raise ValueError("not an id")
        after = int(last_event_id)
        if after > history[-1].id:
            raise ValueError("future")
        return [e for e in history if e.id > after]

    assert_fails("sse.replay", no_gap_check, "raise sse.ReplayGap")


def test_replay_crashing_on_a_new_client_fails():
    def int_of_none(history, last_event_id):
        return [e for e in history if e.id > int(last_event_id)]

    assert_fails("sse.replay", int_of_none, "raised TypeError")


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
        received = []
        while len(received) < count:
            body = requests.get(f"{base_url}/api/notifications/{user_id}/poll",
                                params={"timeout": 1}, timeout=5).json()
            received.extend(body["notifications"])
        return received[:count]

    assert_fails("long-polling.poller", no_cursor, "send the cursor of the last response")


def test_poller_cursor_from_first_item_fails():
    def first_item_cursor(base_url, user_id, count):
        received, cursor = [], 0
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
