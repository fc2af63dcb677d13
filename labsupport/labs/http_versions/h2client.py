"""A small HTTP/2 client on h2's sans-I/O connection (the library httpx uses), over a socket.

It runs many streams on one connection and keeps, for each response, where in the TCP
byte stream it ended (``ended_offset``) and the size of every HPACK header block it sent
(``header_blocks``, read back from the HEADERS frames it wrote)::

    with H2Client(server.cleartext_port) as client:         # h2c, prior knowledge
        stream = client.request("GET", "/")
        client.run_until(lambda: client.responses[stream].ended)
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import h2.config
import h2.connection
import h2.events
from hyperframe.frame import ContinuationFrame, Frame, HeadersFrame

from ...harness import LOOPBACK
from .certs import authority

__all__ = ["H2Client", "H2Response"]


@dataclass
class H2Response:
    """One stream's answer; ``ended_offset``: TCP bytes received when it ended; ``trailers``:
    the fields of a HEADERS frame after the body, if one came."""

    stream_id: int
    status: int | None = None
    trailers: list[tuple[bytes, bytes]] | None = None
    body_bytes: int = 0
    ended: bool = False
    first_byte_at: float | None = None
    ended_at: float | None = None
    ended_offset: int | None = None


class H2Client:
    """HTTP/2 to 127.0.0.1:``port``: cleartext with prior knowledge (h2c), or ``tls=True``
    (ALPN "h2", trusting the lab's CA)."""

    def __init__(self, port: int, *, tls: bool = False, timeout: float = 5.0) -> None:
        sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            context = authority().client_context(alpn=("h2",))
            sock = context.wrap_socket(sock, server_hostname="127.0.0.1")
            if sock.selected_alpn_protocol() != "h2":
                raise ConnectionError("the server did not agree to h2 over ALPN")
        self.sock = sock
        self.authority = f"127.0.0.1:{port}"
        self.scheme = "https" if tls else "http"
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        # a large receive window: flow control is not what this lab is about
        self.conn.increment_flow_control_window(2**30)
        self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**24})
        self.responses: dict[int, H2Response] = {}
        self.header_blocks: list[int] = []
        self.received = 0
        self._send()

    def request(self, method: str, path: str, headers: list[tuple[str, str]] | None = None
                ) -> int:
        """Send a request (no body); its stream id."""
        stream_id = self.conn.get_next_available_stream_id()
        fields = [(":method", method), (":scheme", self.scheme), (":authority", self.authority),
                  (":path", path)] + list(headers or [])
        self.conn.send_headers(stream_id, fields, end_stream=True)
        self.responses[stream_id] = H2Response(stream_id)
        self._send()
        return stream_id

    def _send(self) -> None:
        data = self.conn.data_to_send()
        if not data:
            return
        self._record_header_blocks(data)
        self.sock.sendall(data)

    def _record_header_blocks(self, data: bytes) -> None:
        offset = 0
        if data.startswith(b"PRI * HTTP/2.0"):
            offset = 24
        while offset + 9 <= len(data):
            frame, length = Frame.parse_frame_header(memoryview(data[offset:offset + 9]))
            if isinstance(frame, HeadersFrame):
                self.header_blocks.append(length)
            elif isinstance(frame, ContinuationFrame):
                self.header_blocks[-1] += length
            offset += 9 + length

    def run_until(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        """Read and answer the connection until ``done()``."""
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"HTTP/2 exchange not done within {timeout:g} s")
            self.sock.settimeout(min(left, 0.5))
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, ssl.SSLWantReadError):
                continue
            if not data:
                raise ConnectionError("the server closed the connection")
            self.received += len(data)
            now = time.monotonic()
            for event in self.conn.receive_data(data):
                self._handle(event, now)
            self._send()

    def _handle(self, event: h2.events.Event, now: float) -> None:
        response = self.responses.get(getattr(event, "stream_id", -1) or -1)
        if response is None:
            return
        if isinstance(event, h2.events.ResponseReceived):
            response.status = int(dict(event.headers)[b":status"])
            response.first_byte_at = now
        elif isinstance(event, h2.events.DataReceived):
            response.body_bytes += len(event.data)
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            response.trailers = list(event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            response.ended, response.ended_at, response.ended_offset = True, now, self.received

    def fetch(self, path: str = "/", headers: list[tuple[str, str]] | None = None,
              timeout: float = 5.0) -> H2Response:
        """One request, run to its end."""
        stream = self.request("GET", path, headers)
        self.run_until(lambda: self.responses[stream].ended, timeout)
        return self.responses[stream]

    def close(self) -> None:
        try:
            self.conn.close_connection()
            self._send()
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
