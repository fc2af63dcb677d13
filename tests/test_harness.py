"""The background-server harness: loopback, free ports, replacement, clean stops, quiet logs."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
from flask import Flask

from labsupport import harness, rest


def hello_app() -> Flask:
    app = Flask("hello")

    @app.get("/")
    def hello() -> str:
        return "hello"

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("kaboom")

    return app


def open_sockets() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/fd"))


def test_serves_on_loopback_and_a_free_port():
    with harness.serve_wsgi("hello", hello_app()) as server:
        assert server.host == "127.0.0.1"
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert requests.get(server.url, timeout=5).text == "hello"


def test_two_servers_get_two_ports():
    with (
        harness.serve_wsgi("one", hello_app()) as one,
        harness.serve_wsgi("two", hello_app()) as two,
    ):
        assert one.port != two.port


def test_starting_again_replaces_the_previous_server():
    first = harness.serve_wsgi("hello", hello_app())
    second = harness.serve_wsgi("hello", hello_app())
    try:
        assert not first.running
        assert harness.running()["hello"] is second
        with pytest.raises(requests.ConnectionError):
            requests.get(first.url, timeout=2)
        assert requests.get(second.url, timeout=5).status_code == 200
    finally:
        second.stop()
    assert "hello" not in harness.running()


def test_stop_is_idempotent_and_frees_the_port():
    server = harness.serve_wsgi("hello", hello_app())
    server.stop()
    server.stop()
    probe = socket.socket()
    try:
        probe.bind(("127.0.0.1", server.port))
    finally:
        probe.close()


def test_twenty_rest_starts_leave_no_threads_or_sockets_behind():
    with rest.start() as warm_up:  # the current database then holds its one pooled connection
        requests.get(f"{warm_up.url}/api/v1/users/101", timeout=5)
    threads, sockets = set(threading.enumerate()), open_sockets()
    others = harness.running()  # servers an earlier test in this process left for reuse
    for _ in range(20):
        server = rest.start()
        assert requests.get(f"{server.url}/api/v1/users/101", timeout=5).status_code == 200
    server.stop()
    deadline = time.monotonic() + 3  # request threads end just after their response is sent
    while (new := set(threading.enumerate()) - threads) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not new, f"threads left behind: {sorted(t.name for t in new)}"
    assert open_sockets() <= sockets
    assert harness.running() == others


def test_logs_go_to_the_handle_not_to_stderr(capfd):
    with harness.serve_wsgi("hello", hello_app()) as server:
        requests.get(server.url, timeout=5)
        requests.get(f"{server.url}/boom", timeout=5)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    logs = server.logs()
    assert "GET / HTTP/1.1 -> 200" in logs
    assert any("RuntimeError: kaboom" in line for line in logs)


def test_loopback_bypasses_proxies():
    assert "127.0.0.1" in os.environ["NO_PROXY"].split(",")
    assert "localhost" in os.environ["no_proxy"].split(",")


def test_asyncio_server_runs_on_its_own_loop():
    async def start():
        async def echo(reader, writer):
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]

        async def aclose():
            server.close()
            await server.wait_closed()

        return port, aclose

    with harness.serve_asyncio("echo", start, scheme="tcp") as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
            conn.sendall(b"ping\n")
            assert conn.makefile().readline() == "ping\n"
        assert server.loop.thread.is_alive()
    assert not server.loop.thread.is_alive()


def test_servers_stop_when_the_interpreter_exits():
    code = (
        "from labsupport import rest; s = rest.start(); "
        "import requests; print(requests.get(s.url + '/api/v1/users/101', timeout=5).status_code)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "200"


def raw_exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client tidies them up) and read the answer to its end."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, body


TOO_MANY_HEADERS = "".join(f"X-Header-{i}: {i}\r\n" for i in range(101))
REFUSED_BEFORE_THE_APP = {
    "a 70 kB URL": (f"GET /{'a' * 70_000} HTTP/1.1\r\nHost: x\r\n\r\n", 414, "URI_TOO_LONG"),
    "a 70 kB header": (f"GET / HTTP/1.1\r\nHost: x\r\nX-Big: {'b' * 70_000}\r\n\r\n", 431,
                       "REQUEST_HEADER_FIELDS_TOO_LARGE"),
    "101 headers": (f"GET / HTTP/1.1\r\nHost: x\r\n{TOO_MANY_HEADERS}\r\n", 431,
                    "REQUEST_HEADER_FIELDS_TOO_LARGE"),
    "a space in the URL": ("GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400, "BAD_REQUEST"),
}


@pytest.mark.parametrize("request_text, status, code", REFUSED_BEFORE_THE_APP.values(),
                         ids=REFUSED_BEFORE_THE_APP.keys())
def test_errors_before_the_app_runs_use_the_json_envelope(request_text, status, code):
    with harness.serve_wsgi("hello", hello_app()) as server:
        got, headers, body = raw_exchange(server.port, request_text.encode("latin-1"))
    assert got == status
    assert headers["Content-Type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == code
    assert set(error) == {"message", "code", "details", "timestamp"}
    assert any(f"code {status}" in line for line in server.logs())


def test_every_werkzeug_lab_answers_a_too_long_url_in_json():
    from labsupport import graphql_api, long_polling, sse

    for lab in (rest, graphql_api, sse, long_polling):
        with lab.start(name=f"{lab.__name__}-414") as server:
            status, headers, body = raw_exchange(
                server.port, f"GET /{'a' * 70_000} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert (status, headers["Content-Type"]) == (414, "application/json"), lab.__name__
        assert json.loads(body)["error"]["code"] == "URI_TOO_LONG"


def test_a_head_request_refused_before_the_app_has_no_body():
    with harness.serve_wsgi("hello", hello_app()) as server:
        status, headers, body = raw_exchange(
            server.port, f"HEAD / HTTP/1.1\r\nHost: x\r\n{TOO_MANY_HEADERS}\r\n".encode())
    assert status == 431 and headers["Content-Type"] == "application/json" and body == b""
