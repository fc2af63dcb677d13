"""The choosing lab: the wire tap and its parsers, the driver, the verdict table, the picker."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import requests
from websockets.sync.client import connect

from labsupport import chat, grpc_service, rest, sse
from labsupport.codegen import load
from labsupport.labs.choosing import Requirements, experiments, matrix, pick, resources
from labsupport.labs.choosing.driver import Run, percentile
from labsupport.wire import DOWN, UP, WireTap

user_service_pb2, user_service_pb2_grpc = load("user_service")


def settle(tap: WireTap, connections: int) -> None:
    """Wait (bounded) until ``connections`` connections through ``tap`` have closed."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if sum(c.closed is not None for c in tap.connections) >= connections:
            return
        time.sleep(0.01)


def test_http1_messages_add_up_to_every_byte_on_the_wire():
    with rest.start(name="choosing-test-rest", fresh_data=False) as server:
        with WireTap(server.port) as tap:
            body = requests.get(f"{tap.url}/api/v1/users/101", timeout=5).content
            requests.patch(f"{tap.url}/api/v1/users/101", json={"name": "Ada"}, timeout=5)
            settle(tap, 2)
        messages = tap.messages()
    assert [(m.direction, m.label.split(" ")[0]) for m in messages] == [
        (UP, "GET"), (DOWN, "200"), (UP, "PATCH"), (DOWN, "200")]
    assert sum(m.size for m in messages) == tap.total_bytes
    assert messages[1].size > len(body)  # the status line and headers count too
    assert len(tap.connections) == 2


def test_http2_frames_of_a_grpc_call_are_parsed_with_their_paths_and_status():
    with grpc_service.start(name="choosing-test-grpc", fresh_data=False) as server:
        with WireTap(server.port) as tap:
            channel = grpc_service.channel(tap.address)
            stub = user_service_pb2_grpc.UserServiceStub(channel)
            stub.GetUser(user_service_pb2.GetUserRequest(id=101), timeout=5)
            channel.close()
            settle(tap, 1)
        messages = tap.messages()
    labels = [m.label for m in messages]
    assert "preface" in labels
    assert any(label.endswith("/user.UserService/GetUser") for label in labels)
    assert any("grpc-status 0" in label for label in labels)
    assert {m.protocol for m in messages} == {"HTTP/2"}
    assert sum(m.size for m in messages) == tap.total_bytes


def test_websocket_frames_after_the_upgrade_are_parsed_with_wsproto():
    with chat.start(name="choosing-test-chat", fresh_data=False) as server, \
            WireTap(server.port) as tap:
        with connect(f"ws://{tap.address}/ws?token={server.token_for(101)}",
                     open_timeout=5) as ws:
            ws.recv(timeout=5)
            ws.send(json.dumps({"type": "join_chat", "room_id": "tap"}))
            ws.recv(timeout=5)
        settle(tap, 1)
        messages = tap.messages()
    assert messages[1].label == "101 Switching Protocols"
    frames = [m for m in messages if m.protocol == "WebSocket"]
    assert any(m.direction == UP and '"join_chat"' in m.label for m in frames)
    assert frames[-1].label.startswith("close")
    assert sum(m.size for m in messages) == tap.total_bytes


def test_an_event_stream_is_one_message_per_event_and_reset_starts_afresh():
    with sse.start(name="choosing-test-sse", heartbeat=15) as server, \
            WireTap(server.port) as tap:
        response = requests.get(f"{tap.url}/events?client_id=t", stream=True, timeout=5)
        lines = response.iter_lines()
        while next(lines) != b"":  # the "connected" event
            pass
        tap.reset()
        assert tap.total_bytes == 0
        server.broker.publish("news", {"n": 1})
        while next(lines) != b"":
            pass
        messages = tap.messages()
        assert [m.label for m in messages] == ["event news id 1"]
        assert messages[0].size == tap.total_bytes
        response.close()
        server.broker.drop_all()


def test_bytes_that_are_no_known_protocol_stay_raw():
    listener = socket.create_server(("127.0.0.1", 0))

    def echo() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.sendall(connection.recv(100))

    threading.Thread(target=echo, daemon=True).start()
    with WireTap(listener.getsockname()[1]) as tap:
        with socket.create_connection(("127.0.0.1", tap.port), timeout=5) as client:
            client.sendall(b"hello")
            assert client.recv(100) == b"hello"
        settle(tap, 1)
    listener.close()
    assert [(m.protocol, m.size) for m in tap.messages()] == [("TCP", 5), ("TCP", 5)]


