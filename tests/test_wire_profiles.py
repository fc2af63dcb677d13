"""Named network profiles and the tap's shaping: round trips cost RTTs, bytes cost bandwidth."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from labsupport.wire import DOWN, PROFILES, LossPattern, NetworkProfile, WireTap, profile
from labsupport.wire.shaping import SEGMENT, rto

MB = 1_000_000


@contextlib.contextmanager
def echo_server(reply: int | None = None) -> Iterator[int]:
    """A TCP server on loopback: echoes what it gets, or answers ``reply`` bytes to each read."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve(connection: socket.socket) -> None:
        with connection:
            while data := connection.recv(65536):
                connection.sendall(data if reply is None else b"y" * reply)

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = listener.accept()
                threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def exchange(port: int, payload: bytes, expect: int) -> tuple[float, float, float]:
    """Connect, send, read ``expect`` bytes: (connect started, first byte, last byte) times."""
    started = time.perf_counter()
    first = 0.0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.sendall(payload)
        received = 0
        while received < expect:
            data = client.recv(65536)
            assert data, "connection closed early"
            first = first or time.perf_counter()
            received += len(data)
    return started, first, time.perf_counter()


def test_every_profile_names_its_source_and_the_named_ones_are_there():
    assert {"loopback", "lan", "cable", "4g", "3g", "satellite"} <= set(PROFILES)
    for p in PROFILES.values():
        assert p.source, p.name
    assert profile("cable").rtt == pytest.approx(0.028)
    assert profile("3g").down == 1.6e6 and profile("3g").up == 768e3
    with pytest.raises(ValueError, match="choose from"):
        profile("5g-ultra")


def test_the_model_is_round_trips_times_rtt_plus_bytes_over_bandwidth():
    cable = profile("cable")
    # 2 round trips, 1,000 B up at 1 Mbit/s (8 ms), 100,000 B down at 5 Mbit/s (160 ms)
    assert cable.model_time(2, 1000, 100_000) == pytest.approx(0.056 + 0.008 + 0.160)
    assert "28 ms" in str(cable) and "5 Mbit/s down" in str(cable)


@pytest.mark.parametrize("rtt", [0.1, 0.2])
def test_a_request_on_a_new_connection_takes_two_round_trips_and_not_much_more(rtt):
    link = NetworkProfile("test", rtt, None, None)
    with echo_server() as port, WireTap(port, profile=link) as tap:
        started, _, done = exchange(tap.port, b"x" * 100, 100)
        # Then a second request on a connection already open: one round trip.
        with socket.create_connection(("127.0.0.1", tap.port), timeout=10) as client:
            client.sendall(b"a")
            client.recv(10)
            again = time.perf_counter()
            client.sendall(b"b")
            client.recv(10)
            reused = time.perf_counter() - again
    elapsed = done - started
    # The floors are the profile's; the ceilings only say "not one round trip more", so a
    # loaded machine (CI runs two workers on two cores) has a whole round trip of slack.
    assert 2 * rtt <= elapsed < 3 * rtt, elapsed    # handshake + request
    assert rtt <= reused < 2 * rtt, reused


def test_a_named_profile_costs_its_rtt_per_round_trip():
    with echo_server() as port, WireTap(port, profile="cable") as shaped:
        started, _, done = exchange(shaped.port, b"x", 1)
    assert done - started >= 2 * profile("cable").rtt


def test_shaping_holds_a_1_mb_download_within_ten_percent_of_the_rate():
    link = NetworkProfile("test", 0.02, down=10e6, up=10e6)
    with echo_server(reply=MB) as port, WireTap(port, profile=link, record=False) as tap:
        started, _, last = exchange(tap.port, b"go", MB)
    # Timed from the connect, not from the first byte: the tap releases each segment at its
    # time on the link, so a late first byte (a loaded machine) is followed by a catch-up
    # burst, and a rate from the first byte read 13.7 Mbit/s once for 10.
    model = link.model_time(2, 2, MB)   # handshake and request, then the body at the rate
    assert model - 0.005 <= last - started < model * 1.10, (last - started, model)
    assert tap.bytes_down == MB


