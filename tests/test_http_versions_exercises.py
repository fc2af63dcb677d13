"""Every exercise of 10-http-versions: the reference passes, plausible wrong answers fail."""

from __future__ import annotations

from exercise_helpers import assert_fails, assert_passes

from labsupport.labs.http_versions import exercises

# --- http-versions.round-trips ---------------------------------------------------------

RT = "http-versions.round-trips"


def test_round_trips_reference_passes():
    assert_passes(RT)


def test_round_trips_stub_is_not_attempted():
    assert_fails(RT, lambda: {"TLS 1.2": ..., "TLS 1.3": ..., "QUIC": ..., "0-RTT": ...},
                 "not solved yet")


def test_round_trips_forgetting_tcp_fails():
    assert_fails(RT, lambda: {"TLS 1.2": 3, "TLS 1.3": 2, "QUIC": 2, "0-RTT": 1},
                 "TLS 1.2: you said 3, the wire shows 4")


def test_round_trips_counting_only_the_handshake_fails():
    assert_fails(RT, lambda: {"TLS 1.2": 3, "TLS 1.3": 2, "QUIC": 1, "0-RTT": 0},
                 "TCP's SYN/SYN-ACK")


def test_round_trips_with_0rtt_like_quic_fails():
    assert_fails(RT, lambda: {"TLS 1.2": 4, "TLS 1.3": 3, "QUIC": 2, "0-RTT": 2},
                 "0-RTT: you said 2, the wire shows 1")


def test_round_trips_as_strings_fail():
    assert_fails(RT, lambda: {"TLS 1.2": "4", "TLS 1.3": "3", "QUIC": "2", "0-RTT": "1"},
                 "give a whole number")


# --- http-versions.hpack-tenth --------------------------------------------------------------

HP = "http-versions.hpack-tenth"


def test_hpack_reference_passes():
    assert_passes(HP)


def test_hpack_one_byte_a_header_fails():
    assert_fails(HP, lambda headers: 4 + len(headers), "what is never indexed?")


def test_hpack_without_a_dynamic_table_fails():
    def first_request(headers):
        import hpack
        return len(hpack.Encoder().encode(exercises.PSEUDO + headers))

    assert_fails(HP, first_request, "h2 wrote a 85-byte header block")


def test_hpack_indexing_the_credentials_fails():
    def naive(headers):
        import hpack
        encoder = hpack.Encoder()
        for _ in range(10):
            block = encoder.encode(exercises.PSEUDO + headers)
        return len(block)

    assert_fails(HP, naive, "what is never indexed?")


def test_hpack_one_measured_number_fails_for_other_headers():
    assert_fails(HP, lambda headers: 85, "with the same without authorization")


def test_hpack_lookup_of_the_checks_header_sets_fails():
    """A lookup table of what the check measures: the three known header sets, by value."""
    known = {tuple(h): exercises.tenth_request_bytes(list(h))
             for h in exercises.HEADER_SETS.values()}

    assert_fails(HP, lambda headers: known.get(tuple(headers), 0),
                 "with headers drawn for this check")


# --- http-versions.pick-version ----------------------------------------------------------------

PV = "http-versions.pick-version"


def test_pick_version_reference_passes():
    assert_passes(PV)


def test_pick_version_always_http2_fails():
    assert_fails(PV, lambda loss, streams, udp: "HTTP/2", "held up 8 of 8 HTTP/2 streams")


def test_pick_version_always_http3_fails():
    assert_fails(PV, lambda loss, streams, udp: "HTTP/3", "HTTP/3 cannot start")


def test_pick_version_http3_only_on_heavy_loss_fails():
    assert_fails(PV, lambda loss, streams, udp: "HTTP/3" if loss > 0.1 else "HTTP/2",
                 "you chose HTTP/2")


def test_pick_version_not_a_version_fails():
    assert_fails(PV, lambda loss, streams, udp: "h3", "answer with one of")


# --- http-versions.early-data ------------------------------------------------------------------

ED = "http-versions.early-data"


def test_early_data_reference_passes():
    assert_passes(ED)


def test_early_data_allowing_everything_fails():
    assert_fails(ED, lambda method, path: True, "changed an order a second time")


def test_early_data_refusing_everything_fails():
    assert_fails(ED, lambda method, path: False, "changed nothing")


def test_early_data_judged_by_path_not_method_fails():
    assert_fails(ED, lambda method, path: path == "/", "you refuse GET /bytes/100")


def test_early_data_answer_as_text_fails():
    assert_fails(ED, lambda method, path: "yes", "answer True or False")


def test_early_data_refusing_only_the_checked_path_fails():
    """A lookup of what the check measured: refuse /orders, allow every other path."""
    assert_fails(ED, lambda method, path: path != "/orders", "Judge by the method")


def test_early_data_refusing_only_post_fails():
    """Too loose: everything but POST, so PATCH (not idempotent) may run twice."""
    assert_fails(ED, lambda method, path: method != "POST", "you allow PATCH /orders/7")
