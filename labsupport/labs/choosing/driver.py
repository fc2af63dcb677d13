"""The workload driver: the lab servers, a raw TCP floor, and the figures of a run.

One :class:`Run` starts every lab server once and measures the floor. REST,
GraphQL and gRPC run in the kernel (their rows are judged on the production-served
counts of :mod:`.evidence`); the push servers (the WebSocket chat, SSE, long polling
and this lab's gRPC relay) run in a child process of their own, served as in
production (:mod:`.push`), and ``run.servers`` holds an :class:`~.push.Endpoint` for
each. The floor is a raw TCP round trip of 64 bytes through the same wire tap every other
figure goes through. Every time is then reported as a ratio to that floor::

    run = driver.Run()
    with run.tap("rest") as tap:
        ...                                  # a client talks to tap.url
    run.floor.rtt                            # seconds, median
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from ...harness import LOOPBACK, ServerHandle
from ...wire import Counts, WireTap
from .. import LABS
from ..graphql_api import server as graphql_api
from ..graphql_api.server import GraphQLHandle
from ..grpc_service import server as grpc_service
from ..rest import server as rest
from .push import SERVERS as PUSH_SERVERS
from .push import Endpoint
from .serve import Child, spawn

__all__ = ["Run", "Floor", "Result", "percentile", "measure_floor", "scale_from_env"]

FLOOR_MESSAGE = 64
#: The servers a run starts, by the names the labs declare in the registry (``Lab.measured``).
SERVERS = tuple(name for lab in LABS for name in lab.measured)


def scale_from_env(default: float = 1.0) -> float:
    """``$PROTOCOL_LAB_SCALE`` as a number (1 = the notebook's sizes), else ``default``."""
    try:
        return max(float(os.environ.get("PROTOCOL_LAB_SCALE", default)), 0.1)
    except ValueError:
        return default


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, nearest rank."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Floor:
    """The raw TCP round trip through the tap: 64 bytes there and back."""

    rtt: float
    rounds: int
    bytes_per_round: int


@dataclass
class Result:
    """What one protocol did in one experiment: latencies (s), bytes, operations, notes."""

    row: str
    protocol: str
    latencies: list[float] = field(default_factory=list)
    bytes: int = 0
    operations: int = 0
    connections: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    #: The counts of a counted exchange (:func:`.experiments.counted`), where there is one.
    counts: Counts | None = field(default=None, repr=False)

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 99)

    @property
    def jitter(self) -> float:
        """Standard deviation of the latencies (s)."""
        return statistics.pstdev(self.latencies) if len(self.latencies) > 1 else 0.0

    @property
    def bytes_per_op(self) -> float:
        return self.bytes / self.operations if self.operations else 0.0

    def summary(self, floor: Floor) -> dict[str, Any]:
        """The figures as a row: times as ratios to the floor, bytes as bytes."""
        row: dict[str, Any] = {"row": self.row, "protocol": self.protocol}
        if self.latencies:
            row["p50 × floor"] = round(self.p50 / floor.rtt, 1)
            row["p99 × floor"] = round(self.p99 / floor.rtt, 1)
        if self.operations:
            row["bytes/op"] = round(self.bytes_per_op)
        row.update(self.extra)
        return row


