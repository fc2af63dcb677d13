"""Measure the gRPC lab on loopback, as ratios to a raw TCP echo round trip on this machine.

    python -m tools.bench_grpc [--rounds N]

Prints: the TCP echo round trip; a unary call's round trip (a health check, no database, and
GetUser, one SQLite read) as a multiple of it; a streamed message's cost (StreamUsers over
2,000 users, total time / messages) as a fraction of it; the size of one user as protobuf and
as JSON; server start-up and 20 restarts.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import threading
import time

from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from labsupport import grpc_service
from labsupport.labs.grpc_service.server import user_service_pb2 as pb
from labsupport.labs.grpc_service.server import user_service_pb2_grpc as pb_grpc

PAYLOAD = b"x" * 64
STREAMED_USERS = 2000


def tcp_echo_round_trip(rounds: int) -> float:
    """Median seconds for 64 bytes to go to a TCP echo server on loopback and back."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def echo() -> None:
        connection, _ = listener.accept()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with connection:
            while data := connection.recv(4096):
                connection.sendall(data)

    threading.Thread(target=echo, daemon=True).start()
    samples = []
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(rounds):
            started = time.perf_counter()
            client.sendall(PAYLOAD)
            received = 0
            while received < len(PAYLOAD):
                received += len(client.recv(4096))
            samples.append(time.perf_counter() - started)
    listener.close()
    return statistics.median(samples)


def median_call(call, rounds: int) -> float:
    for _ in range(50):
        call()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    rounds = parser.parse_args().rounds

    tcp = tcp_echo_round_trip(rounds)
    print(f"TCP echo round trip (64 B, loopback):   {tcp * 1e6:8.1f} µs   = 1.0")

    started = time.perf_counter()
    server = grpc_service.start(name="grpc-bench")
    start_up = time.perf_counter() - started
    channel = grpc_service.channel(server.url)
    stub = pb_grpc.UserServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    check = median_call(lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=5), rounds)
    print(f"unary health Check round trip:          {check * 1e6:8.1f} µs   = {check / tcp:.1f}x")
    get = median_call(lambda: stub.GetUser(pb.GetUserRequest(id=101), timeout=5), rounds)
    print(f"unary GetUser round trip (SQLite read): {get * 1e6:8.1f} µs   = {get / tcp:.1f}x")

    for batch in range(STREAMED_USERS // 1000):
        stub.BulkCreateUsers((pb.CreateUserRequest(name=f"Bench {i}",
                                                   email=f"bench{batch}.{i}@example.com")
                              for i in range(1000)), timeout=30)
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        count = sum(1 for _ in stub.StreamUsers(pb.StreamUsersRequest(), timeout=30))
        timings.append((time.perf_counter() - started) / count)
    per_message = statistics.median(timings)
    print(f"streamed message (StreamUsers, {count} users): {per_message * 1e6:5.1f} µs each "
          f"= {per_message / tcp:.2f}x")

    user = stub.GetUser(pb.GetUserRequest(id=101), timeout=5).user
    wire = len(user.SerializeToString())
    as_json = len(json.dumps(json_format.MessageToDict(user, preserving_proto_field_name=True),
                             separators=(",", ":")))
    print(f"user 101: protobuf {wire} B, JSON {as_json} B = {as_json / wire:.2f}x")

    started = time.perf_counter()
    for _ in range(20):
        server = grpc_service.start(name="grpc-bench", fresh_data=False)
    restarts = time.perf_counter() - started
    print(f"server start-up (fresh data): {start_up * 1e3:.0f} ms; "
          f"20 restarts: {restarts * 1e3:.0f} ms ({restarts / 20 * 1e3:.1f} ms each)")
    channel.close()
    server.stop()


if __name__ == "__main__":
    main()
