"""Run a lab's server in the background of a Jupyter kernel.

Every lab's ``start()`` returns a :class:`ServerHandle`. The handle is the same
whatever runs underneath (a WSGI app in a thread, an asyncio server on its own
event loop, a gRPC server), so a notebook always does::

    server = rest.start()      # replaces any earlier REST server in this kernel
    server.url                 # 'http://127.0.0.1:54321'
    server.stop()              # or: with rest.start() as server: ...

Servers listen on 127.0.0.1 on a free port, never print into cells (their log
lines go to ``server.logs()``), and all stop when the kernel exits. They serve only
connections of the user who started them (see :mod:`labsupport.owner`): each kind of
server checks once per connection, at accept time (gRPC, which shows a server calls, not
connections: once per call), and refuses another user's in its protocol's terms (HTTP 403
with the error envelope, a WebSocket handshake answered 403, gRPC ``PERMISSION_DENIED``)
before the lab's code sees a byte of it.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Self, TypeVar, cast, overload

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from . import owner
from .api_errors import envelope

__all__ = [
    "ServerHandle", "AsyncioHandle", "serve_wsgi", "serve_asyncio", "register", "running",
    "stop_all", "grpc_server",
]

LOOPBACK = "127.0.0.1"
LOG_LINES_KEPT = 500

_registry: dict[str, ServerHandle] = {}
_registry_lock = threading.Lock()


def _bypass_proxies_for_loopback() -> None:
    """Make HTTP clients (requests, urllib, grpc) talk to loopback directly."""
    for var in ("NO_PROXY", "no_proxy"):
        entries = [e for e in os.environ.get(var, "").split(",") if e]
        for host in ("127.0.0.1", "localhost", "::1"):
            if host not in entries:
                entries.append(host)
        os.environ[var] = ",".join(entries)


_bypass_proxies_for_loopback()


class ServerHandle:
    """A running lab server: where it listens, its log, and how to stop it.

    A lab whose handle offers more (a broker, a WebSocket address) subclasses
    it, declaring those attributes; the harness sets them from ``attributes``.
    """

    app: Any

    def __init__(
        self,
        name: str,
        port: int,
        stop: Callable[[], None],
        *,
        scheme: str = "http",
        log: collections.deque[str] | None = None,
        app: Any = None,
        **attributes: Any,
    ) -> None:
        self.name = name
        self.host = LOOPBACK
        self.port = port
        self.scheme = scheme
        self.app = app
        self._stop = stop
        self._log = log if log is not None else collections.deque(maxlen=LOG_LINES_KEPT)
        self._stopped = threading.Event()
        declared = {n for cls in type(self).__mro__ for n in vars(cls).get("__annotations__", {})}
        for attribute, value in attributes.items():
            if attribute not in declared:
                raise TypeError(f"{type(self).__name__} declares no attribute {attribute!r}")
            setattr(self, attribute, value)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (``host:port`` for gRPC)."""
        if self.scheme == "grpc":
            return f"{self.host}:{self.port}"
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return not self._stopped.is_set()

    def logs(self, last: int = 20) -> list[str]:
        """The server's most recent log lines (they never print into cells)."""
        return list(self._log)[-last:]

    def stop(self) -> None:
        """Stop the server and free its port. Safe to call twice."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        try:
            self._stop()
        finally:
            with _registry_lock:
                if _registry.get(self.name) is self:
                    del _registry[self.name]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{self.name} server {state} at {self.url}>"


H = TypeVar("H", bound=ServerHandle)
A = TypeVar("A", bound="AsyncioHandle")


def register(handle: H) -> H:
    """Make ``handle`` the one server of its name, stopping any earlier one."""
    with _registry_lock:
        previous = _registry.get(handle.name)
        _registry[handle.name] = handle
    if previous is not None:
        previous.stop()
    return handle


def running() -> dict[str, ServerHandle]:
    """The lab servers running in this kernel, by name."""
    with _registry_lock:
        return dict(_registry)


def stop_all() -> None:
    """Stop every lab server in this kernel."""
    for handle in list(running().values()):
        handle.stop()


atexit.register(stop_all)


def stop_previous(name: str) -> None:
    """Stop the server called ``name``, if any, before a new one is built."""
    with _registry_lock:
        previous = _registry.get(name)
    if previous is not None:
        previous.stop()


class _LoggingWSGIServer(BaseWSGIServer):
    """Werkzeug's threaded server, keeping the log lines its requests make."""

    lab_log: collections.deque[str]


