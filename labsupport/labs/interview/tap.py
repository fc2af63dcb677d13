"""A counting TCP relay: connect to the tap instead of the server, and count what passes.

``Tap(port)`` listens on 127.0.0.1 (a free port) and relays every connection
to ``127.0.0.1:port``, counting connections and the bytes each way. It sees
the protocol's real bytes (headers, frames, HTTP/2 streams), so it answers
"how many connections?" and "how many bytes a message?" by measurement.
"""

from __future__ import annotations

import contextlib
import socket
import threading

__all__ = ["Tap"]


class Tap:
    """Relays ``127.0.0.1:<tap.port>`` to ``127.0.0.1:<port>``, counting as it goes."""

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.connections = 0
        self.bytes_up = 0       # client to server
        self.bytes_down = 0     # server to client
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name="tap", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                return  # closed
            server.settimeout(None)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, up: bool) -> None:
        try:
            while data := source.recv(65536):
                with self._lock:   # counted before it is passed on, so a reply
                    if up:         # the client has seen is always counted
                        self.bytes_up += len(data)
                    else:
                        self.bytes_down += len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def reset(self) -> None:
        """Zero the byte counters (connections stay counted)."""
        with self._lock:
            self.bytes_up = self.bytes_down = 0

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for s in self._sockets:
                s.close()

    def __enter__(self) -> Tap:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
