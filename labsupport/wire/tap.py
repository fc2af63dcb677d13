"""A wire tap: a recording TCP proxy between a client and a lab server.

Point the client at the tap instead of the server and every byte that crosses
is kept with its connection, direction and time::

    with WireTap(server.port) as tap:
        requests.get(f"{tap.url}/api/v1/users/101")
    tap.bytes_up, tap.bytes_down, tap.connections   # client->server, server->client
    tap.messages()     # the bytes parsed into HTTP/1.1, HTTP/2 and WebSocket messages
    tap.show()         # a sequence diagram of the exchange
    tap.save_pcap("exchange.pcap")   # open it in Wireshark

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
from .records import DOWN, UP, Chunk, Connection
from .shaping import Link, LossPattern

__all__ = ["WireTap"]

LOOPBACK = "127.0.0.1"
READ_SIZE = 65536


class WireTap:
    """A TCP proxy on 127.0.0.1 (a free port) to ``target_port``, recording every byte.

    ``record=False`` keeps only the counts (for large uploads). ``profile`` (a name
    in :data:`.profiles.PROFILES` or a :class:`.profiles.NetworkProfile`) shapes the
    relayed bytes; ``seed`` makes its jitter and losses repeat run after run.
    ``loss`` (a :class:`.shaping.LossPattern`) names the lost segments of what each
    server sends, by number, in place of the profile's draw (the client's bytes are then
    not lost). Use it as a context manager or call ``close()``; ``reset()`` forgets what
    was recorded.
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

    def show(self, limit: int = 16, title: str | None = None) -> Figure:
        """Draw the exchange as a sequence diagram (matplotlib figure)."""
        return sequence_diagram(self.messages(), limit=limit, title=title)

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
        try:
            while True:
                data = source.recv(READ_SIZE)
                if not data:
                    break
                now = time.perf_counter()
                with self._lock:
                    self._counts[direction] += len(data)
                    if self.record:
                        connection.chunks.append(Chunk(direction, now, data))
                if link is None:
                    sink.sendall(data)
                else:
                    link.send(data, now)
        except OSError:
            pass
        finally:
            if link is not None:
                link.finish()
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)  # pass the half-close on
            connection.closed = time.perf_counter()
            try:
                halves.wait(timeout=30)
            except threading.BrokenBarrierError:
                self._done(source, sink)

    def _done(self, *sockets: socket.socket) -> None:
        with self._lock:
            for sock in sockets:
                self._sockets.discard(sock)
                sock.close()

    def close(self) -> None:
        """Stop listening and cut every connection through the tap."""
        self._closed = True
        with contextlib.suppress(OSError):   # wakes the thread blocked in accept() (Linux)
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._accepting.join(timeout=2)

    def __enter__(self) -> WireTap:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<WireTap :{self.port} -> {self.target[0]}:{self.target[1]}, "
                f"{len(self._connections)} connections, {self.total_bytes} bytes>")
