"""Exercises of notebooks/05-sse.ipynb: the wire format, heartbeats, and resuming."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator

import sseclient

from ...engine import NotAttempted, Unmet, cases, exercise, expect
from . import server as sse

NOTEBOOK = "05-sse"


def _parse(text: str) -> list[sseclient.Event]:
    return list(sseclient.SSEClient(iter([text.encode()])).events())


# --- 1. the wire format -------------------------------------------------------

def format_event(data: str, event: str | None = None, id: int | str | None = None) -> str:
    """One SSE event: optional id: and event: lines, one data: line per line of data.

    A line of the stream ends at CR LF, LF or CR (and nothing else): each of them
    in ``data`` starts a new ``data:`` line, which the client joins back with LF.
    """
    lines = []
    if id is not None:
        lines.append(f"id: {id}")
    if event is not None:
        lines.append(f"event: {event}")
    for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        lines.append(f"data: {line}")
    return "\n".join(lines) + "\n\n"


@exercise(
    "sse.format-event",
    title="Format an event: id, event name, multi-line data",
    notebook=NOTEBOOK,
    hints=[
        "An event is lines of 'field: value' and ends with an empty line, so the text ends "
        "with '\\n\\n'.",
        "A newline inside data would end the field: split the data at every line end the "
        "stream knows (\\r\\n, \\n or \\r, nothing else) and send one 'data: ' line per "
        "piece; the client joins them back with newlines.",
        "Leave out the id: and event: lines when id or event is None.",
    ],
    reference=format_event,
)
def check_format_event(format_event):
    draw = cases()
    text = format_event('{"title": "hello"}', event="news_article", id=5)
    if text is None:
        raise NotAttempted("format_event returns None")
    expect(isinstance(text, str), f"return the event as text (str), got {type(text).__name__}")
    expect(text.endswith("\n\n"), f"an event ends with a blank line: end the text with "
                                  f"'\\n\\n'; yours ends with {text[-6:]!r}")
    events = _parse(text)
    expect(len(events) == 1, f"{text!r} should be one event, a client read {len(events)}")
    got = events[0]
    expect(got.id == "5", f"id=5 should arrive as the event's id '5', a client read {got.id!r}")
    expect(got.event == "news_article",
           f"event='news_article' should arrive as the event type, a client read {got.event!r}")
    expect(got.data == '{"title": "hello"}', f"the data arrived as {got.data!r}")
    multi = "line one\nline two\n\nline four"
    events = _parse(format_event(multi))
    expect(len(events) == 1 and events[0].data == multi,
           f"data {multi!r} came back as {events[0].data if events else None!r}: put each "
           f"line in its own 'data: ' line")
    plain = format_event("x")
    expect("id:" not in plain and "event:" not in plain,
           f"with id and event None, send only data: lines; got {plain!r}")
    expect(_parse(plain)[0].event == "message", "an event without event: is a 'message'")
    for data, event, id in _drawn_events(draw):
        sent = re.sub(r"\r\n|\r", "\n", data)  # what any client can rebuild: lines joined by LF
        events = _parse(format_event(data, event=event, id=id))
        what = f"format_event({data!r}, event={event!r}, id={id!r})"
        expect(len(events) == 1, f"{what} should be one event, a client read {len(events)}")
        if sent.startswith(" ") and events[0].data == sent[1:]:
            raise Unmet(f"{what}: the client read the data as {events[0].data!r}, its first "
                        "space lost: a client removes one space after 'data:', so write "
                        "'data: ' (colon and space) before each line")
        expect(events[0].data == sent,
               f"{what}: the client read the data as {events[0].data!r}, expected {sent!r}. "
               "A line of the stream ends at \\r\\n, \\n or \\r, and only there (str."
               "splitlines also splits on \\u2028, \\x85, \\x0c ... and drops a last "
               "empty line)")
        expect(events[0].id == (None if id is None else str(id)) and
               events[0].event == (event or "message"),
               f"{what}: the client read id {events[0].id!r} and event {events[0].event!r}"
               + (": 0 is an id too; leave the id: line out only when id is None"
                  if id == 0 else ""))
    return "ids, names, multi-line data (LF, CR, CRLF, U+2028) and the blank line are all right"


def _drawn_events(draw) -> list[tuple[str, str | None, int | None]]:
    """Events the learner has not seen: Unicode, trailing newlines, CR, separators that
    are not SSE line ends."""
    word = draw.choice(["Grüße", "日本語", "naïve", "emoji 🎉", "plain"])
    payload = json.dumps({"text": word, "n": draw.randrange(1000)}, ensure_ascii=False)
    return [
        (payload, draw.choice(["update", "news_article", "score"]), draw.randrange(1, 10**6)),
        (f"{word}\n", None, draw.randrange(1, 100)),
        (f"{word}\u2028second half\x85third", "note", None),
        (f"{word}\r\nwindows line\rold mac line", None, draw.randrange(1, 100)),
        (f"\n{word}\n\n", "spaced", None),
        (f" {word} indented", None, 0),  # a leading space, and the id 0
    ]


# --- 2. heartbeats ---------------------------------------------------------------

def with_heartbeats(next_event: Callable[..., str | None], interval: float) -> Iterator[str]:
    """Pass events through; after ``interval`` seconds of silence send a comment."""
    while True:
        event = next_event(timeout=interval)
        if event is None:
            yield ": keep-alive\n\n"
        else:
            yield event


class _QuietSource:
    """Events at set moments; ``next_event(timeout)`` returns one or None after timeout."""

    def __init__(self, moments: list[float]) -> None:
        self.start = time.monotonic()
        self.moments = list(moments)
        self.sent = 0

    def next_event(self, timeout=None):
        limit = 2.0 if timeout is None else min(float(timeout), 2.0)
        deadline = time.monotonic() + limit
        if self.moments:
            due = self.start + self.moments[0]
            if due <= deadline:
                time.sleep(max(0.0, due - time.monotonic()))
                self.moments.pop(0)
                self.sent += 1
                return sse.format_event(f"event {self.sent}", id=self.sent)
        time.sleep(max(0.0, deadline - time.monotonic()))
        return None


@exercise(
    "sse.heartbeat",
    title="Heartbeats that keep an idle-timeout proxy from closing the stream",
    notebook=NOTEBOOK,
    hints=[
        "Ask next_event for at most `interval` seconds: next_event(timeout=interval).",
        "When it returns None, nothing happened: send something that keeps bytes flowing.",
        "A line that starts with ':' is a comment: the browser ignores it, the proxy sees "
        "traffic. Send ': keep-alive\\n\\n'.",
    ],
    reference=with_heartbeats,
    timeout=15,
)
def check_heartbeat(with_heartbeats):
    interval = cases().choice([0.06, 0.08, 0.12, 0.15])
    idle_timeout = 2.5 * interval
    source = _QuietSource([0.05, 0.1, 0.7, 0.75])
    stream = with_heartbeats(source.next_event, interval)
    if stream is None:
        raise NotAttempted("with_heartbeats returns None")
    chunks, last = [], time.monotonic()
    try:
        for chunk in stream:
            now = time.monotonic()
            expect(now - last <= idle_timeout,
                   f"{now - last:.2f} s passed with no byte sent: a proxy that closes "
                   f"connections idle for {idle_timeout:g} s would have cut the stream "
                   f"(interval was {interval} s: wait at most that long for an event)")
            last = now
            expect(isinstance(chunk, str), f"yield text, got {type(chunk).__name__}")
            chunks.append(chunk)
            if source.sent == 4 and not source.moments:
                break
    finally:
        close = getattr(stream, "close", None)
        if close:
            close()
    events = _parse("".join(chunks))
    data = [e.data for e in events]
    heartbeats = [c for c in chunks if "event " not in c]
    for beat in heartbeats:
        expect(beat.endswith("\n"), f"end the heartbeat with a newline; got {beat!r}")
        expect(not _parse(beat), f"the heartbeat {beat!r} is dispatched to the page as an "
                                 f"event; make it a comment: a line starting with ':'")
    expect(data == ["event 1", "event 2", "event 3", "event 4"],
           f"pass the events through unchanged, in order; the client read {data}")
    expected = int(0.6 / interval)
    expect(len(heartbeats) >= expected // 2,
           f"about {expected} heartbeats belong in the 0.6 s of silence at an interval of "
           f"{interval} s; you sent {len(heartbeats)}: wait at most that long for an event")
    return f"{len(heartbeats)} comment heartbeats kept a {idle_timeout} s idle timeout away"


# --- 3. resume from Last-Event-ID ---------------------------------------------

def _history(first: int, last: int) -> list[sse.Event]:
    return [sse.Event(n, "message", n, "2024-01-01T12:00:00Z") for n in range(first, last + 1)]


def _ids(events) -> list[int]:
    return [e.id for e in events]


@exercise(
    "sse.replay",
    title="Replay what a reconnecting client missed, from its Last-Event-ID",
    notebook=NOTEBOOK,
    hints=[
        "No header (None) means a new client: replay nothing. Otherwise the header is text: "
        "turn it into an int, refusing what is not a whole number with ValueError.",
        "Replay only ids greater than Last-Event-ID: the client already has that one.",
        "If the buffer starts at 6, a client that last saw 3 missed 4 and 5 for good: raise "
        "sse.ReplayGap (the server answers 410) instead of pretending. An id above the "
        "newest was never sent: ValueError (400).",
    ],
    reference=sse.events_to_replay,
    timeout=15,
)
def check_replay(events_to_replay):
    history = _history(1, 6)
    first = events_to_replay(history, "3")
    if first is None:
        raise NotAttempted("events_to_replay returns None")
    expect(_ids(first) == [4, 5, 6],
           f"the client last saw 3: replay [4, 5, 6], you replay {_ids(first)}")
    expect(list(events_to_replay(history, None)) == [],
           "a new client (no Last-Event-ID, None) starts live: replay nothing")
    expect(_ids(events_to_replay(history, "0")) == [1, 2, 3, 4, 5, 6],
           "Last-Event-ID 0 means 'saw nothing yet': replay everything")
    expect(list(events_to_replay(history, "6")) == [], "a client that saw 6 is up to date")
    for bad in ("abc", "-1", "3.5"):
        try:
            events_to_replay(history, bad)
        except ValueError:
            continue
        except sse.ReplayGap:
            raise Unmet(f"{bad!r} is not an id at all: raise ValueError (400), "
                        f"not ReplayGap") from None
        raise Unmet(f"Last-Event-ID {bad!r} is not an id this stream sent: raise ValueError")
    try:
        events_to_replay(history, "99")
    except ValueError:
        pass
    else:
        raise Unmet("Last-Event-ID 99 was never sent (the newest is 6): raise ValueError")
    trimmed = _history(6, 10)
    try:
        replayed = events_to_replay(trimmed, "2")
    except sse.ReplayGap:
        pass
    else:
        raise Unmet(f"the buffer starts at 6, so a client that last saw 2 missed 3-5 for "
                    f"good; you replayed {_ids(replayed)} as if nothing was lost: raise "
                    f"sse.ReplayGap")
    expect(_ids(events_to_replay(trimmed, "5")) == [6, 7, 8, 9, 10],
           "a client that saw 5 misses nothing when the buffer starts at 6: replay 6-10")
    _check_drawn_history(events_to_replay, cases())
    return _through_a_server(events_to_replay)


def _check_drawn_history(events_to_replay, draw) -> None:
    """A buffer the learner has not seen: ids far from 1, trimmed at a drawn point."""
    oldest = draw.randrange(50, 10**6)
    newest = oldest + draw.randint(5, 40)
    history = _history(oldest, newest)
    case = f"with a buffer of ids {oldest}-{newest}"
    seen = draw.randrange(oldest, newest)
    got = _ids(events_to_replay(history, str(seen)))
    expect(got == list(range(seen + 1, newest + 1)),
           f"{case}, a client that last saw {seen} should get {seen + 1}-{newest}, you replay "
           f"{got[:3]}...{got[-2:]} ({len(got)} events): compare ids, not positions in the "
           "list")
    got = _ids(events_to_replay(history, str(oldest - 1)))
    expect(got == list(range(oldest, newest + 1)),
           f"{case}, a client that last saw {oldest - 1} missed nothing the buffer lost: "
           f"replay all {newest - oldest + 1}, you replay {len(got)}")
    for lost in (draw.randrange(1, oldest - 1), oldest - 2):  # and the one just too old
        try:
            replayed = events_to_replay(history, str(lost))
        except sse.ReplayGap:
            continue
        missed = f"{lost + 1}-{oldest - 1}" if lost + 1 < oldest - 1 else f"{oldest - 1}"
        raise Unmet(f"{case}, a client that last saw {lost} missed {missed} for good; you "
                    f"replayed {len(replayed)} events as if nothing was lost: raise "
                    "sse.ReplayGap")
    try:
        events_to_replay(history, str(newest + draw.randint(1, 5)))
    except ValueError:
        pass
    else:
        raise Unmet(f"{case}, an id above {newest} was never sent: raise ValueError")


def _through_a_server(events_to_replay):
    with sse.start(name="sse-check", heartbeat=0.2, retry_ms=20, history=5,
                   replay=events_to_replay) as server:
        for n in range(1, 9):
            server.broker.publish("message", n)
        stream = sse.ResumableEventStream(f"{server.url}/events", last_event_id="5",
                                          read_timeout=2)
        got: list[int] = []
        done = threading.Event()

        def read():
            for event in stream:
                if event.id is not None:
                    got.append(int(event.id))
                if len(got) == 4:
                    stream.close()
            done.set()

        threading.Thread(target=read, daemon=True).start()
        time.sleep(0.2)
        server.broker.publish("message", 9)
        done.wait(3)
        stream.close()
    expect(got == [6, 7, 8, 9], f"a real client resuming after 5 received {got}, "
                                f"expected [6, 7, 8, 9]")
    return "a reconnecting client got exactly the events it missed, then live ones"