class _QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler, logging into the handle instead of stderr."""

    server: _LoggingWSGIServer
    refused = False

    def setup(self) -> None:
        """Accept time: is the other end of this connection our user's?"""
        super().setup()
        self.refused = not owner.admits(self.connection)

    def run_wsgi(self) -> None:
        """Run the app, unless the connection is another user's: then a 403 in the
        envelope, the app never called (a WebSocket handshake gets the same 403)."""
        if not self.refused:
            super().run_wsgi()
            return
        length = self.headers.get("Content-Length", "")
        if length.isdigit():  # read (bounded) what was sent, so closing does not reset it
            self.connection.settimeout(1)
            with contextlib.suppress(OSError):
                self.rfile.read(min(int(length), 1 << 16))
        self.send_error(403, owner.REFUSAL)
        self.close_connection = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.server.lab_log.append(f"{self.requestline} -> {code}")

    def handle_one_request(self) -> None:
        """Serve one request; a connection that carried a WebSocket ends with it.

        HTTP/1.1 keeps a connection open for the next request, but once a WebSocket's
        closing handshake is over the server closes the TCP connection (RFC 6455 7.1.1):
        a client otherwise waits its whole close timeout for it (websockets: 10 s).
        """
        super().handle_one_request()
        headers = getattr(self, "headers", None)  # none when the request line was unreadable
        upgrade = headers.get("Upgrade", "") if headers is not None else ""
        if "websocket" in upgrade.lower() and not self.refused:  # a refused one never opened
            self._wait_for_websocket_to_let_go()
            self.close_connection = True

    def _wait_for_websocket_to_let_go(self, timeout: float = 2.0) -> None:
        """The app returns as soon as its WebSocket is closed, while the WebSocket's own
        thread (simple-websocket) may still be sending its half of the closing handshake;
        it closes the socket when done. Wait for that, a bounded time, before closing TCP."""
        deadline = time.monotonic() + timeout
        while not getattr(self.connection, "_closed", True) and time.monotonic() < deadline:
            time.sleep(0.001)

    def log(self, type: str, message: str, *args: Any) -> None:
        self.server.lab_log.append(f"{type}: {message % args}")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer what ``http.server`` refuses before the app runs (a 414 for a URL past
        64 kB, a 431 for a header line too long or too many headers, a 400 for a malformed
        request line) with the document's JSON error envelope instead of an HTML page."""
        short, _long = self.responses.get(code, ("Error", ""))
        message = message or short
        self.log_error("code %d, message %s", code, message)
        self.send_response(code, short)
        self.send_header("Connection", "close")
        body = b""
        if code >= 200 and code not in (204, 205, 304):
            details = {"reason": [explain]} if explain else None
            body = json.dumps(envelope(code, message, details=details)).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)


class LogToHandle(logging.Handler):
    """Keeps an app's log records (exceptions included) on its server handle."""

    def __init__(self, log: collections.deque[str]) -> None:
        super().__init__()
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{record.levelname}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            line += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        self.log.append(line)


def logger_for(name: str, log: collections.deque[str]) -> logging.Logger:
    """The logger ``name``, writing into a handle's ``log`` and never into a cell."""
    logger = logging.getLogger(name)
    _send_to(logger, log)
    return logger


def _send_to(logger: logging.Logger, log: collections.deque[str]) -> None:
    logger.handlers[:] = [LogToHandle(log)]
    logger.propagate = False
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def _capture_app_logger(app: Any, log: collections.deque[str]) -> None:
    logger = getattr(app, "logger", None)
    if isinstance(logger, logging.Logger):
        _send_to(logger, log)


@overload
def serve_wsgi(
    name: str, app: Any, *, on_stop: Callable[[], None] | None = None,
    log: collections.deque[str] | None = None,
) -> ServerHandle:
    ...


@overload
def serve_wsgi(
    name: str, app: Any, *, on_stop: Callable[[], None] | None = None,
    log: collections.deque[str] | None = None, handle: type[H], **attributes: Any,
) -> H:
    ...


def serve_wsgi(
    name: str, app: Any, *, on_stop: Callable[[], None] | None = None,
    log: collections.deque[str] | None = None,
    handle: type[ServerHandle] = ServerHandle, **attributes: Any,
) -> ServerHandle:
    """Serve a WSGI app (Flask) on 127.0.0.1 and a free port, in a daemon thread.

    ``on_stop`` runs after the server has stopped accepting requests, e.g. to
    wake long-lived streaming responses so their threads can end. ``log`` is the
    deque the server's log lines go to (a new one by default), shown by
    ``handle.logs()``. ``handle`` is the lab's handle class, built with ``attributes``.
    """
    stop_previous(name)
    if log is None:
        log = collections.deque(maxlen=LOG_LINES_KEPT)
    server = cast(_LoggingWSGIServer, make_server(
        LOOPBACK, 0, app, threaded=True, request_handler=_QuietRequestHandler))
    server.lab_log = log
    _capture_app_logger(app, log)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, name=f"{name}-server",
        daemon=True,
    )

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        if on_stop is not None:
            on_stop()

    built = handle(name, server.port, stop, log=log, app=app, **attributes)
    thread.start()
    return register(built)


_REFUSED_HEAD_BYTES = 1 << 16


