"""One application served over HTTP/1.1, HTTP/2 and HTTP/3 by hypercorn, in the kernel's background.

    from labsupport.labs import http_versions as hv
    server = hv.start()
    server.url            # 'https://127.0.0.1:PORT'  TLS over TCP: HTTP/1.1 or HTTP/2 by ALPN
    server.port           # the same number over UDP: HTTP/3 over QUIC
    server.cleartext_url  # 'http://127.0.0.1:PORT2' HTTP/1.1, and HTTP/2 with prior knowledge (h2c)

Why hypercorn: one production ASGI server speaking all three versions (h11, h2 and
aioquic underneath), so the comparison changes the protocol and nothing else.

hypercorn issues no TLS session tickets over QUIC, so 0-RTT could never happen. This module
gives its QUIC connections a ticket store (:class:`TicketStore`): ``single_use=True`` (the
default, as RFC 8446 8.1 advises) accepts a ticket once; ``False`` accepts it again and
again, which is what lets a replayed 0-RTT request run twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import socket
from typing import Any, cast

import hypercorn.protocol.quic as hypercorn_quic
from aioquic.quic.connection import QuicConnection
from aioquic.tls import SessionTicket
from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.utils import wrap_app

from ...harness import LOG_LINES_KEPT, LOOPBACK, AsyncioHandle, logger_for, serve_asyncio
from .app import App
from .certs import authority

__all__ = ["start", "HTTPVersionsHandle", "TicketStore"]


class TicketStore:
    """The server's TLS session tickets (what a returning client presents for 0-RTT)."""

    def __init__(self, *, single_use: bool = True) -> None:
        self.single_use = single_use
        self._tickets: dict[bytes, SessionTicket] = {}
        self.issued = 0
        self.resumed = 0

    def add(self, ticket: SessionTicket) -> None:
        self._tickets[ticket.ticket] = ticket
        self.issued += 1

    def pop(self, label: bytes) -> SessionTicket | None:
        """The ticket ``label`` names, or None (unknown: a full handshake, no 0-RTT)."""
        ticket = self._tickets.pop(label, None) if self.single_use else self._tickets.get(label)
        if ticket is not None:
            self.resumed += 1
        return ticket


_stores: dict[int, TicketStore] = {}   # by the QUIC port of each running server


def _quic_connection(*args: Any, configuration: Any, **kwargs: Any) -> QuicConnection:
    """hypercorn's QuicConnection, given the ticket store of the server it belongs to."""
    store = _stores.get(getattr(configuration, "lab_port", -1))
    if store is not None:
        kwargs.update(session_ticket_handler=store.add, session_ticket_fetcher=store.pop)
    return QuicConnection(*args, configuration=configuration, **kwargs)


def _tagged_init(original: Any) -> Any:
    """Tag each QuicProtocol's configuration with its server's port (to find its tickets)."""
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if self.server is not None:
            self.quic_config.lab_port = self.server[1]
    return init


# hypercorn's QUIC module patched once per process (setattr: the patch is deliberate).
if not hasattr(hypercorn_quic, "lab_patched"):
    setattr(hypercorn_quic, "QuicConnection", _quic_connection)  # noqa: B010
    setattr(hypercorn_quic.QuicProtocol, "__init__",  # noqa: B010
            _tagged_init(hypercorn_quic.QuicProtocol.__init__))
    setattr(hypercorn_quic, "lab_patched", True)  # noqa: B010


class HTTPVersionsHandle(AsyncioHandle):
    """The server: ``url`` (TLS, TCP), ``port`` (also UDP), ``cleartext_url``, its ``app``."""

    cleartext_port: int
    tickets: TicketStore

    @property
    def cleartext_url(self) -> str:
        return f"http://{self.host}:{self.cleartext_port}"


def _tcp_and_udp_on_one_port(attempts: int = 50) -> tuple[socket.socket, socket.socket]:
    """A TCP and a UDP socket on 127.0.0.1 with the same free port number."""
    for _ in range(attempts):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tcp.bind((LOOPBACK, 0))
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind((LOOPBACK, tcp.getsockname()[1]))
        except OSError as error:
            tcp.close()
            udp.close()
            if error.errno != errno.EADDRINUSE:
                raise
            continue
        tcp.listen(128)   # connections wait in the backlog until hypercorn accepts them
        return tcp, udp
    raise OSError(errno.EADDRINUSE, "no port free over both TCP and UDP")


def start(*, name: str = "http-versions", single_use_tickets: bool = True,
          tickets: TicketStore | None = None) -> HTTPVersionsHandle:
    """Serve the app on 127.0.0.1: HTTP/1.1 + HTTP/2 over TLS and HTTP/3 on one port number,
    HTTP/1.1 + h2c in cleartext on another. Re-running it replaces the previous server.

    ``tickets``: share one ticket store between servers (the nodes of one cluster, which
    must all accept a ticket any of them issued); otherwise a new one, ``single_use_tickets``.
    """
    certs = authority()
    app = App()
    if tickets is None:
        tickets = TicketStore(single_use=single_use_tickets)
    ports: dict[str, int] = {}
    log: collections.deque[str] = collections.deque(maxlen=LOG_LINES_KEPT)

    async def begin() -> tuple[int, Any]:
        tcp, udp = _tcp_and_udp_on_one_port()
        plain = socket.create_server((LOOPBACK, 0))
        for sock in (tcp, udp, plain):
            sock.setblocking(False)
        port, ports["cleartext"] = tcp.getsockname()[1], plain.getsockname()[1]
        config = Config()
        config.certfile, config.keyfile = str(certs.cert_file), str(certs.key_file)
        config.accesslog = None
        config.errorlog = logger_for(f"hypercorn.error.{name}", log)   # server.logs(), not cells
        config.graceful_timeout = 0.5
        config._set_quic_addresses([udp])   # what hypercorn's alt-svc header announces
        _stores[port] = tickets
        stop = asyncio.Event()
        serving = asyncio.ensure_future(worker_serve(
            wrap_app(cast(Any, app), config.wsgi_max_body_size, "asgi"),
            config,
            sockets=Sockets([tcp], [plain], [udp]), shutdown_trigger=stop.wait))
        await asyncio.sleep(0)

        async def aclose() -> None:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(serving, 5)
            _stores.pop(port, None)
            for sock in (tcp, udp, plain):
                sock.close()

        return port, aclose

    handle = serve_asyncio(name, begin, scheme="https", app=app, log=log,
                           handle=HTTPVersionsHandle,
                           cleartext_port=0, tickets=tickets)
    handle.cleartext_port = ports["cleartext"]
    return handle
