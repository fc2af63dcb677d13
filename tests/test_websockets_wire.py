"""04's comparisons counted on the wire: the counts the notebook prints are the same run
after run (a reconnecting client cut by the tap; Socket.IO's start against a plain
WebSocket's)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from socketio import SimpleClient
from test_websockets_socketio import TOKEN, make_app
from websockets.client import backoff
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect, reconnect

from labsupport import chat, socketio_chat
from labsupport.wire import WireTap, count
from labsupport.wire.records import CUT, FIN_SERVER

TIMEOUT = 5


@pytest.fixture(scope="module")
def server() -> Iterator[chat.ChatHandle]:
    with chat.start(name="websockets-wire", fresh_data=False) as handle:
        yield handle


def receive(ws) -> dict:
    return json.loads(ws.recv(TIMEOUT))


def reconnect_once(server) -> tuple[WireTap, list[str]]:
    """04's cell: Grace joins, the tap cuts her connection, she reconnects and joins again."""
    closed = []
    with WireTap(server.port) as tap:
        url = f"ws://{tap.address}/ws?token={server.token_for(103)}"
        delays = lambda: backoff(initial_delay=0.1, min_delay=0.1, max_delay=1)  # noqa: E731
        for attempt, ws in enumerate(reconnect(url, reconnect_delays=delays, open_timeout=2)):
            receive(ws)
            ws.send(json.dumps({"type": "join_chat", "room_id": "reconnect-test"}))
            assert receive(ws)["type"] == "user_joined"
            if attempt == 1:
                ws.close()
                break
            tap.cut_all()
            with pytest.raises(ConnectionClosedError) as error:
                receive(ws)
            closed.append(repr(error.value.rcvd))
    return tap, closed


def test_a_cut_connection_is_reconnected_and_the_counts_repeat(server):
    (first, closed), (second, _) = reconnect_once(server), reconnect_once(server)
    assert closed == ["None"]                    # no close frame: the link dropped
    one, two = count(first), count(second)
    assert one == two
    assert (one.connections, one.round_trips, one.messages_up, one.messages_down) == (2, 4, 5, 7)
    assert one.ends == two.ends == (CUT, FIN_SERVER)


def socketio_session(url: str) -> None:
    client = SimpleClient()
    client.connect(url, auth={"token": TOKEN}, wait_timeout=3)
    client.receive(timeout=3)
    client.emit("join_chat", {"room_id": "costs"})
    client.receive(timeout=3)
    client.disconnect()


def plain_session(server, address: str) -> None:
    with connect(f"ws://{address}/ws?token={server.token_for(104)}", open_timeout=2) as ws:
        receive(ws)
        ws.send(json.dumps({"type": "join_chat", "room_id": "costs"}))
        receive(ws)


def test_socketio_starts_with_a_connection_and_a_request_more_every_time(server):
    sio = socketio_chat.serve(make_app(), name="socketio-wire")
    try:
        seen = []
        for _ in range(2):
            with WireTap(sio.port) as tap:
                socketio_session(tap.url)
            socketio = count(tap)
            with WireTap(server.port) as tap:
                plain_session(server, tap.address)
            plain = count(tap)
            seen.append([(c.connections, c.requests, c.round_trips) for c in (socketio, plain)])
        assert seen[0] == seen[1] == [(2, 2, 4), (1, 1, 2)]
    finally:
        sio.stop()
