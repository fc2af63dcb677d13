"""Lab servers in a child process, so their memory can be measured alone.

``python -m labsupport.labs.choosing.serve <kind>`` starts one server, prints
one JSON line (its ports and what a client needs), and runs until its standard
input closes, so it never outlives the kernel that started it, even a killed one.
:func:`spawn` does that and returns a :class:`Child` whose ``rss()`` is read from
the operating system (psutil).

Kinds: ``sse``, ``long-polling`` and ``websockets`` (the labs, by their own
``start()``), ``production`` (REST and GraphQL served as in production, see
:func:`_production`, beside the gRPC lab and, as the lesson, the REST lab on
Werkzeug's development server), and ``uploads``: a streamed HTTP PUT, a gRPC
client stream of chunks and a GraphQL mutation taking the file in a variable,
each counting what it received.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import threading
import time
from concurrent import futures
from typing import Any

import psutil

__all__ = ["spawn", "Child", "UPLOAD_CHUNK"]

UPLOAD_CHUNK = 64 * 1024


class Child:
    """A server in a child process: ``info`` (what it printed), ``rss()``, ``sample_peak()``."""

    def __init__(self, kind: str, timeout: float = 20.0) -> None:
        self.kind, self.timeout = kind, timeout
        # No preexec_fn, so the child is exec'd at once: safe after gRPC has started threads.
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__, kind], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._ps = psutil.Process(self.process.pid)
        self._info: dict[str, Any] | None = None

    @property
    def info(self) -> dict[str, Any]:
        """What the server printed when it was ready (waits for it, bounded)."""
        if self._info is None:
            line: list[bytes] = []
            stdout = self.process.stdout
            assert stdout is not None
            reader = threading.Thread(target=lambda: line.append(stdout.readline()), daemon=True)
            reader.start()
            reader.join(self.timeout)
            if not line or not line[0]:
                self.stop()
                raise RuntimeError(f"the {self.kind} server did not start in {self.timeout:g} s")
            self._info = json.loads(line[0])
        return self._info

    def rss(self) -> int:
        """Resident memory of the child now, in bytes."""
        return self._ps.memory_info().rss

    def sample_peak(self, during: threading.Thread, every: float = 0.002) -> int:
        """The highest RSS seen while ``during`` runs (sampled every ``every`` s)."""
        peak = self.rss()
        while during.is_alive():
            peak = max(peak, self.rss())
            time.sleep(every)
        return max(peak, self.rss())

    def stop(self) -> None:
        """Close its standard input (it exits), killing it if it does not within 5 s."""
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        if self.process.stdout:
            self.process.stdout.close()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def spawn(kind: str, timeout: float = 20.0) -> Child:
    """Start a ``kind`` server in a child process; ``child.info`` waits until it is ready."""
    return Child(kind, timeout)


# --- the child side ----------------------------------------------------------------

def _uploads() -> dict[str, Any]:
    import grpc
    from flask import Flask, jsonify, request

    from ...harness import LOOPBACK, grpc_server, serve_wsgi

    app = Flask(__name__)

    @app.put("/files/<name>")
    def put_file(name: str):
        digest, size = hashlib.sha256(), 0
        while chunk := request.stream.read(UPLOAD_CHUNK):
            digest.update(chunk)
            size += len(chunk)
        return jsonify({"name": name, "size": size, "sha256": digest.hexdigest()}), 201

    @app.post("/graphql")
    def graphql_upload():
        # What a GraphQL server without the multipart convention must do: the whole file
        # arrives inside the JSON body, base64-encoded, and is decoded in memory.
        body = request.get_json()
        data = base64.b64decode(body["variables"]["file"])
        return jsonify({"data": {"upload": {"size": len(data),
                                            "sha256": hashlib.sha256(data).hexdigest()}}})

    http = serve_wsgi("uploads", app)

    def put(chunks, context):
        digest, size = hashlib.sha256(), 0
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
        return json.dumps({"size": size, "sha256": digest.hexdigest()}).encode()

    server = grpc_server(futures.ThreadPoolExecutor(max_workers=4), handlers=[
        grpc.method_handlers_generic_handler("choosing.Upload", {
            "Put": grpc.stream_unary_rpc_method_handler(put)})])
    grpc_port = server.add_insecure_port(f"{LOOPBACK}:0")
    server.start()
    return {"http_port": http.port, "grpc_port": grpc_port}


def _push_lab(kind: str) -> dict[str, Any]:
    from ..long_polling import server as long_polling
    from ..sse import server as sse
    from ..websocket_chat import server as chat

    if kind == "sse":
        return {"port": sse.start(heartbeat=15.0).port}
    if kind == "long-polling":
        return {"port": long_polling.start().port}
    websockets = chat.start()
    return {"port": websockets.port, "token": websockets.token_for(101)}


_LISTENERS: list[Any] = []


def _never_empty(app: Any) -> Any:
    """``app`` with a body of at least one (empty) chunk: Hypercorn 0.18's WSGI wrapper
    starts the response at the first chunk, so a 204 with no chunk became a 500."""
    def wrapped(environ: dict, start_response: Any) -> Any:
        body = app(environ, start_response)
        try:
            chunks = list(body)
        finally:
            if hasattr(body, "close"):
                body.close()
        return chunks or [b""]
    return wrapped


def _hypercorn(app: Any, loop: Any) -> int:
    """Serve the WSGI ``app`` with Hypercorn on 127.0.0.1 (a free port) in ``loop``."""
    import asyncio
    import socket

    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    listener = socket.create_server(("127.0.0.1", 0))
    _LISTENERS.append(listener)  # kept open: Hypercorn serves on its file descriptor
    config = Config()
    config.bind = [f"fd://{listener.fileno()}"]
    config.accesslog = None
    config.errorlog = None
    # A shutdown trigger of our own: Hypercorn's default installs signal handlers, which
    # only the main thread may do. The child ends when its standard input closes.
    asyncio.run_coroutine_threadsafe(
        serve(_never_empty(app), config, mode="wsgi", shutdown_trigger=asyncio.Event().wait), loop)
    return listener.getsockname()[1]


def _production() -> dict[str, Any]:
    """REST, GraphQL and long polling as in production: Hypercorn, HTTP/1.1 with
    keep-alive and HTTP/2 (cleartext, prior knowledge) on the same port; the gRPC lab's
    server; and the REST and long-polling labs on Werkzeug's development server (a
    connection per request: the lesson).

    Why Hypercorn: it is a production ASGI/WSGI server that runs the labs' Flask apps
    unchanged (WSGI mode), keeps HTTP/1.1 connections alive, and speaks HTTP/2 on the
    same port, which gives the control "REST over HTTP/2" against gRPC. Gunicorn and
    Waitress keep connections alive too, but speak HTTP/1.1 only.
    """
    import asyncio

    from ... import database
    from ..graphql_api import server as graphql_api
    from ..grpc_service import server as grpc_service
    from ..long_polling import server as long_polling
    from ..rest import server as rest

    database.ready(True)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="hypercorn", daemon=True).start()
    return {"rest": _hypercorn(rest.create_app(rate_limit=None), loop),
            "graphql": _hypercorn(graphql_api.create_app(), loop),
            "grpc": grpc_service.start(fresh_data=False, max_workers=16).port,
            "rest-dev": rest.start(fresh_data=False, name="rest-dev", rate_limit=None).port,
            "long-polling": _hypercorn(long_polling.create_app(long_polling.NotificationHub(
                long_polling.USERS, 100)), loop),
            "long-polling-dev": long_polling.start(name="long-polling-dev").port}


def main(kind: str) -> None:
    info = {"uploads": _uploads, "production": _production}.get(kind, lambda: _push_lab(kind))()
    print(json.dumps(info), flush=True)
    sys.stdin.read()  # until the parent closes it, or dies


if __name__ == "__main__":
    main(sys.argv[1])
