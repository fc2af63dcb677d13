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
    import asyncio, base64, json, os, socket, ssl, sys, time
    from http.client import HTTPConnection, HTTPSConnection
    import grpc, nats
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from labsupport.labs.grpc_service.server import (user_service_pb2 as pb,
                                                     user_service_pb2_grpc as pb_grpc)

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

    def https(host, port, path):
        conn = HTTPSConnection(host, port, timeout=5, context=ssl._create_unverified_context())
        conn.request("GET", path)
        reply = conn.getresponse()
        text = reply.read().decode(errors="replace")
        conn.close()
        try:
            text = json.loads(text)
        except ValueError:
            pass
        return {"status": reply.status, "body": text}

    def quic(host, port):
        """A QUIC Initial from a socket of this user's: does the server answer at all?"""
        quic = QuicConnection(configuration=QuicConfiguration(
            is_client=True, alpn_protocols=["h3"], verify_mode=ssl.CERT_NONE))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(2)
            quic.connect((host, port), now=time.time())
            for data, address in quic.datagrams_to_send(now=time.time()):
                sock.sendto(data, address)
            try:
                return {"answered": len(sock.recvfrom(65536)[0])}
            except TimeoutError:
                return {"answered": 0}

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
            results.append({"http": http, "https": https, "quic": quic, "ws": ws, "rpc": rpc,
                            "read": read}[op](*args))
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


def test_http_versions_over_tcp_tls_and_quic(client: Path, other: tuple[int, int]) -> None:
    """10's hypercorn server: HTTP/1.1 in cleartext and over TLS answer another user 403; a
    QUIC Initial from another user's socket gets no answer at all (dropped unread), and the
    lab's UDP relay drops it too, while the owner's gets the server's handshake."""
    from labsupport.labs.http_versions import start
    from labsupport.labs.http_versions.loss import UDPRelay

    with start(name="isolation-http-versions") as server, UDPRelay(server.port) as relay:
        ops = [("http", "GET", "127.0.0.1", server.cleartext_port, "/"),
               ("https", "127.0.0.1", server.port, "/"),
               ("quic", "127.0.0.1", server.port), ("quic", "127.0.0.1", relay.port)]
        theirs = run(client, other, *ops)
        assert refused(theirs[0]) and refused(theirs[1]), theirs
        assert theirs[2] == theirs[3] == {"answered": 0}, theirs
        mine = run(client, None, *ops)
        assert [r.get("status") for r in mine[:2]] == [200, 200], mine
        assert mine[2]["answered"] > 0 and mine[3]["answered"] > 0, mine


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
        watchdog = broker.nodes[0].watchdog
        assert watchdog is not None
        ops = [("nats", broker.address), ("read", str(config)),
               ("read", f"/proc/{broker.nodes[0].pid}/cmdline"),
               ("read", f"/proc/{watchdog.pid}/cmdline")]
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
    app = Flask(__name__)
    app.get("/")(lambda: {"ok": True})
    # once before becoming the user: what it imports lazily may lie where that user cannot
    # read (Werkzeug reads its version through importlib.metadata on Python 3.13)
    harness.serve_wsgi("isolation-warm-up", app).stop()
    os.setgroups([]); os.setgid(gid); os.setuid(uid)
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
    assert "no other user" in preflight.check_machine().detail
    monkeypatch.setattr(owner, "_in_container", lambda: True)
    assert "container of its own" in preflight.check_machine().detail


def test_a_wire_tap_does_not_relay_another_users_connection(
        client: Path, other: tuple[int, int]) -> None:
    """A tap (08, 09) forwards as this kernel's user: another user's connection to it is
    closed unread, else it would reach the lab server as the owner."""
    from labsupport.labs.rest import server as rest
    from labsupport.wire import WireTap

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


# --- through a real JupyterHub with LocalProcessSpawner ------------------------------------

HUB_PYTHON = os.environ.get("PROTOCOL_LAB_HUB_PYTHON", sys.executable)
HUB_CONFIG = textwrap.dedent('''
    c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
    c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
    c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
    c.ConfigurableHTTPProxy.command = [{chp!r}]
    c.JupyterHub.spawner_class = "localprocess"
    c.Spawner.cmd = [{python!r}, "-m", "jupyterhub.singleuser"]
    c.Spawner.start_timeout = c.Spawner.http_timeout = 90
    c.JupyterHub.authenticator_class = "dummy"
    c.Authenticator.allowed_users = {users!r}
    c.JupyterHub.db_url = "sqlite:///{dir}/hub.sqlite"
    c.JupyterHub.cookie_secret_file = "{dir}/cookie_secret"
    c.JupyterHub.pid_file = "{dir}/hub.pid"
    c.JupyterHub.services = [{{"name": "tester", "api_token": {token!r}}}]
    c.JupyterHub.load_roles = [{{"name": "tester", "services": ["tester"], "scopes": [
        "admin:users", "admin:servers", "tokens", "access:servers"]}}]
''')


