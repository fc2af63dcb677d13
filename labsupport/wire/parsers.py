"""What crossed the wire, parsed with the field's own parsers.

Each connection a :class:`~.tap.WireTap` recorded is split into messages:

- HTTP/1.1 with ``h11`` (one message per request or response, head and body;
  an event stream's events one message each);
- HTTP/2 (gRPC) frame by frame with h2's own frame and header layers
  (``hyperframe``, ``hpack``);
- WebSocket frames (after a ``101 Switching Protocols``) with ``wsproto``,
  permessage-deflate included;
- anything else as the raw reads it arrived in.

Sizes are exact byte counts of each message on the stream (HTTP heads, chunk
sizes, frame headers and masks included); times are when its last byte arrived.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import h11
import hpack
from hyperframe.frame import Frame
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.frame_protocol import FrameProtocol, Opcode

from .records import DOWN, UP, Connection

__all__ = ["Message", "parse_connections", "parse_connection", "totals", "h2_frames"]

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HTTP_METHODS = (b"GET ", b"POST ", b"PUT ", b"PATCH ", b"DELETE ", b"HEAD ", b"OPTIONS ")


@dataclass(frozen=True)
class Message:
    """One message on one connection: its protocol, a one-line label, bytes and time."""

    connection: int
    direction: str
    protocol: str
    label: str
    size: int
    time: float

    def __str__(self) -> str:
        arrow = "→" if self.direction == UP else "←"
        return f"#{self.connection} {arrow} {self.protocol:<9} {self.label} ({self.size} B)"


class _Timeline:
    """One direction's bytes and when each offset arrived."""

    def __init__(self, connection: Connection, direction: str) -> None:
        chunks = [c for c in connection.chunks if c.direction == direction]
        self.data = b"".join(c.data for c in chunks)
        self.ends: list[int] = []
        self.times: list[float] = []
        offset = 0
        for chunk in chunks:
            offset += len(chunk.data)
            self.ends.append(offset)
            self.times.append(chunk.time)

    def time_at(self, offset: int) -> float:
        """When the byte before ``offset`` arrived."""
        if not self.times:
            return 0.0
        index = bisect.bisect_left(self.ends, offset)
        return self.times[min(index, len(self.times) - 1)]


def parse_connections(connections: Iterable[Connection]) -> list[Message]:
    """Every message on every connection, in the order their last bytes arrived."""
    messages = [m for c in connections for m in parse_connection(c)]
    return sorted(messages, key=lambda m: m.time)


def parse_connection(connection: Connection) -> list[Message]:
    """The messages of one recorded connection, both directions."""
    up, down = _Timeline(connection, UP), _Timeline(connection, DOWN)
    closed = connection.closed is not None
    if up.data.startswith(H2_PREFACE):
        return _http2(connection.number, up, down)
    if up.data.startswith(HTTP_METHODS):
        return _http1(connection.number, up, down, closed)
    return _raw(connection)


def totals(messages: Iterable[Message]) -> dict[str, int]:
    """Bytes by direction, and the number of messages."""
    result = {UP: 0, DOWN: 0, "messages": 0}
    for message in messages:
        result[message.direction] += message.size
        result["messages"] += 1
    return result


def _raw(connection: Connection) -> list[Message]:
    return [Message(connection.number, c.direction, "TCP", f"{len(c.data)} bytes",
                    len(c.data), c.time) for c in connection.chunks]


# --- HTTP/1.1 -------------------------------------------------------------------

def _http1(number: int, up: _Timeline, down: _Timeline, closed: bool) -> list[Message]:
    requests, messages, up_rest = _http1_requests(number, up, closed)
    down_messages, down_rest, switched = _http1_responses(number, down, requests, closed)
    messages += down_messages
    if switched is not None:
        messages += _websocket(number, up, up_rest, False, switched)
        messages += _websocket(number, down, down_rest, True, switched)
    return messages


def _offset(parser: h11.Connection, start: int, fed: int) -> int:
    """The stream offset up to which ``parser`` has parsed, having been fed from ``start``."""
    return start + fed - len(parser.trailing_data[0])