def test_shaping_holds_a_1_mb_upload_to_the_up_rate():
    link = NetworkProfile("asymmetric", 0.0, down=None, up=8e6)
    listener = socket.create_server(("127.0.0.1", 0))
    first_last: list[float] = []

    def receive() -> None:
        connection, _ = listener.accept()
        with connection:
            received = 0
            while received < MB:
                received += len(connection.recv(65536))
                first_last.append(time.perf_counter())

    server = threading.Thread(target=receive, daemon=True)
    server.start()
    with WireTap(listener.getsockname()[1], profile=link, record=False) as tap, \
            socket.create_connection(("127.0.0.1", tap.port), timeout=10) as client:
        client.sendall(b"u" * MB)
        server.join(10)
    listener.close()
    rate = 8 * MB / (first_last[-1] - first_last[0])
    assert rate == pytest.approx(8e6, rel=0.10), rate


def test_jitter_is_seeded_and_keeps_tcp_order():
    link = NetworkProfile("jittery", 0.03, None, None, jitter=0.01)
    arrivals = []
    for _ in range(2):
        with echo_server() as port, WireTap(port, profile=link, seed=7) as tap:
            with socket.create_connection(("127.0.0.1", tap.port), timeout=10) as client:
                times = []
                for k in range(5):
                    client.sendall(bytes([65 + k]))
                    assert client.recv(10) == bytes([65 + k])   # in order, each one
                    times.append(time.perf_counter())
            arrivals.append(times)
    assert len(arrivals[0]) == len(arrivals[1]) == 5


def test_the_loss_model_stalls_the_stream_for_an_rto_and_repeats_with_its_seed():
    lossy = NetworkProfile("lossy", 0.02, down=20e6, up=20e6, loss=0.01)
    assert rto(lossy) == pytest.approx(0.2)
    runs = []
    for _ in range(2):
        with echo_server(reply=300_000) as port, \
                WireTap(port, profile=lossy, seed=3, record=False) as tap:
            started, _, done = exchange(tap.port, b"go", 300_000)
            runs.append((tap.stalls, done - started))
    (stalls, elapsed), (stalls_again, _) = runs
    assert stalls == stalls_again and stalls, "the same seed loses the same segments"
    offsets = [offset for _, offset in stalls]
    assert all(offset % 1460 == 0 and offset < 300_000 for offset in offsets)
    # A lost segment of the download arrives an RTO late, and the bytes behind it wait:
    # the transfer ends no sooner than that segment's arrival, nor than the clean model.
    downs = [offset for direction, offset in stalls if direction == DOWN]
    assert downs, "seed 3 loses a segment of the download"
    lost_arrival = 2 * lossy.rtt + 8 * (max(downs) + 1460) / 20e6 + rto(lossy)
    assert elapsed >= max(lost_arrival, lossy.model_time(2, 2, 300_000)) - 0.005, elapsed
    # No more than an RTO per lost segment (with slack for a loaded machine).
    assert elapsed < lossy.model_time(2, 2, 300_000) + len(stalls) * rto(lossy) + 0.3


def test_a_loss_pattern_given_to_the_tap_names_the_lost_segments_of_the_download_only():
    pattern = LossPattern(0.05, seed=2)        # the first 8 segments spared (a handshake)
    with echo_server(reply=150_000) as port, WireTap(port, loss=pattern, record=False) as tap:
        started, _, done = exchange(tap.port, b"go", 150_000)
    lost = [n for n in range(150_000 // SEGMENT + 1) if pattern.lost(n)]
    assert lost and min(lost) >= 8
    assert tap.stalls == [(DOWN, n * SEGMENT) for n in lost]   # none up, each named one down
    assert done - started >= rto(tap.profile) - 0.005    # the stream waited for the hole


def test_a_loopback_tap_does_not_shape():
    with echo_server() as port, WireTap(port) as tap:
        started, _, done = exchange(tap.port, b"x", 1)
    assert tap.profile.name == "loopback" and done - started < 0.05
