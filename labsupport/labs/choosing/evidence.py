"""Counts before clocks, served as in production: request/response protocols compared fairly.

The servers run in a child process of their own (:func:`.serve.spawn` ``"production"``):
REST and GraphQL on Hypercorn (HTTP/1.1 with keep-alive, and HTTP/2 on the same port),
the gRPC lab's server, and the REST lab on Werkzeug's development server, kept as the
lesson of a connection per request. Each protocol is an :class:`Adapter`: how a client
connects, does one CRUD cycle (create, read, update, delete one user) and closes.

For each adapter, :func:`measure`:

1. **counts** a batch of CRUD cycles through a recording tap on loopback: connections,
   requests, round trips, bytes and messages each way (:func:`labsupport.wire.count`,
   HTTP/2's flow-control and PING frames left out), identical run after run;
2. **times** the same batch through a tap shaped to a named network profile, repeated,
   beside the model ``round trips × RTT + bytes ÷ bandwidth`` from the counts;
3. **times** it on loopback, unshaped: the CPU cost of *this Python implementation*,
   shown apart because it says nothing about the protocol.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import requests

from ...codegen import load
from ...wire import TIMING_FRAMES, Counts, NetworkProfile, WireTap, count, profile
from ..grpc_service import server as grpc_service
from .serve import Child

__all__ = ["Adapter", "ADAPTERS", "Measured", "measure", "measure_all", "bootstrap_median",
           "table"]

pb, pb_grpc = load("user_service")


def _email() -> str:
    return f"evidence-{uuid.uuid4().hex[:8]}@example.com"


@dataclass(frozen=True)
class Adapter:
    """One protocol as the experiments need it: which server, and a client that opens on
    an address, runs one CRUD cycle per call, and closes."""

    name: str
    server: str                                   # a key of the production child's info
    open: Callable[[str], Any]                    # address (host:port) -> client
    crud: Callable[[Any], None]                   # one create, read, update, delete
    close: Callable[[Any], None]
    lesson: bool = False                          # measured, never part of a verdict
    matrix: str | None = None                     # the matrix column it stands for


def _rest_crud(http: Any, base: str) -> None:
    created = http.post(f"{base}/api/v1/users", json={"name": "Ev", "email": _email()})
    created.raise_for_status()
    user = f"{base}/api/v1/users/{created.json()['id']}"
    for response in (http.get(user), http.patch(user, json={"name": "Ev 2"}), http.delete(user)):
        response.raise_for_status()


class _Http:
    """An HTTP client bound to one base URL."""

    def __init__(self, address: str, client: Any) -> None:
        self.base, self.client = f"http://{address}", client


class _Session(requests.Session):
    """A requests session whose every request is bounded (10 s)."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return super().request(*args, **kwargs)


def _http1(address: str) -> _Http:
    return _Http(address, _Session())


def _graphql_crud(client: _Http) -> None:
    def call(query: str, **variables: object) -> dict:
        body = client.client.post(f"{client.base}/graphql",
                                  json={"query": query, "variables": variables}).json()
        if "errors" in body:
            raise RuntimeError(body["errors"])
        return body["data"]

    uid = call("mutation($e: String!) { createUser(input: {name: \"Ev\", email: $e}) "
               "{ id name email } }", e=_email())["createUser"]["id"]
    call("query($id: ID!) { user(id: $id) { id name email } }", id=uid)
    call("mutation($id: ID!) { updateUser(id: $id, input: {name: \"Ev 2\"}) { id name } }",
         id=uid)
    call("mutation($id: ID!) { deleteUser(id: $id) }", id=uid)


def _grpc_open(address: str) -> Any:
    channel = grpc_service.channel(address, options=[("grpc.http2.bdp_probe", 0)])
    return channel, pb_grpc.UserServiceStub(channel)


def _grpc_crud(client: Any) -> None:
    # Bounded by waiting on each call's future rather than by a deadline: a deadline
    # travels as a grpc-timeout header whose HPACK size changes with the time left.
    _, stub = client
    uid = stub.CreateUser.future(pb.CreateUserRequest(name="Ev", email=_email())
                                 ).result(10).user.id
    stub.GetUser.future(pb.GetUserRequest(id=uid)).result(10)
    stub.UpdateUser.future(pb.UpdateUserRequest(id=uid, name="Ev 2")).result(10)
    stub.DeleteUser.future(pb.DeleteUserRequest(id=uid)).result(10)


