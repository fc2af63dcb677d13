"""03's gRPC/protobuf against REST/JSON on the wire, served as in production: the counts
the notebook prints are the same run after run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from labsupport import codegen, grpc_service
from labsupport.labs.choosing import serve
from labsupport.wire import TIMING_FRAMES, WireTap, count

pb, pb_grpc = codegen.load("user_service")
CALLS = 10


@pytest.fixture(scope="module")
def production() -> Iterator[serve.Child]:
    with serve.spawn("production") as child:
        yield child


def rest_reads(address: str) -> None:
    with requests.Session() as http:
        for _ in range(CALLS):
            http.get(f"http://{address}/api/v1/users/123", timeout=5).raise_for_status()


def grpc_reads(address: str) -> None:
    channel = grpc_service.channel(address, options=[("grpc.http2.bdp_probe", 0)])
    stub = pb_grpc.UserServiceStub(channel)
    for _ in range(CALLS):
        stub.GetUser.future(pb.GetUserRequest(id=123)).result(5)
    channel.close()


def counted(production: serve.Child, server: str, read) -> tuple:
    with WireTap(production.info[server]) as tap:
        read(tap.address)
    c = count(tap, without=TIMING_FRAMES)   # gRPC's flow control follows the timing
    return c, sorted(m.size for m in tap.messages() if not m.label.startswith(TIMING_FRAMES))


@pytest.mark.parametrize(("server", "read"), [("rest", rest_reads), ("grpc", grpc_reads)])
def test_the_counts_are_the_same_run_after_run(production, server, read):
    (first, sizes), (second, again) = counted(production, server, read), \
        counted(production, server, read)
    assert first == second and sizes == again
    assert (first.connections, first.requests, first.round_trips) == (1, CALLS, CALLS + 1)


def test_grpc_sends_fewer_bytes_and_more_messages_than_rest(production):
    rest, _ = counted(production, "rest", rest_reads)
    grpc, sizes = counted(production, "grpc", grpc_reads)
    assert grpc.bytes < rest.bytes
    assert grpc.messages_up + grpc.messages_down > rest.messages_up + rest.messages_down
    assert rest.messages_up == rest.messages_down == CALLS


def test_the_timing_frames_are_left_out_bytes_and_all(production):
    with WireTap(production.info["grpc"]) as tap:
        grpc_reads(tap.address)
    full, steady = count(tap), count(tap, without=TIMING_FRAMES)
    timing = [m for m in tap.messages() if m.label.startswith(TIMING_FRAMES)]
    assert timing, "gRPC's flow control sends WINDOW_UPDATE frames on ten reads"
    assert full.bytes - steady.bytes == sum(m.size for m in timing)
    assert (full.messages_up + full.messages_down) - (steady.messages_up + steady.messages_down) \
        == len(timing)
    assert (full.connections, full.requests) == (steady.connections, steady.requests)
