"""The Server-Sent Events lab: the document's SSE server, corrected, and a resuming client.

``start()`` serves it in the background of the kernel::

    from labsupport import sse
    server = sse.start(heartbeat=0.5)
    for event in sse.ResumableEventStream(f"{server.url}/events?client_id=ada"):
        ...

What it adds to the document's code: named events (``event:``) matching the
JavaScript client's types, an ``id:`` on every event and ``retry:`` once,
heartbeats as ``:`` comments, replay after ``Last-Event-ID`` from a bounded
buffer (410 when the buffer no longer reaches back that far), a bounded queue
per connection (a connection that falls ``queue_size`` events behind is
closed, and its client resumes from the buffer), cleanup when a client goes,
many connections per client id, and a news feed that is deterministic and
stops with the server.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import requests
import sseclient
from flask import Blueprint, Flask, Response, current_app, jsonify, request

from ...api_errors import (
    EVENT_TYPE_RULE,
    APIError,
    OrderedJSONProvider,
    install_error_handlers,
    is_event_type,
    json_object,
)
from ...database import isoformat, utcnow
from ...harness import ServerHandle, serve_wsgi
from ...pages import static_response

__all__ = [
    "format_event", "Event", "events_to_replay", "ReplayGap", "Broker", "NewsFeed",
    "create_app", "start", "ResumableEventStream", "Listener", "StreamRefused", "SAMPLE_ARTICLES",
]

CLIENT_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
HEARTBEAT = ": keep-alive\n\n"
RESUMES_KEPT = 1000

SAMPLE_ARTICLES = [
    {"title": "HTTP/3 reaches most browsers", "summary": "QUIC carries a third of web traffic.",
     "url": "/articles/1", "category": "tech"},
    {"title": "Local team wins the cup", "summary": "A late goal settles the final.",
     "url": "/articles/2", "category": "sports"},
    {"title": "Parliament passes data bill", "summary": "New rules for personal data.",
     "url": "/articles/3", "category": "politics"},
    {"title": "A faster JSON parser", "summary": "SIMD parsing, benchmarked.",
     "url": "/articles/4", "category": "tech"},
]


def format_event(data: str, event: str | None = None, id: int | str | None = None,
                 retry: int | None = None) -> str:
    """One event in ``text/event-stream`` format, ending with its blank line.

    Each line of ``data`` becomes its own ``data:`` line, so the client
    rebuilds the text, newlines included. A line of the stream ends at CR LF, LF
    or CR, so each of them in ``data`` starts a new line (the client joins them
    back with LF); U+2028 and its kin are not line ends and pass as they are.
    """
    lines = []
    if retry is not None:
        lines.append(f"retry: {retry}")
    if id is not None:
        lines.append(f"id: {id}")
    if event is not None:
        lines.append(f"event: {event}")
    text = data.replace("\r\n", "\n").replace("\r", "\n")
    lines.extend(f"data: {line}" for line in text.split("\n"))
    return "\n".join(lines) + "\n\n"


@dataclass(frozen=True)
class Event:
    """A published event: ``to`` is a client id, or None for everyone."""

    id: int
    type: str
    data: Any
    timestamp: str
    to: str | None = None

    def message(self) -> dict[str, Any]:
        """The document's message shape: ``{"type", "data", "timestamp"}``."""
        return {"type": self.type, "data": self.data, "timestamp": self.timestamp}

    def encode(self) -> str:
        return format_event(json.dumps(self.message()), event=self.type, id=self.id)


class ReplayGap(Exception):
    """The buffer no longer holds the events after the client's Last-Event-ID."""


def events_to_replay(history: list[Event], last_event_id: str | None) -> list[Event]:
    """The events of ``history`` (oldest first) after the ``Last-Event-ID`` header's text.

    No header: nothing to replay, the client starts live. Raises ``ValueError``
    for text that is not the id of an event this stream sent (400), and
    :class:`ReplayGap` when the buffer no longer reaches back that far (410).
    """
    if last_event_id is None or not last_event_id.strip():
        return []
    text = last_event_id.strip()
    if not re.fullmatch(r"[0-9]{1,18}", text):
        raise ValueError(f"must be the id of an event this stream sent (a whole number), "
                         f"got {text[:40]!r}")
    after = int(text)
    newest = history[-1].id if history else 0
    if after > newest:
        raise ValueError(f"no event {after} was sent; the last id is {newest}")
    oldest = history[0].id if history else 1
    if after < oldest - 1:
        raise ReplayGap(f"events after {after} are gone; the buffer starts at {oldest}")
    return [event for event in history if event.id > after]


class _Connection:
    """One open stream: the events waiting to be written to it."""

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self.pending: deque[Event] = deque()
        self.closed = False

    def wants(self, event: Event) -> bool:
        return event.to is None or event.to == self.client_id


