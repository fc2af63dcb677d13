"""Lab servers in a child process, so their memory can be measured alone.

``python -m labsupport.labs.choosing.serve <kind>`` starts one server, prints
one JSON line (its ports and what a client needs), and runs until its standard
input closes, so it never outlives the kernel that started it, even a killed one.
:func:`spawn` does that and returns a :class:`Child` whose ``rss()`` is read from
the operating system (psutil).

Kinds: ``push`` (nothing at first; ``child.start(name)`` starts a push server of
:data:`.push.SERVERS` in it, and ``child.call(label, op, ...)`` asks it to publish,
count its registered clients or drop them: one JSON line each way over the
child's standard input and output), ``production`` (REST and GraphQL served as in
production, see :func:`_production`, beside the gRPC lab and, as the lesson, the
REST lab on Werkzeug's development server), and ``uploads``: a streamed HTTP PUT and a
GraphQL mutation taking the file in a variable, both on Hypercorn, and a gRPC client
stream of chunks, each counting what it received.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from concurrent import futures
from typing import Any

import psutil

from .hosting import KEPT, hypercorn

__all__ = ["spawn", "Child", "UPLOAD_CHUNK"]

UPLOAD_CHUNK = 64 * 1024


class Child:
    """A server in a child process: ``info`` (what it printed), ``rss()``, ``sample_peak()``,
    and ``start``/``call`` for the push servers (:mod:`.push`)."""

    def __init__(self, kind: str, timeout: float = 20.0) -> None:
        self.kind, self.timeout = kind, timeout
        # No preexec_fn, so the child is exec'd at once: safe after gRPC has started threads.
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__, kind], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._ps = psutil.Process(self.process.pid)
        self._info: dict[str, Any] | None = None
        self._lines: queue.Queue[bytes] = queue.Queue()
        self._lock = threading.Lock()
        threading.Thread(target=self._read, name=f"child-{kind}", daemon=True).start()

    def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        for line in stdout:
            self._lines.put(line)
        self._lines.put(b"")

    def _reply(self, what: str) -> Any:
        try:
            line = self._lines.get(timeout=self.timeout)
        except queue.Empty:
            line = b""
        if not line:
            self.stop()
            raise RuntimeError(f"the {self.kind} server did not answer {what} in "
                               f"{self.timeout:g} s")
        reply = json.loads(line)
        if isinstance(reply, dict) and "error" in reply:
            raise RuntimeError(f"the {self.kind} server failed {what}: {reply['error']}")
        return reply

    @property
    def info(self) -> dict[str, Any]:
        """What the server printed when it was ready (waits for it, bounded)."""
        if self._info is None:
            with self._lock:
                if self._info is None:
                    self._info = self._reply("its start")
        assert self._info is not None
        return self._info

    def _send(self, command: dict[str, Any]) -> Any:
        self.info  # noqa: B018  (ready first)
        with self._lock:
            stdin = self.process.stdin
            assert stdin is not None
            stdin.write(json.dumps(command).encode() + b"\n")
            stdin.flush()
            return self._reply(str(command.get("op", "start")))["value"]

    def start(self, name: str, label: str | None = None, **options: Any) -> dict[str, Any]:
        """Start the push server ``name`` (:data:`.push.SERVERS`) as ``label`` (default its
        name) with ``options``; its port and what a client needs."""
        info: dict[str, Any] = self._send({"start": name, "label": label or name,
                                           "options": options})
        return info

    def call(self, label: str, op: str, *args: Any) -> Any:
        """``publish``, ``registered`` or ``drop`` on the server started as ``label``."""
        return self._send({"label": label, "op": op, "args": list(args)})

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
        if self.process.stdin and not self.process.stdin.closed:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def spawn(kind: str, timeout: float = 20.0) -> Child:
    """Start a ``kind`` server in a child process; ``child.info`` waits until it is ready."""
    return Child(kind, timeout)


# --- the child side ----------------------------------------------------------------

async def _put_file(scope: dict, receive: Any, send: Any) -> None:
    """A streamed ``PUT /files/<name>`` as an ASGI app: each chunk is hashed as it arrives
    and dropped, so the server holds a few chunks of the file, never the whole of it.

    ASGI because Hypercorn's WSGI mode reads a request's whole body before it calls a
    WSGI app (a Flask view could not stream it); an ASGI app gets the body chunk by chunk
    (Hypercorn queues at most ``max_app_queue_size`` of them)."""
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    digest, size = hashlib.sha256(), 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        digest.update(chunk)
        size += len(chunk)
        if not message.get("more_body"):
            break
    name = scope["path"].rsplit("/", 1)[-1]
    ok = scope["method"] == "PUT" and scope["path"].startswith("/files/")
    body = json.dumps({"name": name, "size": size, "sha256": digest.hexdigest()}
                      if ok else {"error": "PUT /files/<name> only"}).encode()
    await send({"type": "http.response.start", "status": 201 if ok else 405, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _uploads() -> dict[str, Any]:
    """The upload servers, served as in production: the streamed PUT and the GraphQL
    mutation on Hypercorn (HTTP/1.1 keep-alive, :func:`.hosting.hypercorn`), the gRPC client
    stream on grpcio."""
    import grpc
    from flask import Flask, jsonify, request

    from ...harness import LOOPBACK, grpc_server

    app = Flask(__name__)

    @app.post("/graphql")
    def graphql_upload():
        # What a GraphQL server without the multipart convention must do: the whole file
        # arrives inside the JSON body, base64-encoded, and is decoded in memory.
        body = request.get_json()
        data = base64.b64decode(body["variables"]["file"])
        return jsonify({"data": {"upload": {"size": len(data),
                                            "sha256": hashlib.sha256(data).hexdigest()}}})

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
    KEPT.append(server)  # kept: a collected grpc.Server stops serving
    return {"http_port": hypercorn(_put_file, mode="asgi"), "graphql_port": hypercorn(app),
            "grpc_port": grpc_port}


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
    from ... import database
    from ..graphql_api import server as graphql_api
    from ..grpc_service import server as grpc_service
    from ..long_polling import server as long_polling
    from ..rest import server as rest

    database.ready(True)
    return {"rest": hypercorn(rest.create_app(rate_limit=None)),
            "graphql": hypercorn(graphql_api.create_app()),
            "grpc": grpc_service.start(fresh_data=False, max_workers=16).port,
            "rest-dev": rest.start(fresh_data=False, name="rest-dev", rate_limit=None).port,
            "long-polling": hypercorn(long_polling.create_app(long_polling.NotificationHub(
                long_polling.USERS, 100))),
            "long-polling-dev": long_polling.start(name="long-polling-dev").port}


def _serve_commands() -> None:
    """Answer one JSON line per command on standard input until it closes."""
    from .push import SERVERS, Served

    served: dict[str, Served] = {}
    for line in sys.stdin:
        command = json.loads(line)
        try:
            if "start" in command:
                server = SERVERS[command["start"]].start(command["options"])
                served[command["label"]] = server
                value: Any = {"port": server.port, **server.info}
            else:
                if command["op"] not in ("publish", "registered", "drop"):
                    raise ValueError(f"no such call: {command['op']!r}")
                value = getattr(served[command["label"]], command["op"])(*command["args"])
            reply: dict[str, Any] = {"value": value}
        except Exception as error:  # reported to the kernel, which raises it
            reply = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps(reply, default=str), flush=True)


def main(kind: str) -> None:
    starts = {"uploads": _uploads, "production": _production, "push": dict}
    print(json.dumps(starts[kind]()), flush=True)
    _serve_commands()
    # Held polls and open streams keep executor threads that would hold up a normal exit.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1])
