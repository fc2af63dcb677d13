"""Whose connection is this? Lab servers answer only the user who started them.

On a hub where learners share one machine (The Littlest JupyterHub, JupyterHub's
``LocalProcessSpawner``), every learner's kernel, and so every lab server, listens on the
same ``127.0.0.1``: another learner's process could reach it directly, or through their
own ``jupyter-server-proxy`` (``/user/bob/proxy/<alice's port>/``). A loopback TCP
connection carries no credentials, but its two ends live in one kernel: the client's
socket is in the kernel's socket table, with the uid that created it. So, once per
connection, at accept time, the server asks the kernel whose socket the other end is, and
serves it only if that uid is its own (the uid of the kernel process that started the lab
server). The learner's own kernel, terminal and Jupyter server (its proxy, hence the
learner's browser pages) run as the learner: nothing changes for them, nor on a laptop.

How the uid is read, on Linux: the ``sock_diag`` netlink interface (what ``ss`` uses),
asking for the one socket whose local address is the peer's and whose remote address is
ours: an exact lookup of the 4-tuple in the kernel's hash table, so its cost does not grow
with the number of sockets on a busy shared machine, and nothing is parsed from text
(measured: 6-30 µs a lookup, against 2-20 ms to scan ``/proc/net/tcp`` holding 1,000-4,500
sockets).
Where netlink is unavailable, ``/proc/net/tcp`` and ``/proc/net/tcp6`` (the same table as
text, scanned in full) answer the same question. A socket in TIME_WAIT (its process has
closed it) reports uid 0 and is not taken as anyone's. When neither way works here (not
Linux, or a sandbox hiding the tables), a self-test at first use finds out and the check
is off: :func:`mode` says which, and the pre-flight prints it.

``SO_PEERCRED`` would be simpler but exists only for Unix sockets; browsers, ``requests``,
gRPC and NATS clients all speak TCP to ``127.0.0.1``, so the labs stay on TCP.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["REFUSAL", "admits", "admits_datagram", "admits_peer", "mode", "owner", "peer_uid",
           "setup"]

REFUSAL = ("This lab server answers only the user who started it "
           "(learners sharing one machine cannot reach each other's lab servers)")

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 1
NLMSG_ERROR = 2
TCP_TIME_WAIT = 6
NO_COOKIE = 0xFFFFFFFF
V4_MAPPED = bytes(10) + b"\xff\xff"
Address = tuple[str, int]


def owner() -> int:
    """The uid lab servers answer: the uid of this (the kernel's) process."""
    return os.getuid()


def _packed(host: str, family: int) -> bytes:
    """``host`` as the 16 bytes of an ``inet_diag_sockid`` address (IPv4 zero-padded; an
    IPv4 address in an IPv6 socket is v4-mapped, ``::ffff:a.b.c.d``)."""
    if ":" in host:
        return socket.inet_pton(socket.AF_INET6, host)
    if family == socket.AF_INET6:
        return V4_MAPPED + socket.inet_aton(host)
    return socket.inet_aton(host) + bytes(12)


def _sockid(local: Address, remote: Address, family: int) -> bytes:
    """Ports and addresses of an ``inet_diag_sockid`` (interface and cookie left out)."""
    return (struct.pack("!HH", local[1], remote[1]) + _packed(local[0], family)
            + _packed(remote[0], family))


class _Netlink:
    """One ``sock_diag`` socket for the process, shared under a lock: opening one costs
    about ten times a lookup. A child process (after ``fork``) opens its own."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sock: socket.socket | None = None
        self.pid = 0
        self.seq = 0

    def ask(self, request: bytes) -> bytes:
        """Send one ``SOCK_DIAG_BY_FAMILY`` request; its reply."""
        with self.lock:
            if self.sock is None or self.pid != os.getpid():
                self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM,
                                          NETLINK_SOCK_DIAG)
                self.sock.settimeout(1)
                self.pid = os.getpid()
            self.seq = (self.seq + 1) & 0xFFFFFFFF
            header = struct.pack("=IHHII", 16 + len(request), SOCK_DIAG_BY_FAMILY,
                                 NLM_F_REQUEST, self.seq, 0)
            try:
                self.sock.sendto(header + request, (0, 0))
                while True:  # skip a late reply to an earlier request that timed out
                    reply = self.sock.recv(8192)
                    if struct.unpack_from("=I", reply, 8)[0] == self.seq:
                        return reply
            except OSError:
                self.sock.close()
                self.sock = None
                raise


_netlink = _Netlink()


def _netlink_uid(local: Address, remote: Address) -> int | None:
    """The uid of the TCP socket bound to ``local`` and connected to ``remote`` (netlink)."""
    for family in (socket.AF_INET, socket.AF_INET6):  # a dual-stack client: v4-mapped, in v6
        sockid = _sockid(local, remote, family) + struct.pack("=III", 0, NO_COOKIE, NO_COOKIE)
        reply = _netlink.ask(
            struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + sockid)
        kind = struct.unpack_from("=H", reply, 4)[0]
        if kind == NLMSG_ERROR:
            error = struct.unpack_from("=i", reply, 16)[0]
            if error == -2:  # ENOENT: no such socket in this family
                continue
            raise OSError(-error, os.strerror(-error))
        found_family, state = reply[16], reply[17]
        expected = _sockid(local, remote, found_family)  # a v6 socket answers v4-mapped
        if reply[20:20 + len(expected)] != expected:
            return None  # the kernel answered with another socket (a listener): not the peer
        uid: int = struct.unpack_from("=I", reply, 16 + 64)[0]
        return None if state == TCP_TIME_WAIT else uid
    return None


def _proc_hex(host: str, port: int, family: int) -> str:
    """``host:port`` as ``/proc/net/tcp{,6}`` prints it (native-endian 32-bit words)."""
    packed = _packed(host, family)[:4 if family == socket.AF_INET else 16]
    words = struct.unpack(f"={len(packed) // 4}I", packed)
    return "".join(f"{word:08X}" for word in words) + f":{port:04X}"


def _proc_uid(local: Address, remote: Address) -> int | None:
    """The same question answered from ``/proc/net/tcp`` and ``/proc/net/tcp6``."""
    for family, path in ((socket.AF_INET, "/proc/net/tcp"), (socket.AF_INET6, "/proc/net/tcp6")):
        wanted = (_proc_hex(*local, family), _proc_hex(*remote, family))
        try:
            with open(path) as table:
                next(table)
                for line in table:
                    fields = line.split()
                    if (fields[1], fields[2]) == wanted:
                        return None if int(fields[3], 16) == TCP_TIME_WAIT else int(fields[7])
        except FileNotFoundError:
            continue
    return None


def _udp_uid(peer: Address) -> int | None:
    """The uid of the UDP socket bound to ``peer`` (``/proc/net/udp`` and ``udp6``): a QUIC
    client's socket is bound but seldom connected, so only its own address is known."""
    for family, path in ((socket.AF_INET, "/proc/net/udp"), (socket.AF_INET6, "/proc/net/udp6")):
        wanted = _proc_hex(*peer, family)
        try:
            with open(path) as table:
                next(table)
                for line in table:
                    fields = line.split()
                    if fields[1] == wanted:
                        return int(fields[7])
        except FileNotFoundError:
            continue
    return None


#: How long a datagram peer, once looked up, is taken as known (a lookup reads a whole table).
DATAGRAM_PEER_SECONDS = 5.0
_datagram_peers: dict[Address, tuple[float, bool]] = {}


def admits_datagram(peer: Address) -> bool:
    """Whether a datagram from ``peer`` (a UDP address on this machine) may be served: its
    socket belongs to our user. Looked up again after :data:`DATAGRAM_PEER_SECONDS`, so a
    port another user binds after ours closed is not taken for ours for long."""
    if _lookup()[0] is None:
        return True
    now = time.monotonic()
    known = _datagram_peers.get(peer)
    if known is None or now - known[0] > DATAGRAM_PEER_SECONDS:
        known = (now, _udp_uid(peer[:2]) == owner())
        _datagram_peers[peer] = known
    return known[1]


Lookup = Callable[[Address, Address], "int | None"]


@contextlib.contextmanager
def _loopback_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    with socket.create_server(("127.0.0.1", 0)) as listener, \
            socket.create_connection(listener.getsockname(), timeout=2) as client:
        accepted, _ = listener.accept()
        with accepted:
            yield client, accepted


@functools.cache
def _lookup() -> tuple[Lookup | None, str]:
    """The lookup that works here (a self-test on a connection of our own), and its name."""
    if not sys.platform.startswith("linux"):
        return None, f"off: {sys.platform} has no socket table to read; one user assumed"
    failures = []
    for name, lookup in (("netlink sock_diag", _netlink_uid), ("/proc/net/tcp", _proc_uid)):
        try:
            with _loopback_pair() as (_, accepted):
                found = lookup(accepted.getpeername()[:2], accepted.getsockname()[:2])
        except OSError as error:
            failures.append(f"{name}: {error}")
            continue
        if found == owner():
            return lookup, name
        failures.append(f"{name}: found uid {found}")
    return None, "off: cannot read socket owners here (" + "; ".join(failures) + ")"


def mode() -> str:
    """How lab servers here tell their owner's connections from others' (for the pre-flight)."""
    lookup, name = _lookup()
    if lookup is None:
        return name
    return f"on: only uid {owner()} is served (peer's uid read with {name})"


def peer_uid(peer: Address, local: Address) -> int | None:
    """The uid owning the client socket at ``peer`` connected to our ``local``; None if
    unknown (gone, closing, or not readable here)."""
    lookup, _ = _lookup()
    if lookup is None:
        return None
    try:
        return lookup(peer, local)
    except OSError:
        return None


def admits_peer(peer: Address, local: Address) -> bool:
    """Whether the connection from ``peer`` to our ``local`` address may be served."""
    if _lookup()[0] is None:
        return True
    return peer_uid(peer, local) == owner()


def admits(sock: Any) -> bool:
    """Whether the accepted TCP connection ``sock`` belongs to this process's user."""
    if _lookup()[0] is None:
        return True
    try:
        peer, local = sock.getpeername()[:2], sock.getsockname()[:2]
    except OSError:  # already disconnected
        return False
    return admits_peer(peer, local)


def _in_container() -> bool:
    return (os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv")
            or "KUBERNETES_SERVICE_HOST" in os.environ)


def _other_users() -> set[int]:
    """Uids of people (1000 and up, not ``nobody``) other than ours running processes here."""
    uids = set()
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                uids.add(os.stat(entry.path).st_uid)
    return {uid for uid in uids if 1000 <= uid < 65534 and uid != owner()}


def setup() -> tuple[str, bool]:
    """Which set-up this kernel runs on, and whether its lab servers are safe from other
    learners there: ``(sentence, safe)`` (for the pre-flight)."""
    checking = mode()
    others = _other_users()  # first: a shared hub may itself run in a container
    if others:
        return (f"one machine shared with {len(others)} other user(s) (The Littlest "
                f"JupyterHub, LocalProcessSpawner): owner check {checking}",
                not checking.startswith("off"))
    if _in_container():
        return (f"a container of its own (DockerSpawner, KubeSpawner, Binder): no other "
                f"learner shares its 127.0.0.1; owner check {checking}", True)
    return f"one machine, no other user's processes seen: owner check {checking}", True