class Broker:
    """Events with increasing ids, a bounded replay buffer, and the open connections.

    Slow consumers: each connection queues at most ``queue_size`` events; one
    that falls further behind is closed, and its client resumes with
    ``Last-Event-ID`` from the buffer of the last ``history`` events, so a slow
    client costs bounded memory and still loses nothing the buffer holds.
    """

    def __init__(self, history: int = 1000, queue_size: int = 100,
                 replay: Callable[[list[Event], str | None], list[Event]] | None = None) -> None:
        self.queue_size = queue_size
        self.replay = replay or events_to_replay
        self._history: deque[Event] = deque(maxlen=history)
        self._changed = threading.Condition()
        self._connections: set[_Connection] = set()
        self._clients_seen: set[str] = set()
        self._last_id = 0
        self._stopped = False
        self.resumed_from: list[int] = []  # every Last-Event-ID a client resumed from
        self.opened = 0  # connections ever opened: reconnects, counted

    @property
    def last_id(self) -> int:
        return self._last_id

    def publish(self, type: str, data: Any, to: str | None = None) -> Event:
        """Give the event the next id, keep it for replay and queue it for its readers."""
        with self._changed:
            self._last_id += 1
            event = Event(self._last_id, type, data, isoformat(utcnow()), to)
            self._history.append(event)
            for connection in self._connections:
                if not connection.wants(event):
                    continue
                if len(connection.pending) >= self.queue_size:
                    connection.closed = True  # too slow: it resumes from the buffer
                else:
                    connection.pending.append(event)
            self._changed.notify_all()
        return event

    def connect(self, client_id: str, last_event_id: str | None) -> tuple[_Connection, list[Event]]:
        """Open a connection, with the events to replay after ``last_event_id`` (header text).

        Raises ``ValueError`` for an id this stream never sent and
        :class:`ReplayGap` when the buffer no longer reaches back to it.
        """
        with self._changed:
            replay = self.replay(list(self._history), last_event_id)
            if last_event_id and last_event_id.strip():
                self.resumed_from.append(int(last_event_id))
                del self.resumed_from[:-RESUMES_KEPT]
            connection = _Connection(client_id)
            self._connections.add(connection)
            self.opened += 1
            self._clients_seen.add(client_id)
        return connection, [e for e in replay if connection.wants(e)]

    def disconnect(self, connection: _Connection) -> None:
        with self._changed:
            self._connections.discard(connection)
            connection.closed = True

    def next_batch(self, connection: _Connection, timeout: float) -> list[Event] | None:
        """Events for ``connection`` within ``timeout`` ([] if none), None once it must close."""
        with self._changed:
            self._changed.wait_for(
                lambda: connection.pending or connection.closed or self._stopped, timeout)
            if connection.closed or self._stopped:
                return None
            batch = list(connection.pending)
            connection.pending.clear()
            return batch

    def drop_all(self) -> int:
        """Close every open stream (clients reconnect by themselves); how many it closed
        (a stream already closing is not counted again)."""
        with self._changed:
            open_now = [c for c in self._connections if not c.closed]
            for connection in open_now:
                connection.closed = True
            self._changed.notify_all()
            return len(open_now)

    def stop(self) -> None:
        """End every stream now; used when the server stops."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()

    def connections(self) -> list[str]:
        """The client id of every open connection, sorted."""
        with self._changed:
            return sorted(c.client_id for c in self._connections)

    def has_seen(self, client_id: str) -> bool:
        with self._changed:
            return client_id in self._clients_seen


class NewsFeed:
    """The document's NewsFeedService: publishes ``articles`` every ``interval`` seconds.

    Deterministic (the articles in order, once) and stopped by ``stop``.
    """

    def __init__(self, broker: Broker, articles: list[dict[str, str]], interval: float,
                 stop: threading.Event) -> None:
        self.broker = broker
        self.articles = list(articles)
        self.interval = interval
        self.stop = stop
        self.thread = threading.Thread(target=self._run, name="sse-news-feed", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for article in self.articles:
            if self.stop.wait(self.interval):
                return
            self.broker.publish("news_article", article)


# --- the app ----------------------------------------------------------------


def _event_type(body: dict[str, Any], default: str) -> str:
    unknown = sorted(set(body) - {"type", "data"})
    if unknown:
        raise APIError(422, "Validation failed", details={f: ["Unknown field"] for f in unknown})
    type = body.get("type", default)
    if not is_event_type(type):
        raise APIError(422, "Validation failed", details={"type": [
            f"{EVENT_TYPE_RULE} (it becomes the event: line, so no spaces or newlines)"]})
    return type


def _client_id(raw: str) -> str:
    if not CLIENT_ID.fullmatch(raw):
        raise APIError(400, "Invalid client id", "INVALID_PARAMETER", {"client_id": [
            "must be 1-64 letters, digits or _.-"]})
    return raw


@dataclass
class _SSELab:
    """What the SSE routes serve from, kept in ``app.extensions["sse"]``."""

    broker: Broker
    heartbeat: float
    retry_ms: int
    stop: threading.Event


routes = Blueprint("sse", __name__)


def _lab() -> _SSELab:
    lab: _SSELab = current_app.extensions["sse"]
    return lab


def _broker() -> Broker:
    return _lab().broker


def create_app(broker: Broker, *, heartbeat: float = 15.0, retry_ms: int = 3000,
               stop: threading.Event | None = None) -> Flask:
    """Build the SSE lab's Flask app around ``broker``.

    ``heartbeat`` is the seconds of silence before a ``:`` comment is sent;
    ``retry_ms`` is the reconnection delay the stream tells clients to use.
    """
    app = Flask(__name__, static_folder=None)
    app.json = OrderedJSONProvider(app)
    install_error_handlers(app)
    app.extensions["sse"] = _SSELab(broker, heartbeat, retry_ms, stop or threading.Event())
    app.register_blueprint(routes)
    return app


@routes.get("/", defaults={"name": "sse.html"})
@routes.get("/static/sse-client.js", defaults={"name": "sse-client.js"})
def page(name: str) -> Response:
    """The browser page and its script, from ``static/`` beside this module."""
    return static_response(__package__, name)


@routes.get("/events")
def events() -> Response:
    lab = _lab()
    broker, stop, heartbeat, retry_ms = lab.broker, lab.stop, lab.heartbeat, lab.retry_ms
    client_id = _client_id(request.args.get("client_id") or f"client-{uuid.uuid4().hex[:12]}")
    # A reconnecting EventSource sends the header; a page's first connection can
    # only name a starting point in its URL (it cannot set headers).
    last_event_id = request.headers.get("Last-Event-ID", request.args.get("last_event_id"))
    try:
        connection, replay = broker.connect(client_id, last_event_id)
    except ValueError as exc:
        raise APIError(400, "Invalid Last-Event-ID", "INVALID_PARAMETER",
                       {"Last-Event-ID": [str(exc)]}) from None
    except ReplayGap as exc:
        raise APIError(410, "Cannot resume: fetch the current state and reconnect "
                            "without Last-Event-ID", details={"Last-Event-ID": [str(exc)]}
                       ) from None

    def stream() -> Iterator[str]:
        try:
            hello = {"type": "connected", "data": {"client_id": client_id},
                     "timestamp": isoformat(utcnow())}
            yield format_event(json.dumps(hello), event="connected", retry=retry_ms)
            for event in replay:
                yield event.encode()
            while not stop.is_set():
                batch = broker.next_batch(connection, heartbeat)
                if batch is None:
                    return
                yield "".join(e.encode() for e in batch) if batch else HEARTBEAT
        finally:
            broker.disconnect(connection)

    response = Response(stream(), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.call_on_close(lambda: broker.disconnect(connection))
    return response


@routes.post("/api/broadcast")
def broadcast() -> Response:
    body = json_object()
    event = _broker().publish(_event_type(body, "message"), body.get("data", {}))
    return jsonify({"status": "sent", "id": event.id,
                    "clients": len(_broker().connections())})


@routes.post("/api/notify/<client_id>")
def notify_client(client_id: str) -> Response:
    _client_id(client_id)
    body = json_object()
    type = _event_type(body, "notification")
    if not _broker().has_seen(client_id):
        raise APIError(404, f"No client {client_id!r} has connected")
    event = _broker().publish(type, body.get("data", {}), to=client_id)
    return jsonify({"status": "sent", "id": event.id})


@routes.get("/api/clients")
def clients() -> Response:
    broker = _broker()
    return jsonify({"connections": broker.connections(), "last_id": broker.last_id})


@routes.post("/api/disconnect")
def disconnect() -> Response:
    """Drop every open stream, as a restart or a proxy would; clients resume."""
    return jsonify({"dropped": _broker().drop_all()})



class SSEHandle(ServerHandle):
    """The SSE lab's server: ``broker`` publishes directly, ``news`` is the feed if started."""

    broker: Broker
    news: NewsFeed | None = None