ADAPTERS: list[Adapter] = [
    Adapter("REST · HTTP/1.1 keep-alive (Hypercorn)", "rest", _http1,
            lambda c: _rest_crud(c.client, c.base), lambda c: c.client.close(),
            matrix="REST"),
    Adapter("REST · HTTP/2 (Hypercorn)", "rest",
            lambda a: _Http(a, httpx.Client(http1=False, http2=True, timeout=10)),
            lambda c: _rest_crud(c.client, c.base), lambda c: c.client.close()),
    Adapter("GraphQL · HTTP/1.1 keep-alive (Hypercorn)", "graphql", _http1, _graphql_crud,
            lambda c: c.client.close(), matrix="GraphQL"),
    Adapter("gRPC · HTTP/2 (grpcio)", "grpc", _grpc_open, _grpc_crud, lambda c: c[0].close(),
            matrix="gRPC"),
    Adapter("REST · dev server, a connection per request (the lesson)", "rest-dev", _http1,
            lambda c: _rest_crud(c.client, c.base), lambda c: c.client.close(), lesson=True),
]


def bootstrap_median(samples: list[float], resamples: int = 2000, seed: int = 0
                     ) -> tuple[float, float]:
    """A 95 % percentile-bootstrap interval of the median of ``samples`` (numpy)."""
    data = np.asarray(samples, dtype=float)
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(data, size=(resamples, len(data)), replace=True), axis=1)
    low, high = np.percentile(medians, [2.5, 97.5])
    return float(low), float(high)


@dataclass
class Measured:
    """One adapter's figures: counts of one batch, and times (s) per batch."""

    adapter: Adapter
    cycles: int
    counts: Counts
    profile: NetworkProfile
    shaped: list[float] = field(default_factory=list)
    loopback: list[float] = field(default_factory=list)

    @property
    def model(self) -> float:
        """``round trips × RTT + bytes ÷ bandwidth`` for the batch (s)."""
        c = self.counts
        return self.profile.model_time(c.round_trips, c.bytes_up, c.bytes_down)

    def row(self) -> dict[str, Any]:
        """Counts first, then clocks, per CRUD cycle."""
        c, n = self.counts, self.cycles
        low, high = bootstrap_median(self.shaped)
        return {
            "protocol": self.adapter.name,
            "connections / cycle": round(c.connections / n, 1),
            "round trips / cycle": round(c.round_trips / n, 1),
            "bytes up / cycle": round(c.bytes_up / n), "bytes down / cycle":
                round(c.bytes_down / n), "messages / cycle": round(
                    (c.messages_up + c.messages_down) / n, 1),
            f"model ms on {self.profile.name}": round(1000 * self.model / n),
            f"measured ms on {self.profile.name} (median)":
                round(1000 * float(np.median(self.shaped)) / n),
            "95 % interval": f"{1000 * low / n:.0f}–{1000 * high / n:.0f}",
            "loopback ms (this Python implementation)":
                round(1000 * float(np.median(self.loopback)) / n, 1),
        }


def _batch(adapter: Adapter, address: str, cycles: int) -> float:
    client = adapter.open(address)
    try:
        started = time.perf_counter()
        for _ in range(cycles):
            adapter.crud(client)
        return time.perf_counter() - started
    finally:
        adapter.close(client)


def measure(adapter: Adapter, child: Child, *, cycles: int = 1, repeats: int = 5,
            link: str | NetworkProfile = "cable") -> Measured:
    """Count one batch of ``cycles`` CRUD cycles, then time it ``repeats`` times on
    ``link`` and on loopback. A fresh client (so a fresh connection) each batch."""
    port = child.info[adapter.server]
    with WireTap(port) as tap:
        _batch(adapter, tap.address, cycles)
        # HTTP/2's WINDOW_UPDATE and PING frames follow timing (one more now and then, even
        # with gRPC's BDP probe off): left out, so the counts repeat exactly.
        counts = count(tap, without=TIMING_FRAMES)
    result = Measured(adapter, cycles, counts, profile(link))
    for seed in range(repeats):
        with WireTap(port, profile=link, seed=seed, record=False) as shaped:
            result.shaped.append(_batch(adapter, shaped.address, cycles))
        with WireTap(port, record=False) as plain:
            result.loopback.append(_batch(adapter, plain.address, cycles))
    return result


def measure_all(child: Child, **options: Any) -> list[Measured]:
    """:func:`measure` for every adapter in :data:`ADAPTERS`."""
    return [measure(adapter, child, **options) for adapter in ADAPTERS]


class Table(list):
    """Rows shown as an HTML table in Jupyter, text elsewhere."""

    def __str__(self) -> str:
        return "\n".join("  ".join(f"{k}: {v}" for k, v in row.items()) for row in self)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        import html
        head = "".join(f"<th>{html.escape(k)}</th>" for k in self[0]) if self else ""
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values())
                       + "</tr>" for r in self)
        return f"<table><tr>{head}</tr>{body}</table>"


def table(measured: list[Measured], clocks: bool = True) -> Table:
    """The rows; ``clocks=False`` keeps only the counts (identical run after run)."""
    rows = [m.row() for m in measured]
    if not clocks:
        rows = [{k: v for k, v in r.items() if "ms" not in k and "interval" not in k}
                for r in rows]
    return Table(rows)
