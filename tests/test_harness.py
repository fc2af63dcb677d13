"""The background-server harness: loopback, free ports, replacement, clean stops, quiet logs."""

from __future__ import annotations

import asyncio
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
    for _ in range(20):
        server = rest.start()
        assert requests.get(f"{server.url}/api/v1/users/101", timeout=5).status_code == 200
    server.stop()
    deadline = time.monotonic() + 3  # request threads end just after their response is sent
    while (new := set(threading.enumerate()) - threads) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not new, f"threads left behind: {sorted(t.name for t in new)}"
    assert open_sockets() <= sockets
    assert harness.running() == {}


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