class _OwnerGate(asyncio.Protocol):
    """Stands in front of an asyncio server's protocol for one connection: at accept time
    it hands the connection to the server's own protocol if it is our user's; otherwise
    it reads the request's head (bounded) and answers it 403 with the error envelope,
    which is how a WebSocket handshake is refused (RFC 6455 4.2.2)."""

    def __init__(self, factory: Callable[[], asyncio.BaseProtocol]) -> None:
        self.factory = factory
        self.head = b""
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        if owner.admits(transport.get_extra_info("socket")):
            protocol = self.factory()
            transport.set_protocol(protocol)
            protocol.connection_made(transport)
        else:
            asyncio.get_running_loop().call_later(5, transport.close)

    def data_received(self, data: bytes) -> None:
        self.head += data
        if b"\r\n\r\n" in self.head or len(self.head) > _REFUSED_HEAD_BYTES:
            body = json.dumps(envelope(403, owner.REFUSAL)).encode()
            self.transport.write(
                b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
            self.transport.close()

    def eof_received(self) -> bool:
        return False  # the transport closes


class _DatagramGate(asyncio.DatagramProtocol):
    """Stands in front of an asyncio datagram endpoint's protocol (a QUIC server): a
    datagram from another user's socket is dropped unread, as if lost."""

    def __init__(self, protocol: asyncio.DatagramProtocol) -> None:
        self.protocol = protocol
        self.dropped = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.protocol.connection_made(cast(asyncio.DatagramTransport, transport))

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if owner.admits_datagram(addr):
            self.protocol.datagram_received(data, addr)
        else:
            self.dropped += 1

    def error_received(self, exc: Exception) -> None:
        self.protocol.error_received(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.connection_lost(exc)


class _OwnerOnlyLoop(asyncio.SelectorEventLoop):
    """An event loop whose every server puts an :class:`_OwnerGate` before its protocol, and
    every datagram endpoint a :class:`_DatagramGate`."""

    async def create_server(self, protocol_factory: Any, *args: Any, **kwargs: Any) -> Any:
        return await super().create_server(lambda: _OwnerGate(protocol_factory), *args, **kwargs)

    async def create_datagram_endpoint(self, protocol_factory: Any, *args: Any,
                                       **kwargs: Any) -> Any:
        transport, gate = await super().create_datagram_endpoint(
            lambda: _DatagramGate(protocol_factory()), *args, **kwargs)
        return transport, gate.protocol


class BackgroundLoop:
    """An asyncio event loop running in its own daemon thread (never the kernel's).

    Every server started on it serves only our user's connections (:class:`_OwnerGate`).
    """

    def __init__(self, name: str) -> None:
        self.loop = _OwnerOnlyLoop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 10) -> Any:
        """Run a coroutine on this loop from another thread and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


class AsyncioHandle(ServerHandle):
    """The handle of an asyncio server: ``loop`` runs coroutines on its event loop."""

    loop: BackgroundLoop


Starter = Callable[[], Coroutine[Any, Any, tuple[int, Callable[[], Coroutine[Any, Any, None]]]]]


@overload
def serve_asyncio(
    name: str, start: Starter, *, scheme: str = "http", app: Any = None,
    log: collections.deque[str] | None = None,
) -> AsyncioHandle:
    ...


@overload
def serve_asyncio(
    name: str, start: Starter, *, scheme: str = "http", app: Any = None,
    log: collections.deque[str] | None = None, handle: type[A], **attributes: Any,
) -> A:
    ...


def serve_asyncio(
    name: str,
    start: Starter,
    *,
    scheme: str = "http",
    app: Any = None,
    log: collections.deque[str] | None = None,
    handle: type[AsyncioHandle] = AsyncioHandle,
    **attributes: Any,
) -> AsyncioHandle:
    """Run an asyncio server on its own event loop in a background thread.

    ``start`` is a coroutine function run on that loop; it starts listening on
    127.0.0.1 port 0 and returns ``(port, aclose)``, where ``aclose`` is a
    coroutine function that shuts the server down. ``log`` is the deque the
    server's log lines go to, shown by ``handle.logs()``. ``handle`` is the
    lab's handle class, built with ``attributes``.
    """
    stop_previous(name)
    background = BackgroundLoop(f"{name}-loop")
    try:
        port, aclose = background.run(start())
    except BaseException:
        background.close()
        raise

    def stop() -> None:
        try:
            background.run(aclose())
        finally:
            background.close()

    built = handle(name, port, stop, scheme=scheme, app=app, log=log, loop=background,
                   **attributes)
    return register(built)


def grpc_server(executor: Any, *, interceptors: Any = (), **options: Any) -> Any:
    """``grpc.server(executor, ...)`` serving only our user's calls: every call from
    another user's connection gets ``PERMISSION_DENIED`` before any of ``interceptors``
    or the method runs (see :mod:`labsupport.grpc_owner`)."""
    from .grpc_owner import owner_only_server

    return owner_only_server(executor, interceptors=interceptors, **options)


logging.getLogger("werkzeug").addHandler(logging.NullHandler())
