"""How a connection through the tap ended: a FIN or a reset from either side, cut by the
tap, or closed by the tap (labsupport.wire: records, tap, counts, diagram, pcap)."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator

import pytest

from labsupport.wire import WireTap, count, records
from labsupport.wire.records import (
    CLOSED_BY_TAP,
    CUT,
    FIN_CLIENT,
    FIN_SERVER,
    RST_CLIENT,
    RST_SERVER,
)

ABORTIVE = struct.pack("ii", 1, 0)


class EchoServer:
    """Echoes; ``fin`` makes it close, ``rst`` makes it reset; notes how each of its
    connections ended from its side (``"eof"`` or ``"reset"``)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.seen: list[str] = []
        self.done = threading.Semaphore(0)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(5)
        try:
            while data := connection.recv(100):
                if data == b"rst":
                    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, ABORTIVE)
                    self.seen.append("closed")
                    return
                if data == b"fin":
                    self.seen.append("closed")
                    return
                connection.sendall(data)
            self.seen.append("eof")
        except ConnectionResetError:
            self.seen.append("reset")
        except OSError as error:
            self.seen.append(type(error).__name__)
        finally:
            connection.close()
            self.done.release()

    def wait(self) -> str:
        assert self.done.acquire(timeout=5), "the server never saw the end"
        return self.seen[-1]


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.listener.close()


def client(tap: WireTap) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", tap.port), timeout=5)
    sock.sendall(b"hello")
    assert sock.recv(100) == b"hello"
    return sock


def ends(tap: WireTap) -> list[str | None]:
    tap.settle()
    return [c.end for c in tap.connections]


def test_a_client_close_is_a_fin_from_the_client(echo):
    with WireTap(echo.port) as tap:
        client(tap).close()
        assert echo.wait() == "eof"
        assert ends(tap) == [FIN_CLIENT]


def test_a_server_close_is_a_fin_from_the_server(echo):
    with WireTap(echo.port) as tap:
        sock = client(tap)
        sock.sendall(b"fin")
        assert sock.recv(100) == b""          # the client sees an orderly end
        assert echo.wait() == "closed"
        assert ends(tap) == [FIN_SERVER]
        sock.close()
        assert ends(tap) == [FIN_SERVER]      # the first side to end it is what counts


def test_a_client_reset_is_passed_on_to_the_server_as_a_reset(echo):
    with WireTap(echo.port) as tap:
        sock = client(tap)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, ABORTIVE)
        sock.close()
        assert echo.wait() == "reset"
        assert ends(tap) == [RST_CLIENT]


def test_a_server_reset_is_passed_on_to_the_client_as_a_reset(echo):
    with WireTap(echo.port) as tap:
        sock = client(tap)
        sock.sendall(b"rst")
        with pytest.raises(ConnectionResetError):
            sock.recv(100)
        sock.close()
        assert ends(tap) == [RST_SERVER]


def test_a_cut_resets_both_sides(echo):
    with WireTap(echo.port) as tap:
        sock = client(tap)
        tap.cut(tap.connections[0])
        with pytest.raises(ConnectionResetError):
            sock.recv(100)
        assert echo.wait() == "reset"
        assert ends(tap) == [CUT]
        tap.cut(1)                            # an ended connection is left alone
        assert ends(tap) == [CUT]
        sock.close()


def test_cut_all_cuts_only_the_live_connections_and_new_ones_still_open(echo):
    with WireTap(echo.port) as tap:
        client(tap).close()
        assert echo.wait() == "eof"
        live = [client(tap), client(tap)]
        assert tap.cut_all() == 2
        for sock in live:
            with pytest.raises(ConnectionResetError):
                sock.recv(100)
            sock.close()
        again = client(tap)                    # the tap still relays: a reconnect works
        again.close()
        assert ends(tap) == [FIN_CLIENT, CUT, CUT, FIN_CLIENT]


def test_a_connection_open_when_the_tap_closes_is_closed_by_the_tap(echo):
    tap = WireTap(echo.port)
    sock = client(tap)
    tap.close()
    assert sock.recv(100) == b""              # a FIN, not a reset
    assert echo.wait() == "eof"
    assert [c.end for c in tap.connections] == [CLOSED_BY_TAP]
    sock.close()


def test_counts_say_how_connections_ended_and_compare_without_it(echo):
    with WireTap(echo.port) as tap:
        client(tap).close()
        sock = client(tap)
        tap.cut(2)
        sock.close()
        counted = count(tap)
    assert counted.ends == (FIN_CLIENT, CUT)
    assert counted.endings() == "1 FIN from client, 1 cut by the tap"
    assert counted.connections == 2 and counted.bytes_up == counted.bytes_down == 10
    assert "ends" not in counted.per(2)


def test_the_diagram_shows_each_end(echo):
    with WireTap(echo.port) as tap:
        client(tap).close()
        sock = client(tap)
        tap.cut(2)
        sock.close()
        figure, plain = tap.show(ends=True), tap.show()
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert "#1 FIN from client" in texts
    assert "#2 ✕ cut by the tap" in texts
    assert not any("cut by the tap" in t.get_text() for t in plain.axes[0].texts)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_the_pcap_has_a_reset_where_the_connection_was_reset(echo, tmp_path):
    with WireTap(echo.port) as tap:
        client(tap).close()
        sock = client(tap)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, ABORTIVE)
        sock.close()
        tap.settle()
        sock = client(tap)
        tap.cut(3)
        sock.close()
    path = tap.save_pcap(tmp_path / "ends.pcap")
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "tcp.flags.reset==1", "-T", "fields",
                          "-e", "tcp.srcport"], capture_output=True, text=True, timeout=60,
                         check=True).stdout.split()
    client_port = str(40000 + 2), str(40000 + 3)
    assert sorted(out) == sorted([client_port[0], client_port[1], str(echo.port)])


def test_the_ends_are_named_in_one_place():
    assert records.ENDS == (FIN_CLIENT, FIN_SERVER, RST_CLIENT, RST_SERVER, CUT, CLOSED_BY_TAP)
    assert set(records.RESETS) == {RST_CLIENT, RST_SERVER, CUT}


def test_a_cut_on_a_shaped_link_drops_what_is_queued_and_resets_both_sides(echo):
    with WireTap(echo.port, profile="cable", seed=1) as tap:
        sock = client(tap)
        sock.sendall(b"x" * 50_000)          # queued behind the 1 Mbit/s uplink: ~0.4 s
        tap.cut(1)
        with pytest.raises(ConnectionResetError):
            while sock.recv(65536):
                pass
        assert echo.wait() == "reset"
        assert ends(tap) == [CUT]
        sock.close()
