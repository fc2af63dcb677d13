"""A wire tap: a recording TCP proxy between a client and a lab server.

Point the client at the tap instead of the server and every byte that crosses
is kept with its connection, direction and time::

    with WireTap(server.port) as tap:
        requests.get(f"{tap.url}/api/v1/users/101")
    tap.bytes_up, tap.bytes_down, tap.connections   # client->server, server->client
    tap.messages()     # the bytes parsed into HTTP/1.1, HTTP/2 and WebSocket messages
    tap.show()         # a sequence diagram of the exchange
    tap.save_pcap("exchange.pcap")   # open it in Wireshark
    tap.cut(tap.connections[0])      # reset a live connection, as a dropped link would

Each connection records how it ended (``connection.end``): a FIN from the client or
the server, a reset (RST) from either, passed on to the other side as a reset, cut
by the tap, or closed by the tap when it closed (see :mod:`.records`).

The tap counts what TCP carries for the application (headers, framing, bodies);
the IP and TCP headers of each segment are not part of the stream and are not counted.

``WireTap(port, profile="4g")`` also shapes what it relays to a named network
profile (:mod:`.profiles`: round-trip time, bandwidth each way, jitter, a model of
TCP loss; how, in :mod:`.shaping`). Chunks are recorded when the tap read them,
that is when their sender sent them.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import struct
import threading
import time
from pathlib import Path

from matplotlib.figure import Figure

from .. import owner
from .diagram import sequence_diagram
from .parsers import Message, parse_connections
from .pcap import write_pcap
from .profiles import NetworkProfile
from .profiles import profile as named_profile
from .records import (
    CLOSED_BY_TAP,
    CUT,
    DOWN,
    FIN_CLIENT,
    FIN_SERVER,
    RESETS,
    RST_CLIENT,
    RST_SERVER,
    UP,
    Chunk,
    Connection,
)
from .shaping import Link, LossPattern

__all__ = ["WireTap"]

LOOPBACK = "127.0.0.1"
READ_SIZE = 65536
_ABORTIVE = struct.pack("ii", 1, 0)   # SO_LINGER on, 0 s: close() sends RST, not FIN
_ENDS = {UP: (FIN_CLIENT, RST_CLIENT), DOWN: (FIN_SERVER, RST_SERVER)}


class WireTap:
    """A TCP proxy on 127.0.0.1 (a free port) to ``target_port``, recording every byte.

    ``record=False`` keeps only the counts (for large uploads). ``profile`` (a name
    in :data:`.profiles.PROFILES` or a :class:`.profiles.NetworkProfile`) shapes the
    relayed bytes; ``seed`` makes its jitter and losses repeat run after run.
    ``loss`` (a :class:`.shaping.LossPattern`) names the lost segments of what each
    server sends, by number, in place of the profile's draw (the client's bytes are then
    not lost). Use it as a context manager or call ``close()``; ``reset()`` forgets what
    was recorded; ``cut(connection)`` and ``cut_all()`` reset live connections.
    """

    def __init__(self, target_port: int, *, target_host: str = LOOPBACK,
                 record: bool = True, profile: str | NetworkProfile = "loopback",
                 seed: int = 0, loss: LossPattern | None = None) -> None:
        self.target = (target_host, target_port)
        self.record = record
        self.profile = named_profile(profile)
        self.seed = seed
        self.loss = loss
        self._links: list[Link] = []
        self._lock = threading.Lock()
        self._connections: list[Connection] = []
        self._counts = {UP: 0, DOWN: 0}
        self._sockets: set[socket.socket] = set()
        self._pairs: dict[int, tuple[socket.socket, socket.socket]] = {}
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        self._since = 0.0
        self._accepting = threading.Thread(target=self._accept, name="wiretap", daemon=True)
        self._accepting.start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` of the tap."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>`` (a gRPC target)."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def bytes_up(self) -> int:
        """Bytes the clients sent to the server."""
        return self._counts[UP]

    @property
    def bytes_down(self) -> int:
        """Bytes the server sent to the clients."""
        return self._counts[DOWN]

    @property
    def total_bytes(self) -> int:
        return self._counts[UP] + self._counts[DOWN]

    @property
    def connections(self) -> list[Connection]:
        """The connections used since the last ``reset()`` (chunks kept only if ``record``)."""
        with self._lock:
            return [c for c in self._connections if c.opened >= self._since or
                    (c.chunks and c.chunks[-1].time >= self._since) or c.closed is None]

    def reset(self) -> None:
        """Start counting afresh: bytes, connections and messages from now on.

        Connections already open are still parsed from their first byte (a
        WebSocket is only a WebSocket after its HTTP upgrade) but only their
        messages from now on are returned.
        """
        with self._lock:
            self._since = time.perf_counter()
            self._counts = {UP: 0, DOWN: 0}
            self._connections = [c for c in self._connections if c.closed is None]

    def messages(self) -> list[Message]:
        """The recorded bytes parsed into messages (see :func:`.parsers.parse_connection`)."""
        return [m for m in parse_connections(self.connections) if m.time >= self._since]

    def save_pcap(self, path: str | Path) -> Path:
        """Write what the tap recorded (since ``reset()``) as a pcap file for Wireshark
        or tshark (packets rebuilt from the stream: see :mod:`.pcap`)."""
        return write_pcap(path, self.connections, self.target[1])

    def show(self, limit: int = 16, title: str | None = None, *, ends: bool = False) -> Figure:
        """Draw the exchange as a sequence diagram; ``ends=True`` adds a row for how each
        connection ended (call it once the clients are done, or after ``close()``)."""
        if ends:
            self.settle()
        ended = [c for c in self.connections
                 if ends and c.ended is not None and c.ended >= self._since]
        return sequence_diagram(self.messages(), limit=limit, title=title, connections=ended)

    # --- proxying -------------------------------------------------------------

    def _accept(self) -> None:
        self._listener.settimeout(0.05)  # closing a socket does not wake a blocked accept()
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not owner.admits(client):  # it would reach the server as us: closed unread
                client.close()
                continue
            client.settimeout(None)
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                connection = Connection(len(self._connections) + 1, time.perf_counter())
                self._connections.append(connection)
                self._sockets.update((client, server))
                self._pairs[connection.number] = (client, server)
            links = self._shape(connection, client, server)
            halves = threading.Barrier(2, action=functools.partial(self._done, client, server))
            for source, sink, direction in ((client, server, UP), (server, client, DOWN)):
                threading.Thread(target=self._pump, args=(source, sink, direction, connection,
                                                          halves, links.get(direction)),
                                 name=f"wiretap-{connection.number}", daemon=True).start()

    def _shape(self, connection: Connection, client: socket.socket,
               server: socket.socket) -> dict[str, Link]:
        """A shaped link each way, unless the profile shapes nothing."""
        p = self.profile
        if not (p.rtt or p.up or p.down or p.loss or self.loss):
            return {}
        base = self.seed * 100_003 + 2 * connection.number
        up_loss = None if self.loss is None else LossPattern(0.0)
        links = {UP: Link(p, UP, connection.opened, server, base, up_loss),
                 DOWN: Link(p, DOWN, connection.opened, client, base + 1, self.loss)}
        with self._lock:
            self._links.extend(links.values())
        return links

    @property
    def stalls(self) -> list[tuple[str, int]]:
        """Every loss the model applied: (direction, byte offset of the lost segment)."""
        with self._lock:
            return [stall for link in self._links for stall in link.stalls]

    def _pump(self, source: socket.socket, sink: socket.socket, direction: str,
              connection: Connection, halves: threading.Barrier, link: Link | None) -> None:
        orderly, reset = _ENDS[direction]
        other_reset = _ENDS[DOWN if direction == UP else UP][1]
        try:
            while True:
                try:
                    data = source.recv(READ_SIZE)
                except ConnectionResetError:
                    self._end(connection, reset)
                    break
                except OSError:     # our own socket, shut by cut() or close()
                    break
                if not data:
                    self._end(connection, orderly)
                    break
                now = time.perf_counter()
                with self._lock:
                    self._counts[direction] += len(data)
                    if self.record:
                        connection.chunks.append(Chunk(direction, now, data))
                try:
                    if link is None:
                        sink.sendall(data)
                    else:
                        link.send(data, now)
                except OSError:     # the other side is gone (reset), or was cut
                    self._end(connection, other_reset)
                    break
        finally:
            if connection.end in RESETS:
                if link is not None:
                    link.abort()
                self._abort(sink)
            else:
                if link is not None:
                    link.finish()
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)  # pass the half-close on
            connection.closed = time.perf_counter()
            try:
                halves.wait(timeout=30)
            except threading.BrokenBarrierError:
                self._done(source, sink)

    def _end(self, connection: Connection, end: str) -> None:
        """Record how ``connection`` ended, once: the first side to end it wins."""
        with self._lock:
            if connection.end is None:
                connection.end, connection.ended = end, time.perf_counter()

    @staticmethod
    def _abort(sock: socket.socket) -> None:
        """Make ``sock``'s close a reset, and wake the thread reading it (Linux: a read
        shut down returns at once); its close, when both halves are done, sends the RST."""
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _ABORTIVE)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RD)

    def cut(self, connection: Connection | int) -> None:
        """Cut a live connection (a :class:`Connection` or its number): both sides get a
        TCP reset (``SO_LINGER`` 0), as when a link drops or a NAT forgets the connection.
        Its ``end`` is ``"cut by the tap"``; a connection already ended is left alone."""
        number = connection if isinstance(connection, int) else connection.number
        with self._lock:
            pair = self._pairs.get(number)
            target = next((c for c in self._connections if c.number == number), None)
        if pair is None or target is None:
            return
        self._end(target, CUT)
        if target.end != CUT:
            return
        for sock in pair:
            self._abort(sock)

    def cut_all(self) -> int:
        """Cut every live connection through the tap; how many were cut."""
        with self._lock:
            live = [c for c in self._connections if c.end is None and c.number in self._pairs]
        for connection in live:
            self.cut(connection)
        return sum(c.end == CUT for c in live)

    def _ended_unseen(self, connection: Connection,
                      pair: tuple[socket.socket, socket.socket]) -> bool:
        """True if either side of ``connection`` has ended it and its pump has not yet
        recorded it; a reset found so is recorded here (the peek consumed it)."""
        pending = False
        for sock, direction in zip(pair, (UP, DOWN), strict=True):
            with self._lock:   # so the pump cannot record the end of stream it now reads
                seen = _peek_end(sock)
                if seen == "reset" and connection.end is None:
                    connection.end, connection.ended = _ENDS[direction][1], time.perf_counter()
            pending = pending or seen is not None
        return pending

    def settle(self, timeout: float = 1.0) -> None:
        """Wait (at most ``timeout`` s) until every end a peer has already sent (a FIN or a
        reset waiting on the tap's socket) is recorded on its connection."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                live = [(c, pair) for c in self._connections
                        if c.end is None and (pair := self._pairs.get(c.number))]
            if not any([self._ended_unseen(c, pair) for c, pair in live]):
                return
            time.sleep(0.002)

    def _done(self, *sockets: socket.socket) -> None:
        with self._lock:
            for sock in sockets:
                self._sockets.discard(sock)
                sock.close()
            for number, pair in list(self._pairs.items()):
                if pair[0] in sockets:
                    del self._pairs[number]

    def close(self) -> None:
        """Stop listening, and close every connection still open (a FIN to both sides)."""
        self._closed = True
        with contextlib.suppress(OSError):   # wakes the thread blocked in accept() (Linux)
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            live = [(c, self._pairs[c.number]) for c in self._connections
                    if c.end is None and c.number in self._pairs]
        for connection, pair in live:
            if not self._ended_unseen(connection, pair):
                self._end(connection, CLOSED_BY_TAP)
        with self._lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._accepting.join(timeout=2)
        deadline = time.monotonic() + 2      # the pumps record the ends they see
        while any(c.end is None for c, _ in live) and time.monotonic() < deadline:
            time.sleep(0.002)

    def __enter__(self) -> WireTap:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<WireTap :{self.port} -> {self.target[0]}:{self.target[1]}, "
                f"{len(self._connections)} connections, {self.total_bytes} bytes>")


def _peek_end(sock: socket.socket) -> str | None:
    """``"eof"`` or ``"reset"`` if ``sock``'s peer has ended its stream and the pump reading
    it has not yet said so, else None: a peek that does not wait. (A peek that meets a
    reset consumes the error: the pump's next read sees only the end of the stream, so
    the caller records the reset.)"""
    try:
        return "eof" if sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"" else None
    except BlockingIOError:
        return None
    except ConnectionResetError:
        return "reset"
    except OSError:
        return "eof"