def _echo(listener: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection, _ = listener.accept()
        with connection:
            while data := connection.recv(65536):
                connection.sendall(data)


def measure_floor(rounds: int = 200) -> Floor:
    """Median round trip of 64 bytes over raw TCP on loopback, through a wire tap."""
    listener = socket.create_server((LOOPBACK, 0))
    server = threading.Thread(target=_echo, args=(listener,), name="floor-echo", daemon=True)
    server.start()
    samples = []
    tap = WireTap(listener.getsockname()[1], record=False)
    with tap, socket.create_connection((LOOPBACK, tap.port), timeout=5) as client:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            payload = b"x" * FLOOR_MESSAGE
            for _ in range(rounds):
                started = time.perf_counter()
                client.sendall(payload)
                received = 0
                while received < FLOOR_MESSAGE:
                    received += len(client.recv(65536))
                samples.append(time.perf_counter() - started)
    listener.close()
    server.join(timeout=2)
    return Floor(statistics.median(samples), rounds, 2 * FLOOR_MESSAGE)


class Run:
    """Every lab server, started once, and the floor measured in this run.

    ``scale`` multiplies the experiments' sizes (1 = the notebook's short run).
    ``run.results`` collects every experiment's :class:`Result`.
    """

    def __init__(self, scale: float = 1.0, *, only: tuple[str, ...] | None = None,
                 prefix: str = "choosing") -> None:
        self.scale = scale
        self.results: list[Result] = []
        self._results_lock = threading.Lock()
        self.servers: dict[str, ServerHandle | Endpoint] = {}
        self.push: Child | None = None
        try:
            self._start_servers(only or SERVERS, prefix)
            self.floor = measure_floor()
        except BaseException:
            self.stop()
            raise

    def _start_servers(self, names: tuple[str, ...], prefix: str) -> None:
        starts = {
            "rest": lambda: rest.start(name=f"{prefix}-rest", rate_limit=None),
            "graphql": lambda: graphql_api.start(name=f"{prefix}-graphql", fresh_data=False),
            "grpc": lambda: grpc_service.start(name=f"{prefix}-grpc", fresh_data=False,
                                               max_workers=16),
        }
        pushed = [name for name in names if name in PUSH_SERVERS]
        if pushed:
            self.push = spawn("push")  # imports while the kernel starts its own servers
        for name in names:
            if name in starts:
                self.servers[name] = starts[name]()
        for name in pushed:
            assert self.push is not None
            self.servers[name] = Endpoint(self.push, name, self.push.start(name))

    # The servers, typed: ``run.sse.publish(...)``, ``run.chat.token_for(101)``...
    @property
    def graphql(self) -> GraphQLHandle:
        return cast(GraphQLHandle, self.servers["graphql"])

    def endpoint(self, name: str) -> Endpoint:
        """The push server ``name`` (in the child process)."""
        return cast(Endpoint, self.servers[name])

    @property
    def chat(self) -> Endpoint:
        return self.endpoint("websockets")

    @property
    def sse(self) -> Endpoint:
        return self.endpoint("sse")

    @property
    def long_polling(self) -> Endpoint:
        return self.endpoint("long-polling")

    @property
    def relay(self) -> Endpoint:
        return self.endpoint("relay")

    def start_push(self, name: str, label: str, **options: Any) -> Endpoint:
        """One more push server of :data:`.push.SERVERS` in the run's child, as ``label``."""
        if self.push is None:
            self.push = spawn("push")
        return Endpoint(self.push, label, self.push.start(name, label, **options))

    def sized(self, count: int | float, minimum: int = 1) -> int:
        """``count`` times this run's scale, at least ``minimum``."""
        return max(minimum, round(count * self.scale))

    @contextlib.contextmanager
    def tap(self, server: str, *, record: bool = True, profile: str = "loopback",
            seed: int = 0) -> Iterator[WireTap]:
        """A wire tap in front of one of the run's servers, closed afterwards; ``profile``
        names the network it shapes the traffic to (:data:`labsupport.wire.PROFILES`)."""
        tap = WireTap(self.servers[server].port, record=record, profile=profile, seed=seed)
        try:
            yield tap
        finally:
            tap.close()

    def add(self, *results: Result) -> list[Result]:
        """Keep ``results`` (replacing earlier ones of the same row and protocol)."""
        with self._results_lock:   # experiments may run side by side (:mod:`.budgets`)
            for result in results:
                self.results = [r for r in self.results
                                if (r.row, r.protocol) != (result.row, result.protocol)]
                self.results.append(result)
        return list(results)

    def result(self, row: str, protocol: str) -> Result | None:
        return next((r for r in self.results if (r.row, r.protocol) == (row, protocol)), None)

    def stop(self) -> None:
        """Stop every server this run started, and its child process."""
        for handle in self.servers.values():
            handle.stop()
        if self.push is not None:
            self.push.stop()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


