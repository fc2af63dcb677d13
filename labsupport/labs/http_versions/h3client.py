"""A small HTTP/3 client on aioquic's sans-I/O QUIC and HTTP/3 layers, over a UDP socket.

Sans-I/O means the client decides when datagrams go out and come in, so the same client
runs free (:meth:`H3Client.run_until`) or one round trip at a time (:mod:`.handshakes`).
It keeps aioquic's qlog of every packet (``packets()``: type and frames, each way) and the
size of every QPACK header block it encodes (``header_blocks``)::

    with H3Client(server.port) as client:
        stream = client.request("GET", "/")
        client.run_until(lambda: client.responses[stream].ended)
        client.responses[stream].status          # 200
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import HandshakeCompleted
from aioquic.quic.logger import QuicLogger
from aioquic.tls import SessionTicket

from ...harness import LOOPBACK
from .certs import authority

__all__ = ["H3Client", "Response", "Packet", "HeaderBlock"]

DATAGRAM = 65536


@dataclass
class Response:
    """One request stream's answer as it arrives."""

    stream_id: int
    status: int | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body_bytes: int = 0
    ended: bool = False
    first_byte_at: float | None = None
    ended_at: float | None = None


@dataclass(frozen=True)
class Packet:
    """One QUIC packet from aioquic's qlog: ``sent`` by this client or received."""

    sent: bool
    packet_type: str
    frames: tuple[dict[str, Any], ...]
    size: int

    @property
    def carries_data(self) -> bool:
        """CRYPTO or STREAM frames: what the peer has to wait for (ACKs and padding are not)."""
        return any(f.get("frame_type") in ("crypto", "stream") for f in self.frames)


@dataclass(frozen=True)
class HeaderBlock:
    """One encoded header section: the HEADERS frame's block and the encoder-stream bytes."""

    stream_id: int
    block: int
    encoder_stream: int


class _MeasuredH3(H3Connection):
    """aioquic's HTTP/3 connection, keeping the size of each QPACK header block it encodes."""

    def __init__(self, quic: QuicConnection) -> None:
        super().__init__(quic)
        self.header_blocks: list[HeaderBlock] = []

    def _encode_headers(self, stream_id: int, headers: Any) -> bytes:
        before = self._encoder_bytes_sent
        frame_data = super()._encode_headers(stream_id, headers)
        self.header_blocks.append(HeaderBlock(stream_id, len(frame_data),
                                              self._encoder_bytes_sent - before))
        return frame_data