def _http1_requests(number, up: _Timeline, closed: bool):
    """Requests (h11 as the server), and the offset where an upgraded stream starts."""
    requests: list[h11.Request] = []
    messages: list[Message] = []
    start = 0
    while start < len(up.data):
        parser = h11.Connection(our_role=h11.SERVER)
        parser.receive_data(up.data[start:])
        if closed:
            parser.receive_data(b"")
        fed = len(up.data) - start
        request, size = None, 0
        while True:
            try:
                event = parser.next_event()
            except h11.RemoteProtocolError:
                return requests, messages, None
            if event in (h11.NEED_DATA, h11.PAUSED) or isinstance(event, h11.ConnectionClosed):
                break
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                size += len(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
        if request is None:
            break
        requests.append(request)
        end = _offset(parser, start, fed)
        label = f"{request.method.decode()} {request.target.decode()}"
        if size:
            label += f" + {size} B body"
        messages.append(Message(number, UP, "HTTP/1.1", label, end - start, up.time_at(end)))
        start = end
        if parser.their_state is h11.MIGHT_SWITCH_PROTOCOL:
            return requests, messages, start
    return requests, messages, None


def _http1_responses(number, down: _Timeline, requests: list[h11.Request], closed: bool):
    """Responses (h11 as the client, replaying each request), and a WebSocket upgrade."""
    messages: list[Message] = []
    start = 0
    for request in requests:
        if start >= len(down.data):
            break
        parser = h11.Connection(our_role=h11.CLIENT)
        # Replayed without its body: only the method and the upgrade headers matter here.
        headers = [(k, v) for k, v in request.headers
                   if k not in (b"content-length", b"transfer-encoding")]
        parser.send(h11.Request(method=request.method, target=request.target,
                                headers=headers, http_version=request.http_version))
        if parser.our_state is h11.SEND_BODY:
            parser.send(h11.EndOfMessage())
        parser.receive_data(down.data[start:])
        if closed:
            parser.receive_data(b"")
        fed = len(down.data) - start
        head_label, streaming, message_start = None, False, start
        while True:
            try:
                event = parser.next_event()
            except h11.RemoteProtocolError:
                return messages, None, None
            if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                break
            offset = _offset(parser, start, fed)
            if isinstance(event, h11.InformationalResponse) and event.status_code == 101:
                messages.append(Message(number, DOWN, "HTTP/1.1", "101 Switching Protocols",
                                        offset - start, down.time_at(offset)))
                extensions = dict(event.headers).get(b"sec-websocket-extensions", b"")
                return messages, offset, extensions.decode()
            if event is h11.PAUSED:
                break
            if isinstance(event, h11.Response):
                head_label = f"{event.status_code} {event.reason.decode()}"
                streaming = dict(event.headers).get(b"content-type", b"").startswith(
                    b"text/event-stream")
                if streaming:
                    messages.append(Message(number, DOWN, "HTTP/1.1", head_label,
                                            offset - message_start, down.time_at(offset)))
                    message_start = offset
            elif isinstance(event, h11.Data) and streaming:
                messages.append(Message(number, DOWN, "SSE", _sse_label(bytes(event.data)),
                                        offset - message_start, down.time_at(offset)))
                message_start = offset
            elif isinstance(event, h11.EndOfMessage):
                if not streaming:
                    messages.append(Message(number, DOWN, "HTTP/1.1", head_label or "response",
                                            offset - message_start, down.time_at(offset)))
                start = offset
                break
        if not isinstance(event, h11.EndOfMessage):
            break
    return messages, None, None


def _sse_label(data: bytes) -> str:
    """``event <type> id <n>`` of an event-stream block, or ``comment`` for a heartbeat."""
    fields = dict(line.partition(b":")[::2] for line in data.splitlines() if line)
    if not fields or set(fields) == {b""}:
        return "comment (heartbeat)"
    kind = fields.get(b"event", b" message").strip().decode(errors="replace")
    ident = fields.get(b"id")
    return f"event {kind}" + (f" id {ident.strip().decode(errors='replace')}" if ident else "")


# --- WebSocket ------------------------------------------------------------------

def _frame_length(data: bytes, offset: int) -> int | None:
    """The whole length of the WebSocket frame at ``offset`` (RFC 6455 §5.2), None if cut."""
    if len(data) - offset < 2:
        return None
    masked, length = data[offset + 1] & 0x80, data[offset + 1] & 0x7F
    header = 2
    if length == 126:
        header, length = 4, int.from_bytes(data[offset + 2:offset + 4], "big")
    elif length == 127:
        header, length = 10, int.from_bytes(data[offset + 2:offset + 10], "big")
    total = header + (4 if masked else 0) + length
    return total if len(data) - offset >= total else None


def _websocket(number: int, timeline: _Timeline, start: int | None, from_server: bool,
               extensions: str) -> list[Message]:
    if start is None:
        return []
    offered = [e.strip() for e in extensions.split(",") if e.strip()]
    deflate: list[Extension] = []
    for offer in offered:
        if offer.startswith("permessage-deflate"):
            extension = PerMessageDeflate()
            extension.finalize(offer)
            deflate = [extension]
    parser = FrameProtocol(client=from_server, extensions=deflate)
    direction = DOWN if from_server else UP
    messages: list[Message] = []
    offset = start
    while (length := _frame_length(timeline.data, offset)) is not None:
        parser.receive_bytes(timeline.data[offset:offset + length])
        offset += length
        for frame in parser.received_frames():
            kind = frame.opcode.name.lower()
            if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION):
                payload = frame.payload
                preview = payload[:40] if isinstance(payload, str) else f"{len(payload)} B"
                label = f"{kind} {preview}"
            elif frame.opcode is Opcode.CLOSE:
                label = f"close {frame.payload[0] if frame.payload else ''}".strip()
            else:
                label = kind
            messages.append(Message(number, direction, "WebSocket", label, length,
                                    timeline.time_at(offset)))
    return messages