def _free_port() -> int:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as sock:
        return int(sock.getsockname()[1])


def _hub_missing() -> str | None:
    reason = _can_create_users()
    if reason:
        return reason
    if not (shutil.which("configurable-http-proxy") or os.environ.get("PROTOCOL_LAB_CHP")):
        return "configurable-http-proxy (npm) is not installed"
    probe = subprocess.run([HUB_PYTHON, "-c", "import jupyterhub, jupyter_server_proxy"],
                           capture_output=True)
    if probe.returncode != 0:
        return (f"jupyterhub and jupyter-server-proxy are not installed for {HUB_PYTHON} "
                "(set PROTOCOL_LAB_HUB_PYTHON to a Python with them and the labs)")
    python = Path(HUB_PYTHON)
    while python != python.parent:  # learners must be able to run it
        if not python.stat().st_mode & stat.S_IXOTH:
            return f"{HUB_PYTHON} is not runnable by other users ({python} is not o+x)"
        python = python.parent
    return None


class Hub:
    """A JupyterHub on 127.0.0.1 with ``LocalProcessSpawner``: each learner a Unix user."""

    def __init__(self, directory: Path, users: list[str]) -> None:
        self.port, self.token = _free_port(), uuid.uuid4().hex
        self.url = f"http://127.0.0.1:{self.port}"
        config = directory / "jupyterhub_config.py"
        config.write_text(HUB_CONFIG.format(
            port=self.port, hub_port=_free_port(), api_port=_free_port(), dir=directory,
            chp=os.environ.get("PROTOCOL_LAB_CHP") or shutil.which("configurable-http-proxy"),
            python=HUB_PYTHON, users=set(users), token=self.token))
        self.process = subprocess.Popen(
            [HUB_PYTHON, "-m", "jupyterhub", "-f", str(config)], cwd=directory,
            stdout=(directory / "hub.log").open("w"), stderr=subprocess.STDOUT)
        self.log = directory / "hub.log"
        self.wait(lambda: self.api("GET", "/hub/api/").ok, "the hub to start")

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, self.url + path, timeout=30,
                                headers={"Authorization": f"token {self.token}"}, **kwargs)

    def wait(self, ready: Any, what: str, timeout: float = 120) -> None:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if ready():
                    return
            time.sleep(0.5)
        raise AssertionError(f"waited {timeout} s for {what}: {self.log.read_text()[-3000:]}")

    def start_server(self, user: str) -> str:
        """Start ``user``'s single-user server; returns a token of theirs."""
        self.api("POST", f"/hub/api/users/{user}/server")
        self.wait(lambda: self.api("GET", f"/hub/api/users/{user}").json()["servers"]
                  .get("", {}).get("ready"), f"{user}'s server")
        token: str = self.api("POST", f"/hub/api/users/{user}/tokens",
                              json={"expires_in": 600}).json()["token"]
        return token

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def _execute(hub: Hub, user: str, token: str, kernel: str, code: str) -> str:
    """Run ``code`` in ``user``'s kernel ``kernel`` through the hub; its stdout."""
    from websockets.sync.client import connect

    session = uuid.uuid4().hex
    header = {"msg_id": uuid.uuid4().hex, "username": user, "session": session,
              "msg_type": "execute_request", "version": "5.3"}
    message: dict[str, Any] = {"header": header,
               "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
               "content": {"code": code, "silent": False, "store_history": False,
                           "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}}
    address = f"ws://127.0.0.1:{hub.port}/user/{user}/api/kernels/{kernel}/channels"
    out = []
    with connect(f"{address}?session_id={session}",
                 additional_headers={"Authorization": f"token {token}"}) as ws:
        ws.send(json.dumps(message))
        while True:
            reply = json.loads(ws.recv(60))
            if reply["parent_header"].get("msg_id") != message["header"]["msg_id"]:
                continue
            if reply["msg_type"] == "stream":
                out.append(reply["content"]["text"])
            elif reply["msg_type"] == "error":
                raise AssertionError("\n".join(reply["content"]["traceback"]))
            elif reply["msg_type"] == "status" and reply["content"]["execution_state"] == "idle":
                return "".join(out)  # after every output of the request


@pytest.fixture(scope="module")
def hub(make_user: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    reason = _hub_missing()
    if reason:
        pytest.skip(reason)
    names = []
    for _ in range(2):
        uid, _gid = make_user()
        import pwd

        name = pwd.getpwuid(uid).pw_name
        home = Path("/home") / name
        home.mkdir(mode=0o700, exist_ok=True)
        os.chown(home, uid, _gid)
        names.append((name, uid))
    directory = tmp_path_factory.mktemp("hub")
    directory.chmod(0o700)
    hub = Hub(directory, [name for name, _ in names])
    try:
        yield hub, names
    finally:
        hub.close()
        for _name, uid in names:  # anything of theirs the hub left running
            for entry in os.scandir("/proc"):
                if entry.name.isdigit():
                    with contextlib.suppress(OSError):
                        if os.stat(entry.path).st_uid == uid:
                            os.kill(int(entry.name), 9)
        for name, _ in names:
            shutil.rmtree(Path("/home") / name, ignore_errors=True)


def test_through_a_jupyterhub_with_local_process_spawner(hub: Any) -> None:
    """Alice's kernel starts lab servers; her kernel and her proxy (her pages) reach them,
    Bob's proxy gets the refusal, in HTTP and WebSocket alike."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    hub, ((alice, _), (bob, _)) = hub
    tokens = {user: hub.start_server(user) for user in (alice, bob)}
    kernel = requests.post(f"{hub.url}/user/{alice}/api/kernels", timeout=60, headers={
        "Authorization": f"token {tokens[alice]}"}, json={"name": "python3"}).json()["id"]
    started = _execute(hub, alice, tokens[alice], kernel, textwrap.dedent('''
        import json, requests
        from labsupport import pages
        from labsupport.labs.rest import server as rest
        from labsupport.labs.websocket_chat import server as chat
        api, room = rest.start(), chat.start()
        own = requests.get(f"{api.url}/api/v1/users/101", timeout=5).status_code
        print(json.dumps({"rest": api.port, "chat": room.port, "token": room.token_for(101),
                          "own": own, "page": pages.url(api, "/api/v1/users/101")}))
    '''))
    ports = json.loads(started)
    assert ports["own"] == 200  # the kernel's own client
    assert ports["page"] == f"/user/{alice}/proxy/{ports['rest']}/api/v1/users/101"

    def through(user: str, path: str, method: str = "GET") -> requests.Response:
        return requests.request(method, f"{hub.url}/user/{user}/proxy/{path}", timeout=30,
                                headers={"Authorization": f"token {tokens[user]}"})

    assert through(alice, f"{ports['rest']}/api/v1/users/101").status_code == 200  # her pages
    for method, path in (("GET", "/api/v1/users/101"), ("DELETE", "/api/v1/users/102")):
        reply = through(bob, f"{ports['rest']}{path}", method)
        assert reply.status_code == 403 and reply.json()["error"]["message"] == owner.REFUSAL
    assert through(alice, f"{ports['rest']}/api/v1/users/102").status_code == 200  # still there

    chat_path = f"/user/{{}}/proxy/{ports['chat']}/ws?token={ports['token']}"
    with connect(f"ws://127.0.0.1:{hub.port}{chat_path.format(alice)}", additional_headers={
            "Authorization": f"token {tokens[alice]}"}, open_timeout=30) as ws:
        assert json.loads(ws.recv(10))["type"]
    # Bob's proxy takes his handshake and opens its own to Alice's server, which answers
    # 403: his proxy then closes his socket, and not one message of the chat reaches him.
    with connect(f"ws://127.0.0.1:{hub.port}{chat_path.format(bob)}", additional_headers={
            "Authorization": f"token {tokens[bob]}"}, open_timeout=30) as ws, \
            pytest.raises(ConnectionClosed) as closed:
        ws.recv(10)
    print("bob's WebSocket closed:", closed.value.rcvd)
    logs = _execute(hub, alice, tokens[alice], kernel, "print(room.logs(100))")
    assert logs.count("GET /ws") == 1, logs  # Alice's one handshake; Bob's never reached it
    machine = _execute(hub, alice, tokens[alice], kernel,
                       "from labsupport import preflight; print(preflight.check_machine())")
    assert machine.startswith("ok   machine: one machine shared with") and "check on" in machine