def test_a_sequence_diagram_has_an_arrow_per_message():
    server = rest.start(name="choosing-test-rest", fresh_data=False)
    with server, WireTap(server.port) as tap:
        requests.get(f"{tap.url}/api/v1/users/101", timeout=5)
        settle(tap, 1)
    figure = tap.show()
    assert len(figure.axes[0].texts) >= 2 + 2 * 2  # names, then a label and a time per arrow
    assert "GET /api/v1/users/101" in " ".join(t.get_text() for t in figure.axes[0].texts)


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([3.0], 99) == 3.0
    with pytest.raises(ValueError):
        percentile([], 50)


@pytest.fixture(scope="module")
def small_run():
    """Every experiment at small sizes, once for the tests below."""
    with Run(scale=0.3, prefix="choosing-test") as run:
        experiments.crud(run, rounds=2)
        experiments.chat(run, clients=4, messages=3)
        experiments.live_updates(run, events=5)
        experiments.idle(run, minutes=1)
        experiments.microservices(run, clients=2, calls=5)
        experiments.public_api(run)
        experiments.gaming(run, players=3, hz=30, seconds=0.2)
        resources.upload(run, megabytes=1)
        resources.idle_connections(run, count=10)
        yield run


def test_the_verdict_table_has_every_row_and_protocol_of_the_document(small_run):
    cells = matrix.judge(small_run)
    assert [c.use_case for c in cells[::6]] == list(matrix.DOCUMENT)
    assert [c.protocol for c in cells[:6]] == matrix.PROTOCOLS
    assert [c.document for c in cells] == [v for row in matrix.DOCUMENT.values() for v in row]
    assert {c.verdict for c in cells} <= set(matrix.COLOURS)
    measured = [c for c in cells if c.verdict != "not measured"]
    assert len(measured) == 29
    assert all(c.measured != "—" and c.why for c in measured)
    assert all(c.why for c in cells if c.verdict == "not measured")


def test_every_measured_figure_is_present_and_positive(small_run):
    for result in small_run.results:
        if result.latencies:
            assert result.p50 > 0 and result.p99 >= result.p50, result
            assert result.bytes > 0, result
        delivered = result.extra.get("delivered")
        if delivered:
            got, expected = delivered.split("/")
            assert got == expected, result
    assert small_run.floor.rtt > 0
    rows = {r.row for r in small_run.results}
    assert rows == set(matrix.ROWS.values()) | {"Idle connections"}
    mobile = {r.protocol: r for r in small_run.results if r.row == "Mobile apps"}
    assert mobile["gRPC"].extra["bytes per wake-up"] == 0
    assert mobile["gRPC"].extra["counted"] == "at its default rate"
    # Idle the same way, production defaults, counted from the tap's timestamps.
    assert {p: mobile[p].extra["wake-ups/hour"] for p in ("WebSockets", "SSE")} == {
        "WebSockets": 180, "SSE": 240}
    assert all(mobile[p].extra["bytes per wake-up"] > 0 for p in ("REST", "WebSockets", "SSE"))
    upload = {r.protocol: r for r in small_run.results if r.row == "File upload"}
    assert all(r.extra["received"] for r in upload.values())
    assert upload["GraphQL"].extra["wire bytes vs file"] > 1.3
    idle = [r for r in small_run.results if r.row == "Idle connections"]
    assert all(r.extra["all open"] and r.extra["server KB per connection"] > 0 for r in idle)


def test_the_heatmap_draws_the_whole_matrix(small_run):
    figure = matrix.heatmap(matrix.judge(small_run))
    assert len(figure.axes[0].texts) == 48


def test_the_picker_follows_the_requirements():
    assert pick(Requirements(direction="bidirectional", rate_hz=30)).protocol == "WebSockets"
    assert pick(Requirements(direction="request-response", http_caching=True)).protocol == "REST"
    assert pick(Requirements(direction="request-response", browser=False)).protocol == "gRPC"
    assert pick(Requirements(direction="server-push")).protocol == "SSE"
    with pytest.raises(ValueError):
        pick(Requirements(direction="sideways"))
