"""Learners sharing one machine: a lab server answers only the user who started it.

The test process (root in CI) starts the lab servers, so it is their owner; a Unix user
created for the test is the other learner. Each client is a small script run twice: as
the owner, and as the other user (the script imports what it needs, then drops to that
user's uid and gid before opening a connection, so every socket it makes is theirs: the
interpreter itself may live where that user cannot read). The other user's reads and
writes are refused in each protocol's own terms and change nothing; the owner's work.
One test also runs a server as a created (non-root) user, with root as the outsider.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from labsupport import owner
from labsupport.labs.queues import broker as queues_broker

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads Linux socket tables, creates Unix users")

CLIENT = textwrap.dedent('''
    import asyncio, base64, json, os, socket, sys
    from http.client import HTTPConnection
    import grpc, nats
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from labsupport.grpc_service import user_service_pb2 as pb, user_service_pb2_grpc as pb_grpc

    spec = json.loads(sys.argv[1])
    if spec["uid"] is not None:  # become the other user before any connection
        os.setgroups([])
        os.setgid(spec["gid"])
        os.setuid(spec["uid"])

    def http(method, host, port, path, body=None, stream=False, headers=()):
        conn = HTTPConnection(host, port, timeout=5)
        payload = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=payload, headers={
            "Content-Type": "application/json", **dict(headers)})
        reply = conn.getresponse()
        text = "" if stream and reply.status == 200 else reply.read().decode(errors="replace")
        conn.close()
        try:
            text = json.loads(text)
        except ValueError:
            pass
        return {"status": reply.status, "body": text}

    def ws(host, port, path, protocol=None):
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if protocol:
            lines.append(f"Sec-WebSocket-Protocol: {protocol}")
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(("\\r\\n".join(lines) + "\\r\\n\\r\\n").encode())
            data = b""
            while b"\\r\\n\\r\\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            head, _, body = data.partition(b"\\r\\n\\r\\n")
            status = int(head.split()[1])
            if status != 101:
                while chunk := sock.recv(4096):
                    body += chunk
        try:
            body = json.loads(body)
        except ValueError:
            body = body.decode(errors="replace")
        return {"status": status, "body": body}

    def rpc(target, method):
        with grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)]) as ch:
            try:
                if method == "health":
                    health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
                elif method == "get":
                    pb_grpc.UserServiceStub(ch).GetUser(pb.GetUserRequest(id=101), timeout=5)
                else:
                    pb_grpc.UserServiceStub(ch).DeleteUser(pb.DeleteUserRequest(id=102),
                                                           timeout=5)
                return {"code": "OK"}
            except grpc.RpcError as error:
                return {"code": error.code().name, "details": error.details()}

    async def nats_publish(url):
        try:
            nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False,
                                    max_reconnect_attempts=0)
        except Exception as error:
            return {"error": str(error)}
        await nc.publish("isolation", b"hello")
        await nc.flush(timeout=2)
        await nc.close()
        return {"ok": True}

    def read(path):
        try:
            with open(path, "rb") as file:
                return {"bytes": file.read().decode(errors="replace")}
        except OSError as error:
            return {"error": type(error).__name__}

    results = []
    for op, *args in spec["ops"]:
        if op == "nats":
            results.append(asyncio.run(nats_publish(*args)))
        else:
            results.append({"http": http, "ws": ws, "rpc": rpc, "read": read}[op](*args))
    print(json.dumps(results))
''')


def _can_create_users() -> str | None:
    if os.geteuid() != 0:
        return "creating Unix users needs root (CI runs as root)"
    if not shutil.which("useradd") or not shutil.which("userdel"):
        return "useradd/userdel are not installed"
    if owner.mode().startswith("off"):
        return f"the owner check is {owner.mode()}"
    return None


@pytest.fixture(scope="module")
def make_user() -> Iterator[Any]:
    """Creates Unix users for the test (``(uid, gid)``), deleted afterwards."""
    reason = _can_create_users()
    if reason:
        pytest.skip(reason)
    created = []

    def make() -> tuple[int, int]:
        name = f"plab{uuid.uuid4().hex[:8]}"
        done = subprocess.run(["useradd", "-M", "-N", "-s", "/usr/sbin/nologin", name],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"useradd failed: {done.stderr.strip()}")
        created.append(name)
        ids = subprocess.run(["id", "-u", name], capture_output=True, text=True).stdout
        groups = subprocess.run(["id", "-g", name], capture_output=True, text=True).stdout
        return int(ids), int(groups)

    yield make
    for name in created:
        subprocess.run(["userdel", name], capture_output=True)


@pytest.fixture(scope="module")
def other(make_user: Any) -> tuple[int, int]:
    return make_user()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("isolation") / "client.py"
    path.write_text(CLIENT)
    path.parent.chmod(0o755)
    path.chmod(0o644)
    return path


def run(client: Path, user: tuple[int, int] | None, *ops: tuple[Any, ...]) -> list[dict]:
    """Run ``ops`` in the client script, as ``user`` (None: as this process's user)."""
    spec = {"uid": user[0] if user else None, "gid": user[1] if user else None,
            "ops": [list(op) for op in ops]}
    done = subprocess.run([sys.executable, str(client), json.dumps(spec)], capture_output=True,
                          text=True, timeout=60, cwd="/")
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def refused(result: dict) -> bool:
    """An HTTP 403 carrying the lab's error envelope and the owner check's message."""
    error = result["body"].get("error", {}) if isinstance(result["body"], dict) else {}
    return result["status"] == 403 and error.get("code") == "FORBIDDEN" \
        and error.get("message") == owner.REFUSAL


def test_own_connections_are_the_owners() -> None:
    """The socket tables name this process's uid for its own loopback connection."""
    with owner._loopback_pair() as (_, accepted):
        peer, local = accepted.getpeername()[:2], accepted.getsockname()[:2]
        assert owner.peer_uid(peer, local) == os.getuid()
        assert owner.admits(accepted)
        assert owner._proc_uid(peer, local) == os.getuid()
    assert owner.peer_uid(("127.0.0.1", 1), ("127.0.0.1", 2)) is None  # no such socket


def test_with_the_check_off_every_connection_is_served(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not Linux, or no readable socket table: nothing is refused (one user assumed)."""
    monkeypatch.setattr(owner, "_lookup", lambda: (None, "off: test"))
    assert owner.admits(object()) and owner.admits_peer(("127.0.0.1", 1), ("127.0.0.1", 2))
    assert owner.mode() == "off: test"


def test_rest(client: Path, other: tuple[int, int]) -> None:
    from labsupport.labs.rest import server as rest

    with rest.start(name="isolation-rest") as server:
        host, port = server.host, server.port
        before = requests.get(f"{server.url}/api/v1/users", timeout=5).json()
        ops = [("http", "GET", host, port, "/api/v1/users/101"),
               ("http", "POST", host, port, "/api/v1/users",
                {"name": "Mallory", "email": "mallory@example.com"}),
               ("http", "DELETE", host, port, "/api/v1/users/102")]
        theirs = run(client, other, *ops)
        assert all(refused(result) for result in theirs), theirs
        assert requests.get(f"{server.url}/api/v1/users", timeout=5).json() == before
        assert [r["status"] for r in run(client, None, *ops)] == [200, 201, 204]


def test_graphql_over_http_and_websocket(client: Path, other: tuple[int, int]) -> None:
    from labsupport.labs.graphql_api import server as graphql_api

    with graphql_api.start(name="isolation-graphql") as server:
        ops = [("http", "POST", server.host, server.port, "/graphql",
                {"query": '{ user(id: "101") { name } }'}),
               ("http", "POST", server.host, server.port, "/graphql",
                {"query": 'mutation { deleteUser(id: "102") }'}),
               ("ws", server.ws.host, server.ws.port, "/graphql", "graphql-transport-ws")]
        theirs = run(client, other, *ops)
        assert all(refused(result) for result in theirs), theirs
        mine = run(client, None, *ops)
        assert [r["status"] for r in mine] == [200, 200, 101], mine
        assert mine[0]["body"]["data"]["user"]["name"]
        assert mine[1]["body"]["data"]["deleteUser"] is True  # 102 was still there


def test_grpc(client: Path, other: tuple[int, int]) -> None:
    from labsupport.labs.grpc_service import server as grpc_service

    with grpc_service.start(name="isolation-grpc") as server:
        ops = [("rpc", server.url, "health"), ("rpc", server.url, "get"),
               ("rpc", server.url, "delete")]
        theirs = run(client, other, *ops)
        assert [r["code"] for r in theirs] == ["PERMISSION_DENIED"] * 3, theirs
        assert theirs[0]["details"] == owner.REFUSAL
        assert [r["code"] for r in run(client, None, *ops)] == ["OK"] * 3  # 102 was still there


def test_websocket_chat_token_is_useless_to_another_user(
        client: Path, other: tuple[int, int]) -> None:
    """The chat's tokens are in the pages' URLs (stored outputs); another uid holding one
    still gets its handshake, and the history, refused."""
    from labsupport.labs.websocket_chat import server as chat

    with chat.start(name="isolation-chat") as server:
        token = server.token_for(101)
        ops = [("ws", server.host, server.port, f"/ws?token={token}"),
               ("http", "GET", server.host, server.port,
                f"/api/chat/general/messages?token={token}")]
        theirs = run(client, other, *ops)
        assert all(refused(result) for result in theirs), theirs
        assert not any("GET /" in line for line in server.logs(100))  # never reached the lab
        assert [r["status"] for r in run(client, None, *ops)] == [101, 200]
        assert any("GET /ws" in line for line in server.logs(100))


def test_sse_and_long_polling(client: Path, other: tuple[int, int]) -> None:
    from labsupport.labs.long_polling import server as long_polling
    from labsupport.labs.sse import server as sse

    with sse.start(name="isolation-sse") as events, \
            long_polling.start(name="isolation-long-polling") as polls:
        ops = [("http", "GET", events.host, events.port, "/events?client_id=x", None, True),
               ("http", "GET", polls.host, polls.port, "/api/notifications/ada/poll?timeout=0"),
               ("http", "POST", polls.host, polls.port, "/api/notifications/send",
                {"user_id": "ada", "type": "spoof", "data": {}})]
        theirs = run(client, other, *ops)
        assert all(refused(result) for result in theirs), theirs
        waiting = requests.get(f"{polls.url}/api/notifications/ada/poll?timeout=0", timeout=5)
        assert "spoof" not in waiting.text
        assert [r["status"] for r in run(client, None, *ops)] == [200, 200, 201]


def test_socketio(client: Path, other: tuple[int, int]) -> None:
    from flask import Flask
    from flask_socketio import SocketIO

    from labsupport.labs.websocket_chat import socketio_server

    app = Flask(__name__)
    SocketIO(app, async_mode="threading")
    with socketio_server.serve(app, name="isolation-socketio") as server:
        ops = [("http", "GET", server.host, server.port, "/socket.io/?EIO=4&transport=polling"),
               ("ws", server.host, server.port, "/socket.io/?EIO=4&transport=websocket")]
        theirs = run(client, other, *ops)
        assert all(refused(result) for result in theirs), theirs
        assert [r["status"] for r in run(client, None, *ops)] == [200, 101]


def test_broker_needs_this_launchs_credentials(client: Path, other: tuple[int, int]) -> None:
    """NATS cannot ask whose socket a client is: the broker asks for a password made for
    this launch, which only this kernel holds: not on any command line, not in a file
    another user can read, not in the handle's repr."""
    with queues_broker.start(name="isolation-queues") as broker:
        config = Path(broker.store) / "node-1.conf"
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        password = broker.url.split("@")[0].rsplit(":", 1)[1]
        ops = [("nats", broker.address), ("read", str(config)),
               ("read", f"/proc/{broker.nodes[0].pid}/cmdline"),
               ("read", f"/proc/{broker.nodes[0].watchdog.pid}/cmdline")]
        theirs = run(client, other, *ops)
        assert "Authorization Violation" in theirs[0]["error"], theirs
        assert theirs[1] == {"error": "PermissionError"}
        assert password not in theirs[2]["bytes"] and password not in theirs[3]["bytes"]
        assert password not in repr(broker)
        assert run(client, None, ("nats", broker.url)) == [{"ok": True}]


def test_cluster_routes_ask_for_the_credentials_too(client: Path) -> None:
    """Routes authenticate with this launch's password (the cluster elects a leader), and
    every node refuses a client without it."""
    with queues_broker.start(name="isolation-cluster", cluster=3) as cluster:
        assert all(url.startswith("nats://lab:") for url in cluster.servers)
        bare = [("nats", node.address) for node in cluster.nodes]
        assert all("Authorization Violation" in r["error"] for r in run(client, None, *bare))


SERVE_AS = textwrap.dedent('''
    import json, os, sys, time
    from flask import Flask
    from labsupport import harness
    uid, gid = int(sys.argv[1]), int(sys.argv[2])
    os.setgroups([]); os.setgid(gid); os.setuid(uid)
    app = Flask(__name__)
    app.get("/")(lambda: {"ok": True})
    handle = harness.serve_wsgi("isolation-owner", app)
    print(handle.port, flush=True)
    sys.stdin.read()  # until the test closes our stdin
''')


def test_a_non_root_owner_refuses_root_and_others(
        client: Path, make_user: Any, tmp_path: Path) -> None:
    """Root is not let in to a learner's server (the check compares uids, nothing more)."""
    alice, bob = make_user(), make_user()
    script = tmp_path / "serve_as.py"
    script.write_text(SERVE_AS)
    with subprocess.Popen([sys.executable, str(script), str(alice[0]), str(alice[1])],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                          cwd="/") as server:
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            op = ("http", "GET", "127.0.0.1", port, "/")
            assert run(client, alice, op)[0] == {"status": 200, "body": {"ok": True}}
            assert refused(run(client, bob, op)[0])
            assert refused(run(client, None, op)[0])  # root
        finally:
            with contextlib.suppress(OSError):
                assert server.stdin is not None
                server.stdin.close()
            server.wait(10)



def test_preflight_says_which_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    from labsupport import preflight

    monkeypatch.setattr(owner, "_in_container", lambda: False)
    monkeypatch.setattr(owner, "_other_users", lambda: {1001, 1002})
    shared = preflight.check_machine()
    assert shared.ok is not False and "shared with 2 other user(s)" in shared.detail
    monkeypatch.setattr(owner, "_lookup", lambda: (None, "off: test"))
    unsafe = preflight.check_machine()
    assert unsafe.ok is False and "DockerSpawner" in unsafe.fix
    monkeypatch.setattr(owner, "_other_users", set)
    assert preflight.check_machine().ok is True  # a laptop: nothing new to fix
    monkeypatch.setattr(owner, "_in_container", lambda: True)
    assert "container of its own" in preflight.check_machine().detail


def test_a_wire_tap_does_not_relay_another_users_connection(
        client: Path, other: tuple[int, int]) -> None:
    """A tap (08, 09) forwards as this kernel's user: another user's connection to it is
    closed unread, else it would reach the lab server as the owner."""
    from labsupport.labs.choosing.tap import WireTap
    from labsupport.labs.rest import server as rest

    with rest.start(name="isolation-tap") as server, WireTap(server.port) as tap:
        op = ("http", "GET", "127.0.0.1", tap.port, "/api/v1/users/101")
        assert run(client, None, op)[0]["status"] == 200
        tap.reset()
        done = subprocess.run([sys.executable, str(client), json.dumps(
            {"uid": other[0], "gid": other[1], "ops": [list(op)]})], capture_output=True,
            text=True, timeout=60, cwd="/")
        assert done.returncode != 0 and ("RemoteDisconnected" in done.stderr
                                         or "ConnectionResetError" in done.stderr), done.stderr
        assert tap.connections == []
