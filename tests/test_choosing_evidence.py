"""Counts before clocks, served as in production (labsupport.labs.choosing.evidence)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import pytest
import requests

from labsupport.labs.choosing import evidence, serve
from labsupport.wire import TIMING_FRAMES, WireTap, count


@pytest.fixture(scope="module")
def child() -> Iterator[serve.Child]:
    with serve.spawn("production") as started:
        assert set(started.info) >= {"rest", "graphql", "grpc", "rest-dev"}
        yield started


def counted(adapter: evidence.Adapter, child: serve.Child, cycles: int = 1):
    with WireTap(child.info[adapter.server]) as tap:
        evidence._batch(adapter, tap.address, cycles)
        return count(tap, without=TIMING_FRAMES)


@pytest.mark.parametrize("adapter", evidence.ADAPTERS, ids=lambda a: a.name.split(" (")[0])
def test_counts_are_identical_run_after_run(adapter, child):
    first, second = counted(adapter, child), counted(adapter, child)
    if adapter.name.startswith("REST · HTTP/2"):
        # Hypercorn's HTTP/2 answers carry a Date header that HPACK Huffman-codes (a digit
        # takes 5 or 6 bits) and indexes when the second repeats: a byte or two moves, and
        # a new second in the middle of a cycle sends the header again (about 23 bytes).
        assert abs(first.bytes_down - second.bytes_down) <= 30
        second = dataclasses.replace(second, bytes_down=first.bytes_down)
    assert first == second
    assert first.requests == 4 and first.round_trips == first.connections + 4


def test_production_serving_keeps_the_connection_the_dev_server_does_not(child):
    by = {a.server + (" h2" if "HTTP/2" in a.name else ""): a for a in evidence.ADAPTERS}
    keep_alive, dev = counted(by["rest"], child, 2), counted(by["rest-dev"], child, 2)
    assert keep_alive.connections == 1 and dev.connections == 8
    assert dev.round_trips - keep_alive.round_trips == 7      # a handshake per request
    # The same requests, the same bodies: the dev server's answers carry more header bytes.
    assert keep_alive.bytes_up == dev.bytes_up and keep_alive.bytes_down < dev.bytes_down


def test_rest_over_http2_is_served_on_the_same_port(child):
    with httpx.Client(http1=False, http2=True, timeout=10) as client:
        response = client.get(f"http://127.0.0.1:{child.info['rest']}/api/v1/users/101")
    assert response.status_code == 200 and response.http_version == "HTTP/2"


def test_a_204_is_served_whole_by_hypercorn(child):
    adapter = evidence.ADAPTERS[0]
    client = adapter.open(f"127.0.0.1:{child.info['rest']}")
    try:
        adapter.crud(client)   # ends with a DELETE answered 204 No Content
    finally:
        adapter.close(client)


def test_time_on_a_profile_is_at_least_the_model(child):
    measured = evidence.measure(evidence.ADAPTERS[0], child, cycles=1, repeats=3, link="cable")
    # 5 round trips at 28 ms, plus the bytes at 1 and 5 Mbit/s: a floor the clock can't beat.
    assert measured.model == pytest.approx(5 * 0.028 + 8 * 845 / 1e6 + 8 * 943 / 5e6)
    assert min(measured.shaped) >= measured.model * 0.98
    row = measured.row()
    assert list(row)[:3] == ["protocol", "connections / cycle", "round trips / cycle"]
    assert "loopback ms (this Python implementation)" in row


def test_bootstrap_interval_holds_the_median():
    low, high = evidence.bootstrap_median([1.0, 2.0, 2.5, 3.0, 10.0])
    assert low <= 2.5 <= high and low >= 1.0 and high <= 10.0
    assert evidence.bootstrap_median([5.0] * 5) == (5.0, 5.0)


def test_long_polling_served_with_keep_alive_halves_the_round_trips(child):
    from labsupport.labs.long_polling import server as long_polling

    counts = {}
    for key in ("long-polling", "long-polling-dev"):
        port = child.info[key]
        with WireTap(port) as tap:
            poller = long_polling.Poller(tap.url, "ada", timeout=5)
            for k in range(4):
                requests.post(f"http://127.0.0.1:{port}/api/notifications/send", timeout=5,
                              json={"user_id": "ada", "type": "message", "data": {"n": k}})
                assert len(poller.poll()) == 1
        counts[key] = count(tap)
    assert counts["long-polling"].round_trips == 5 and counts["long-polling-dev"].round_trips == 8
