"""Every exercise of 05-sse: the reference passes, plausible wrong answers fail."""

from __future__ import annotations

from exercise_helpers import assert_fails, assert_fails_for_some_seed, assert_passes

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


# --- wrong answers by class ---------------------------------------------------------


def test_format_event_with_splitlines_fails():
    """Too loose: str.splitlines splits on U+2028, U+0085 ... and drops a last empty line."""
    def splitlines(data, event=None, id=None):
        head = (f"id: {id}\n" if id is not None else "") + (f"event: {event}\n" if event else "")
        return head + "".join(f"data: {line}\n" for line in data.splitlines()) + "\n"

    assert_fails("sse.format-event", splitlines, "and only there")


def test_format_event_splitting_on_lf_only_fails():
    """Happy path only: a CR in the data ends the line on the wire, and the rest is lost."""
    def lf_only(data, event=None, id=None):
        head = (f"id: {id}\n" if id is not None else "") + (f"event: {event}\n" if event else "")
        return head + "".join(f"data: {line}\n" for line in data.split("\n")) + "\n"

    assert_fails("sse.format-event", lf_only, "old mac line'")


def test_heartbeat_with_a_fixed_wait_fails():
    """A constant: the wait the notebook's example used (0.1 s), not the interval given."""
    def fixed_wait(next_event, interval):
        while True:
            yield next_event(timeout=0.14) or ": keep-alive\n\n"

    assert_fails_for_some_seed("sse.heartbeat", fixed_wait, "wait at most that long")


def test_replay_by_position_fails():
    """Sample-only: history[int(id):] works while the buffer starts at id 1."""
    def by_position(history, last_event_id):
        if last_event_id is None:
            return []
        if not last_event_id.isdigit() or int(last_event_id) > history[-1].id:
            raise ValueError("not an id this stream sent")
        if int(last_event_id) < history[0].id - 1:
            raise sse.ReplayGap("gone")
        return history[int(last_event_id):]

    assert_fails("sse.replay", by_position, "misses nothing when the buffer starts at 6")


def test_format_event_without_the_space_after_the_colon_fails():
    """Sample-only: 'data:' + line reads right until a line starts with a space."""
    def no_space(data, event=None, id=None):
        head = (f"id:{id}\n" if id is not None else "") + (f"event:{event}\n" if event else "")
        lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        return head + "".join(f"data:{line}\n" for line in lines) + "\n"

    assert_fails("sse.format-event", no_space, "its first space lost")


def test_format_event_dropping_id_zero_fails():
    """Too loose a test: `if id:` leaves out the id 0, so the client cannot resume from it."""
    def truthy_id(data, event=None, id=None):
        head = (f"id: {id}\n" if id else "") + (f"event: {event}\n" if event else "")
        lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        return head + "".join(f"data: {line}\n" for line in lines) + "\n"

    assert_fails("sse.format-event", truthy_id, "0 is an id too")


def test_replay_with_the_gap_one_off_fails():
    """An off-by-one gap test: a client that last saw oldest - 2 missed oldest - 1."""
    def gap_one_off(history, last_event_id):
        if last_event_id is None:
            return []
        if not last_event_id.isdigit() or int(last_event_id) > history[-1].id:
            raise ValueError("not an id this stream sent")
        if int(last_event_id) < history[0].id - 2:
            raise sse.ReplayGap("gone")
        return [e for e in history if e.id > int(last_event_id)]

    assert_fails("sse.replay", gap_one_off, "as if nothing was lost")