def start(*, name: str = "sse", heartbeat: float = 15.0, retry_ms: int = 3000,
          history: int = 1000, queue_size: int = 100, news_interval: float | None = None,
          articles: list[dict[str, str]] = SAMPLE_ARTICLES,
          replay: Callable[[list[Event], str | None], list[Event]] = events_to_replay,
          ) -> SSEHandle:
    """Serve the SSE lab on 127.0.0.1 (a free port); ``handle.broker`` publishes directly.

    ``news_interval`` starts the news feed, one article from ``articles`` every
    that many seconds. Stopping the server ends every stream and the feed.
    ``replay`` decides what a resuming client is sent (an exercise plugs in here).
    """
    broker = Broker(history=history, queue_size=queue_size, replay=replay)
    stop = threading.Event()
    app = create_app(broker, heartbeat=heartbeat, retry_ms=retry_ms, stop=stop)

    def on_stop() -> None:
        stop.set()
        broker.stop()

    handle = serve_wsgi(name, app, on_stop=on_stop, handle=SSEHandle, broker=broker)
    if news_interval is not None:
        handle.news = NewsFeed(broker, articles, news_interval, stop)
    return handle


# --- the client ---------------------------------------------------------------

class StreamRefused(Exception):
    """The server answered the stream request with an error; EventSource would give up too."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status = status
        self.body = body


class ResumableEventStream:
    """Events of an SSE URL, reconnecting with ``Last-Event-ID`` as a browser does.

    sseclient-py parses one response; this wrapper reconnects when the stream
    ends or breaks, sends the id of the last event it saw, and waits the
    server's ``retry:`` delay between attempts. Iterate it; ``close()`` ends it.
    """

    def __init__(self, url: str, *, last_event_id: str | None = None, read_timeout: float = 30.0,
                 max_failures: int = 5, session: requests.Session | None = None) -> None:
        self.url = url
        self.last_event_id = last_event_id
        self.read_timeout = read_timeout
        self.max_failures = max_failures
        self.retry = 3.0
        self.connections = 0
        self._session = session or requests.Session()
        self._response: requests.Response | None = None
        self._closed = False
        self._drop = False

    def _open(self) -> requests.Response:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        response = self._session.get(self.url, headers=headers, stream=True,
                                     timeout=(5, self.read_timeout))
        if response.status_code != 200:
            body = response.text
            response.close()
            raise StreamRefused(response.status_code, body)
        self.connections += 1
        return response

    def __iter__(self) -> Iterator[sseclient.Event]:
        failures = 0
        while not self._closed:
            try:
                self._response = self._open()
                for event in sseclient.SSEClient(iter(self._response)).events():
                    if event.retry and event.retry.isdigit():
                        self.retry = int(event.retry) / 1000
                    if event.id is not None:
                        self.last_event_id = event.id
                        failures = 0
                    yield event
                    if self._drop or self._closed:
                        break
            except requests.RequestException:
                pass  # a broken or timed-out connection: reconnect below
            except Exception:
                if not self._closed:
                    raise  # closed from another thread: the read fails, and that is fine
            finally:
                if self._response is not None:
                    self._response.close()
            if self._closed:
                return
            if self._drop:
                self._drop = False
            else:
                failures += 1
                if failures > self.max_failures:
                    raise ConnectionError(f"{self.url}: gave up after {failures} failed attempts")
            time.sleep(self.retry)

    def drop(self) -> None:
        """Close the current connection after this event; the stream reconnects and resumes."""
        self._drop = True

    def close(self) -> None:
        """End the stream: safe from another thread, where it interrupts a waiting read."""
        self._closed = True
        response = self._response
        if response is not None:
            response.close()


class Listener:
    """A :class:`ResumableEventStream` read in a background thread, for demos and checks.

    ``events`` collects every event that has an id; ``wait_for(n)`` waits (bounded)
    until ``n`` have arrived. ``close()`` ends it at the next event or heartbeat.
    """

    def __init__(self, url: str, *, connect_timeout: float = 2.0, **options: Any) -> None:
        self.stream = ResumableEventStream(url, **options)
        self.events: list[sseclient.Event] = []
        self.error: BaseException | None = None
        self._arrived = threading.Condition()
        self._connected = threading.Event()
        self.thread = threading.Thread(target=self._run, name="sse-listener", daemon=True)
        self.thread.start()
        self._connected.wait(connect_timeout)

    def _run(self) -> None:
        try:
            for event in self.stream:
                if event.id is None:
                    self._connected.set()
                    continue
                with self._arrived:
                    self.events.append(event)
                    self._arrived.notify_all()
        except Exception as exc:  # kept for the reader, never printed from a thread
            self.error = exc
        finally:
            self._connected.set()

    def wait_for(self, count: int, timeout: float = 2.0) -> list[sseclient.Event]:
        """The events so far, once ``count`` have arrived or ``timeout`` s have passed."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.events) >= count, timeout)
            return list(self.events)

    def close(self) -> None:
        """End the stream; the thread ends with it."""
        self.stream.close()
