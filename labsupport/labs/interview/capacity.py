"""Capacity for a million open connections, from the memory one connection measurably costs.

:func:`measured_websocket` opens a few hundred idle WebSockets to the chat lab's
server in a child process (the choosing lab's :func:`~..choosing.resources.idle_memory`)
and reads its resident memory before and after: the **user-space** bytes per
connection. The **kernel's** share is not in that figure: each TCP socket also holds
receive and send buffers, at least ``tcp_rmem`` and ``tcp_wmem``'s minimums under
memory pressure (:func:`kernel_limits` reads them, with the limits on file descriptors
and on local ports, from ``/proc``). :func:`servers_for` turns both into servers.
"""

from __future__ import annotations

import functools
import math
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..choosing import resources

__all__ = ["KernelLimits", "kernel_limits", "sockstat", "measured_websocket", "servers_for",
           "source_ips_needed"]

PROC = Path("/proc")
#: Linux's defaults, used where ``/proc`` cannot be read (not Linux).
DEFAULT_RMEM, DEFAULT_WMEM = (4096, 131072, 6291456), (4096, 16384, 4194304)
DEFAULT_PORTS, DEFAULT_NR_OPEN = (32768, 60999), 1048576


@dataclass(frozen=True)
class KernelLimits:
    """What this machine's kernel says about sockets, files and ports."""

    tcp_rmem: tuple[int, int, int]          # receive buffer: min, default, max (bytes)
    tcp_wmem: tuple[int, int, int]          # send buffer: min, default, max (bytes)
    ip_local_port_range: tuple[int, int]    # the ephemeral ports a client connects from
    file_max: int | None                    # open files, the whole system (fs.file-max)
    nr_open: int                            # the most any process may raise ulimit -n to
    ulimit_n: int                           # this process's open-file limit (soft)
    from_proc: bool                         # read from /proc, else Linux's defaults

    @property
    def kernel_bytes(self) -> int:
        """A socket's minimum receive plus send buffer: the kernel's share to plan for."""
        return self.tcp_rmem[0] + self.tcp_wmem[0]

    @property
    def ephemeral_ports(self) -> int:
        low, high = self.ip_local_port_range
        return high - low + 1


def _numbers(name: str, count: int) -> tuple[int, ...] | None:
    """The ``count`` whole numbers in ``/proc/sys/<name>``, or None where it cannot be read."""
    try:
        numbers = tuple(int(n) for n in (PROC / "sys" / name).read_text().split())
    except (OSError, ValueError):
        return None
    return numbers if len(numbers) == count else None


def kernel_limits() -> KernelLimits:
    """The socket buffer sizes, the port range and the file limits, read from ``/proc``."""
    rmem, wmem = _numbers("net/ipv4/tcp_rmem", 3), _numbers("net/ipv4/tcp_wmem", 3)
    ports, file_max = _numbers("net/ipv4/ip_local_port_range", 2), _numbers("fs/file-max", 1)
    nr_open = _numbers("fs/nr_open", 1)
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    r0, r1, r2 = rmem or DEFAULT_RMEM
    w0, w1, w2 = wmem or DEFAULT_WMEM
    low, high = ports or DEFAULT_PORTS
    return KernelLimits(
        tcp_rmem=(r0, r1, r2), tcp_wmem=(w0, w1, w2), ip_local_port_range=(low, high),
        file_max=file_max[0] if file_max else None,
        nr_open=nr_open[0] if nr_open else DEFAULT_NR_OPEN, ulimit_n=soft,
        from_proc=None not in (rmem, wmem, ports, nr_open))


def sockstat() -> dict[str, int]:
    """``/proc/net/sockstat``'s TCP line: sockets in use and the pages their buffers hold
    (the whole machine's, both ends of a loopback connection included); empty if unreadable."""
    try:
        lines = (PROC / "net" / "sockstat").read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        if line.startswith("TCP:"):
            words = line.split()[1:]
            return {words[i]: int(words[i + 1]) for i in range(0, len(words) - 1, 2)}
    return {}


@functools.lru_cache(maxsize=1)
def measured_websocket(count: int = 300) -> resources.IdleMemory:
    """``count`` idle WebSockets to the chat lab's server in a child process, measured once
    per process (the notebook and its check see the same figure); ``during`` holds
    :func:`sockstat` while they were all open, beside it the reading before."""
    before = sockstat()
    measured = resources.idle_memory("websockets", count,
                                     during=lambda: {"before": before, "open": sockstat()})
    return measured


def servers_for(connections: int, user_bytes: float, kernel_bytes: float, server_memory: int,
                headroom: float, max_fds: int) -> int:
    """Servers to hold ``connections`` open: each connection costs ``user_bytes`` in the
    process and ``kernel_bytes`` in the kernel, a server uses ``1 - headroom`` of its
    ``server_memory`` and holds at most ``max_fds`` connections (one descriptor each)."""
    usable = server_memory * (1 - headroom)
    per_server = min(math.floor(usable / (user_bytes + kernel_bytes)), max_fds)
    return math.ceil(connections / per_server)


def source_ips_needed(connections: int, ephemeral_ports: int) -> int:
    """Client IP addresses a load tester needs for ``connections`` to one server ip:port:
    a TCP connection is the 4-tuple (source ip, source port, server ip, server port)."""
    return math.ceil(connections / ephemeral_ports)


def plan(connections: int, measured: resources.IdleMemory, limits: KernelLimits, *,
         server_memory: int, headroom: float, max_fds: int) -> dict[str, Any]:
    """The arithmetic for ``connections``, step by step, as numbers."""
    user, kernel = measured.per_connection, limits.kernel_bytes
    return {
        "user_bytes": user, "kernel_bytes": kernel,
        "total_bytes": connections * (user + kernel),
        "per_server_by_memory": math.floor(server_memory * (1 - headroom) / (user + kernel)),
        "servers": servers_for(connections, user, kernel, server_memory, headroom, max_fds),
        "servers_without_kernel": servers_for(connections, user, 0, server_memory, headroom,
                                              max_fds),
        "source_ips": source_ips_needed(connections, limits.ephemeral_ports),
    }
