"""Servers hosted in a child process as production runs them: Hypercorn on 127.0.0.1.

:func:`hypercorn` serves a WSGI or ASGI app on a free port (HTTP/1.1 with keep-alive, and
HTTP/2 in cleartext on the same port) from one event loop in a thread of its own; the
push and production children of :mod:`.serve` (and :mod:`.push`'s servers) use it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, Literal

__all__ = ["hypercorn", "KEPT", "WSGI_THREADS"]

#: What the child keeps alive for as long as it runs (listeners, servers).
KEPT: list[Any] = []


def _never_empty(app: Any) -> Any:
    """``app`` with a body of at least one (empty) chunk: Hypercorn 0.18's WSGI wrapper
    starts the response at the first chunk, so a 204 with no chunk became a 500. Chunks
    pass through as they come, so a stream (SSE) stays a stream."""
    def chunks(body: Any) -> Iterator[bytes]:
        try:
            empty = True
            for chunk in body:
                empty = False
                yield chunk
            if empty:
                yield b""
        finally:
            if hasattr(body, "close"):
                body.close()

    def wrapped(environ: dict, start_response: Any) -> Any:
        return chunks(app(environ, start_response))
    return wrapped


_LOOP: Any = None
#: Hypercorn runs each WSGI request in its event loop's default executor, one thread a
#: request for as long as it lasts: a held poll or an open SSE stream keeps one. The
#: default (min(32, CPUs + 4)) would cap open streams at six on this machine.
WSGI_THREADS = 4096


def _loop() -> Any:
    """The child's event loop for Hypercorn, in a thread of its own (started once)."""
    global _LOOP
    if _LOOP is None:
        import asyncio
        from concurrent.futures import ThreadPoolExecutor

        _LOOP = asyncio.new_event_loop()
        _LOOP.set_default_executor(ThreadPoolExecutor(WSGI_THREADS, thread_name_prefix="wsgi"))
        threading.Thread(target=_LOOP.run_forever, name="hypercorn", daemon=True).start()
    return _LOOP


def hypercorn(app: Any, mode: Literal["wsgi", "asgi"] = "wsgi") -> int:
    """Serve ``app`` (a WSGI app, or an ASGI one with ``mode="asgi"``) with Hypercorn on
    127.0.0.1 (a free port): HTTP/1.1 with keep-alive, and HTTP/2 (cleartext, prior
    knowledge) on the same port."""
    import asyncio
    import socket

    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
    KEPT.append(listener)  # kept open: Hypercorn serves on its file descriptor
    config = Config()
    config.bind = [f"fd://{listener.fileno()}"]
    config.accesslog = None
    config.errorlog = None
    config.backlog = 4096
    # WSGI mode reads a whole body before the app runs, and refuses one over 16 MiB by
    # default: GraphQL's base64 upload at SCALE 5 is 33 MB.
    config.wsgi_max_body_size = 1 << 30
    # A shutdown trigger of our own: Hypercorn's default installs signal handlers, which
    # only the main thread may do. The child ends when its standard input closes.
    asyncio.run_coroutine_threadsafe(
        serve(_never_empty(app) if mode == "wsgi" else app, config, mode=mode,
              shutdown_trigger=asyncio.Event().wait),
        _loop())
    return listener.getsockname()[1]
