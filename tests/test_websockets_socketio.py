"""The document's Socket.IO server, served like every lab: labsupport.socketio_chat."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, cast

import pytest
from flask import Flask, request
from flask_socketio import SocketIO, emit, join_room
from socketio import SimpleClient
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect

from labsupport import socketio_chat
from labsupport.harness import running

TOKEN = "let-me-in"


def make_app(**options: object) -> Flask:
    """A small Flask-SocketIO chat in the document's style: auth at connect, rooms, an ack."""
    app = Flask(__name__)
    socketio = SocketIO(app, **options)

    @socketio.on("connect")
    def on_connect(auth):
        if not (auth and auth.get("token") == TOKEN):
            return False
        emit("connected", {"message": "Welcome!"})
        return None

    @socketio.on("join_chat")
    def on_join_chat(data):
        join_room(data["room_id"])
        sid = cast(Any, request).sid  # set on Flask's request by Flask-SocketIO (untyped)
        emit("user_joined", {"sid": sid, "room_id": data["room_id"]}, room=data["room_id"])

    @socketio.on("send_message")
    def on_send_message(data):
        emit("new_message", data, room=data["room_id"])
        return {"stored": True}

    return app


@pytest.fixture
def server():
    handle = socketio_chat.serve(make_app(), name="socketio-test")
    yield handle
    handle.stop()


def test_serves_on_loopback_and_a_socketio_client_chats(server) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    client = SimpleClient()
    client.connect(server.url, auth={"token": TOKEN}, wait_timeout=3)
    try:
        assert client.receive(timeout=3) == ["connected", {"message": "Welcome!"}]
        assert client.transport == "websocket"
        client.emit("join_chat", {"room_id": "general"})
        assert client.receive(timeout=3)[0] == "user_joined"
        assert client.call("send_message", {"room_id": "general", "text": "hi"}, timeout=3) == {
            "stored": True}
        assert client.receive(timeout=3) == ["new_message", {"room_id": "general", "text": "hi"}]
    finally:
        client.disconnect()


def test_open_packet_is_engineio_over_polling(server) -> None:
    opened = socketio_chat.open_packet(server.url)
    assert opened.status_code == 200
    assert opened.text.startswith("0{")
    session = json.loads(opened.text[1:])
    assert session["upgrades"] == ["websocket"]
    assert session["pingInterval"] > 0


def test_transcript_records_the_packets(server) -> None:
    with socketio_chat.Transcript(server.url, token=TOKEN) as wire:
        assert wire.connected.startswith("40{")
        assert wire.next_event() == ["connected", {"message": "Welcome!"}]
        wire.emit("join_chat", {"room_id": "wire"})
        assert wire.next_event()[0] == "user_joined"
        assert wire.call("send_message", {"room_id": "wire", "text": "x"}) == [{"stored": True}]
    sent = [frame for direction, frame in wire.frames if direction == "→"]
    assert sent[0] == '40{"token": "let-me-in"}'
    assert sent[1].startswith('42["join_chat"')
    assert sent[2].startswith('421["send_message"')
    received = [frame for direction, frame in wire.frames if direction == "←"]
    assert received[0].startswith("0{") and received[-1] == '431[{"stored":true}]'


def test_a_bad_token_gets_connect_error(server) -> None:
    with socketio_chat.Transcript(server.url, token="wrong") as refused:
        assert refused.connected.startswith("44")
    with pytest.raises(Exception, match="failed to connect"):
        SimpleClient().connect(server.url, auth={"token": "wrong"}, wait_timeout=2)


def test_the_server_ends_the_tcp_connection_after_the_closing_handshake(server) -> None:
    """RFC 6455 7.1.1: after the closing handshake the server closes TCP first. Werkzeug kept
    the HTTP/1.1 connection open for a next request, so a client waited its whole close
    timeout (10 s) for it; closing too early would lose the server's close frame (1006)."""
    url = socketio_chat.engineio_url(server.url, "websocket")
    for _ in range(20):
        with connect(url, open_timeout=2, close_timeout=10) as plain:
            assert str(plain.recv(2)).startswith("0{")
            started = time.monotonic()
        assert plain.close_code == 1000, "the server's close frame was lost"
        assert time.monotonic() - started < 5, "close() waited for a TCP close that never came"


def test_a_plain_websocket_client_cannot_talk_to_it(server) -> None:
    url = socketio_chat.engineio_url(server.url, "websocket")
    started = time.monotonic()
    with connect(url, open_timeout=2, close_timeout=1, compression=None) as plain:
        assert str(plain.recv(2)).startswith("0{")
        plain.send(json.dumps({"type": "join_chat", "room_id": "general"}))
        # Engine.IO's handler fails on a non-packet: silence, or bytes that are not a frame.
        with pytest.raises((TimeoutError, ConnectionClosedError)):
            plain.recv(3)
    assert time.monotonic() - started < 8  # 3 s recv + 1 s close; the default close waits 10 s


def test_origin_check_is_in_the_engineio_server_and_logs_stay_on_the_handle(capfd) -> None:
    with socketio_chat.serve(make_app(cors_allowed_origins="*"), name="socketio-test") as lax:
        assert socketio_chat.open_packet(lax.url, origin="http://evil.example").status_code == 200
    with socketio_chat.serve(make_app(), name="socketio-test") as strict:
        foreign = socketio_chat.open_packet(strict.url, origin="http://evil.example")
        assert foreign.status_code == 400
        assert socketio_chat.open_packet(strict.url, origin=strict.url).status_code == 200
        assert any("not an accepted origin" in line for line in strict.logs(50))
    captured = capfd.readouterr()
    assert "accepted origin" not in captured.out + captured.err


def test_stop_disconnects_clients_and_a_rerun_replaces_the_server() -> None:
    first = socketio_chat.serve(make_app(), name="socketio-test")
    client = SimpleClient()
    client.connect(first.url, auth={"token": TOKEN}, wait_timeout=3)
    client.receive(timeout=3)
    second = socketio_chat.serve(make_app(), name="socketio-test")
    try:
        assert not first.running
        assert running()["socketio-test"] is second
        deadline = time.monotonic() + 5
        while client.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not client.connected, "a stopped server left its client connected"
    finally:
        second.stop()
        client.disconnect()


def test_twenty_starts_leave_no_server_threads() -> None:
    def server_threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name == "socketio-test-server"}

    before = server_threads()
    for _ in range(20):
        with socketio_chat.serve(make_app(), name="socketio-test") as handle:
            assert socketio_chat.open_packet(handle.url).status_code == 200
    assert server_threads() == before
