"""The choosing lab's exercises: references pass, plausible wrong answers fail, by measurement."""

from __future__ import annotations

import requests
from exercise_helpers import assert_fails, assert_fails_for_some_seed, assert_passes

from labsupport.labs.choosing import Pick
from labsupport.wire import WireTap


def test_wire_bytes():
    assert_passes("choosing.wire-bytes")

    def body_only(server_port, reads):
        url = f"http://127.0.0.1:{server_port}/api/v1/users/101"
        return len(requests.get(url, timeout=5).content)

    def response_only(server_port, reads):
        with WireTap(server_port) as tap:
            for _ in range(reads):
                requests.get(f"{tap.url}/api/v1/users/101", timeout=5)
        return tap.bytes_down / reads

    assert_fails("choosing.wire-bytes", body_only, "the body alone")
    assert_fails("choosing.wire-bytes", response_only, "the response only")
    assert_fails("choosing.wire-bytes", lambda port, reads: None, "not solved yet")


def test_wire_bytes_constant_fails():
    """A constant: the figure the notebook's server gave, returned without measuring.

    When the drawn user's response alone happens to be 547 B, the check's message names
    that mistake instead, so only the common start of both messages is asserted."""
    assert_fails("choosing.wire-bytes", lambda server_port, reads: 547.0,
                 "you counted 547 B per read")


def test_wire_bytes_divided_by_the_notebooks_reads_fails():
    """Sample-only: the total divided by 4, the notebook's number of reads."""
    def four_reads(server_port, reads):
        with WireTap(server_port) as tap, requests.Session() as http:
            for _ in range(reads):
                http.get(f"{tap.url}/api/v1/users/101", timeout=5)
        return tap.total_bytes / 4

    assert_fails_for_some_seed("choosing.wire-bytes", four_reads, "divide by the reads you made")


def test_predict_ratio():
    assert_passes("choosing.predict-ratio")
    assert_fails("choosing.predict-ratio", lambda: 1.0, "you predicted 1; measured")
    assert_fails("choosing.predict-ratio", lambda: 500.0, "within a factor of 2 passes")
    # Reasoned as if WebSocket frames were compressed (a third of the JSON): the measurement
    # sends them plain, about 9.5 times fewer bytes than long polling, not 24.
    assert_fails("choosing.predict-ratio", lambda: 24.0, "within a factor of 2 passes")


def test_pick_game():
    assert_passes("choosing.pick-game")
    assert_fails("choosing.pick-game", lambda: Pick("Long Polling", "rate_hz"),
                 "one HTTP request per update")
    assert_fails("choosing.pick-game", lambda: Pick("SSE", "direction"),
                 "one HTTP request per update")
    assert_fails("choosing.pick-game", lambda: Pick("WebSockets", "browser"),
                 "what rules them out is the rate")
    assert_fails("choosing.pick-game", lambda: Pick("gRPC", "rate_hz"), "a browser cannot")
    assert_fails("choosing.pick-game", lambda: Pick("Sockets", "rate_hz"), "is not one of")


def test_pick_public():
    assert_passes("choosing.pick-public")
    assert_fails("choosing.pick-public", lambda: Pick("GraphQL", "http_caching"),
                 "every read paid the full answer")
    assert_fails("choosing.pick-public", lambda: Pick("REST", "browser"),
                 "what an HTTP cache can reuse")
    assert_fails("choosing.pick-public", lambda: Pick("gRPC", "http_caching"),
                 "cannot read gRPC")
    assert_fails("choosing.pick-public", lambda: Pick("REST", "cheapness"), "not a requirement")