class H3Client:
    """An HTTP/3 connection to 127.0.0.1:``port`` (UDP), trusting the lab's CA.

    ``session_ticket``: a ticket from an earlier connection's ``tickets``, to resume
    (and send requests in 0-RTT). ``target`` is where datagrams go (a relay's port).
    """

    def __init__(self, port: int, *, session_ticket: SessionTicket | None = None,
                 target: int | None = None) -> None:
        configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN,
                                          server_name="127.0.0.1")
        configuration.load_verify_locations(str(authority().ca_file))
        configuration.session_ticket = session_ticket
        self._logger = QuicLogger()
        configuration.quic_logger = self._logger
        self.tickets: list[SessionTicket] = []
        self.quic = QuicConnection(configuration=configuration,
                                   session_ticket_handler=self.tickets.append)
        self.h3 = _MeasuredH3(self.quic)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # room for a burst: loss in this lab is what a relay drops, not the kernel's buffer
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((LOOPBACK, 0))
        self.address = (LOOPBACK, target or port)
        self.sock.connect(self.address)
        self.responses: dict[int, Response] = {}
        self.sent: list[bytes] = []        # every datagram sent, in order (a replay needs them)
        self.handshake_done = False
        self.early_data_accepted: bool | None = None
        self.quic.connect(self.address, now=time.monotonic())

    @property
    def header_blocks(self) -> list[HeaderBlock]:
        return self.h3.header_blocks

    # --- requests ---------------------------------------------------------------

    def request(self, method: str, path: str, headers: list[tuple[str, str]] | None = None,
                body: bytes = b"") -> int:
        """Queue a request (sent by the next ``flush``); its stream id."""
        stream_id = self.quic.get_next_available_stream_id()
        fields = [(b":method", method.encode()), (b":scheme", b"https"),
                  (b":authority", f"127.0.0.1:{self.address[1]}".encode()),
                  (b":path", path.encode())]
        fields += [(k.lower().encode(), v.encode()) for k, v in headers or []]
        self.h3.send_headers(stream_id, fields, end_stream=not body)
        if body:
            self.h3.send_data(stream_id, body, end_stream=True)
        self.responses[stream_id] = Response(stream_id)
        return stream_id

    # --- moving datagrams -------------------------------------------------------

    def flush(self) -> int:
        """Send what QUIC has queued (after firing an expired timer); datagrams sent."""
        now = time.monotonic()
        timer = self.quic.get_timer()
        if timer is not None and timer <= now:
            self.quic.handle_timer(now)
            self._process()
        sent = 0
        for data, _ in self.quic.datagrams_to_send(now=now):
            self.sock.send(data)
            self.sent.append(data)
            sent += 1
        return sent

    def receive(self, timeout: float) -> bool:
        """Take in one datagram if one comes within ``timeout`` s; whether one came."""
        self.sock.settimeout(max(timeout, 0.0001))
        try:
            data = self.sock.recv(DATAGRAM)
        except (TimeoutError, BlockingIOError):
            return False
        self.quic.receive_datagram(data, self.address, now=time.monotonic())
        self._process()
        return True

    def run_until(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        """Run the connection freely (timers, retransmissions) until ``done()``."""
        deadline = time.monotonic() + timeout
        while not done():
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(f"HTTP/3 exchange not done within {timeout:g} s")
            self.flush()
            timer = self.quic.get_timer()
            wait = min(deadline, timer if timer is not None else deadline) - time.monotonic()
            self.receive(min(max(wait, 0.0), 0.05))

    def migrate(self) -> int:
        """Move to a new local port, as a phone moving from Wi-Fi to mobile data does; the new
        port. The QUIC connection goes on (new connection id, the server validates the path)."""
        old = self.sock
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((LOOPBACK, 0))
        self.sock.connect(self.address)
        old.close()
        self.quic.change_connection_id()
        return self.sock.getsockname()[1]

    def fetch(self, path: str = "/", method: str = "GET", timeout: float = 5.0) -> Response:
        """One request, run to its end."""
        return self.fetch_with(path, [], method=method, timeout=timeout)

    def fetch_with(self, path: str, headers: list[tuple[str, str]], *, method: str = "GET",
                   timeout: float = 5.0) -> Response:
        """One request with ``headers``, run to its end."""
        response = self.responses[self.request(method, path, headers)]
        self.run_until(lambda: response.ended, timeout)
        return response

    def _process(self) -> None:
        now = time.monotonic()
        while (event := self.quic.next_event()) is not None:
            if isinstance(event, HandshakeCompleted):
                self.handshake_done = True
                self.early_data_accepted = event.early_data_accepted
            for h3_event in self.h3.handle_event(event):
                response = self.responses.get(getattr(h3_event, "stream_id", -1))
                if response is None:
                    continue
                if isinstance(h3_event, HeadersReceived):
                    response.headers = list(h3_event.headers)
                    response.status = int(dict(h3_event.headers)[b":status"])
                    response.first_byte_at = response.first_byte_at or now
                elif isinstance(h3_event, DataReceived):
                    response.body_bytes += len(h3_event.data)
                if getattr(h3_event, "stream_ended", False):
                    response.ended, response.ended_at = True, now

    # --- what crossed ---------------------------------------------------------------

    def packets(self) -> list[Packet]:
        """Every packet sent and received so far, in order, from aioquic's qlog."""
        trace = self._logger.to_dict()["traces"][-1]
        found = []
        for event in trace["events"]:
            if event["name"] in ("transport:packet_sent", "transport:packet_received"):
                data = event["data"]
                found.append(Packet(event["name"].endswith("sent"),
                                    data["header"]["packet_type"], tuple(data["frames"]),
                                    data.get("raw", {}).get("length", 0)))
        return found

    def close(self) -> None:
        """Close the connection (CONNECTION_CLOSE sent) and the socket."""
        self.quic.close()
        with contextlib.suppress(OSError):
            self.flush()
        self.sock.close()

    def __enter__(self) -> H3Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