# --- HTTP/2 -------------------------------------------------------------------

def _http2(number: int, up: _Timeline, down: _Timeline) -> list[Message]:
    messages = [Message(number, UP, "HTTP/2", "preface", len(H2_PREFACE),
                        up.time_at(len(H2_PREFACE)))]
    messages += _h2_frames(number, up, len(H2_PREFACE), UP)
    messages += _h2_frames(number, down, 0, DOWN)
    return messages


def h2_frames(data: bytes, offset: int = 0) -> Iterator[tuple[Frame, int]]:
    """Each whole HTTP/2 frame in ``data`` from ``offset`` (hyperframe's), with the offset
    just after it; a frame cut short at the end is left out."""
    while len(data) - offset >= 9:
        frame, length = Frame.parse_frame_header(memoryview(data[offset:offset + 9]))
        if len(data) - offset - 9 < length:
            return
        frame.parse_body(memoryview(data[offset + 9:offset + 9 + length]))
        offset += 9 + length
        yield frame, offset


def _h2_frames(number: int, timeline: _Timeline, offset: int, direction: str) -> list[Message]:
    decoder = hpack.Decoder()
    decoder.max_allowed_table_size = 1 << 20
    messages: list[Message] = []
    for frame, end in h2_frames(timeline.data, offset):
        messages.append(Message(number, direction, "HTTP/2", _h2_label(frame, decoder),
                                end - offset, timeline.time_at(end)))
        offset = end
    return messages


def _h2_label(frame: Frame, decoder: hpack.Decoder) -> str:
    kind = type(frame).__name__.removesuffix("Frame").upper()
    stream = f" s{frame.stream_id}" if frame.stream_id else ""
    data: bytes = getattr(frame, "data", b"")  # HEADERS and DATA frames carry a block
    if kind == "HEADERS":
        try:
            headers = {str(k): str(v) for k, v in decoder.decode(data, raw=False)}
        except hpack.HPACKError:
            return f"HEADERS{stream}"
        shown = (headers.get(":path") or
                 (f"grpc-status {headers['grpc-status']}" if "grpc-status" in headers else None)
                 or f":status {headers.get(':status', '?')}")
        return f"HEADERS{stream} {shown}"
    if kind == "DATA":
        return f"DATA{stream} {len(data)} B"
    return f"{kind}{stream}"
