"""The HTTP versions lab: one app over HTTP/1.1, HTTP/2 and HTTP/3, round trips counted,
header compression measured, and head-of-line blocking under the same loss."""

from __future__ import annotations

import socket
import ssl

import httpx
import pytest

from labsupport import http_versions as hv
from labsupport.labs.http_versions import compression, handshakes, hol
from labsupport.labs.http_versions.diagram import flights_diagram
from labsupport.labs.http_versions.h2client import H2Client
from labsupport.labs.http_versions.h3client import H3Client
from labsupport.labs.http_versions.loss import UDPRelay
from labsupport.wire import DOWN, LossPattern, WireTap
from labsupport.wire.shaping import SEGMENT, rto


@pytest.fixture(scope="module")
def server():
    with hv.start(name="http-versions-test") as running:
        yield running


def ca() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(hv.authority().ca_file))


# --- servers -------------------------------------------------------------------------

def test_tls_port_speaks_http1_and_http2_by_alpn(server):
    with httpx.Client(verify=ca()) as client:
        reply = client.get(f"{server.url}/")
    assert (reply.http_version, reply.text) == ("HTTP/1.1", "hello over HTTP/1.1\n")
    assert reply.headers["alt-svc"] == f'h3=":{server.port}"; ma=3600'
    with httpx.Client(verify=ca(), http2=True) as client:
        reply = client.get(f"{server.url}/")
    assert (reply.http_version, reply.text) == ("HTTP/2", "hello over HTTP/2\n")


def test_cleartext_port_speaks_http1_and_h2c(server):
    with httpx.Client() as client:
        assert client.get(f"{server.cleartext_url}/").http_version == "HTTP/1.1"
    with httpx.Client(http1=False, http2=True) as client:
        reply = client.get(f"{server.cleartext_url}/")
    assert (reply.http_version, reply.text) == ("HTTP/2", "hello over HTTP/2\n")


def test_http3_on_the_same_port_number_over_udp(server):
    with H3Client(server.port) as client:
        reply = client.fetch("/bytes/5000")
    assert (reply.status, reply.body_bytes) == (200, 5000)
    assert (b"server", b"hypercorn-h3") in reply.headers


def test_an_unknown_route_is_a_404_with_the_error_envelope(server):
    with httpx.Client(verify=ca(), http2=True) as client:
        reply = client.get(f"{server.url}/nope")
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "NOT_FOUND"


def test_too_many_bytes_is_a_400_in_the_envelope(server):
    with H3Client(server.port) as client:
        reply = client.fetch("/bytes/99999999999")
    assert reply.status == 400
    with httpx.Client(http1=False, http2=True) as client:
        assert client.get(f"{server.cleartext_url}/bytes/99999999999").json()["error"][
            "code"] == "BAD_REQUEST"


def test_the_tls_port_refuses_a_client_that_does_not_trust_the_ca(server):
    with pytest.raises(httpx.ConnectError), httpx.Client() as client:
        client.get(f"{server.url}/")


def test_listens_on_loopback_and_a_rerun_replaces_the_previous_server():
    first = hv.start(name="http-versions-rerun")
    assert first.host == "127.0.0.1"
    second = hv.start(name="http-versions-rerun")
    try:
        assert not first.running and second.running
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", first.port), 1):
            pass
        with httpx.Client(verify=ca()) as client:
            assert client.get(f"{second.url}/").status_code == 200
    finally:
        second.stop()


# --- round trips ------------------------------------------------------------------------

def test_round_trips_to_the_first_byte_are_counted_and_the_same_run_after_run(server):
    runs = [handshakes.all_handshakes(server.port) for _ in range(2)]
    counts = [[(h.name, h.round_trips) for h in run] for run in runs]
    assert counts[0] == [("TCP + TLS 1.2", 4), ("TCP + TLS 1.3", 3), ("QUIC (1-RTT)", 2),
                         ("QUIC 0-RTT (resumed)", 1)]
    assert counts[0] == counts[1]
    labels = [[(f.round, f.sender, f.label) for f in h.flights] for h in runs[0]]
    assert labels == [[(f.round, f.sender, f.label) for f in h.flights] for h in runs[1]]


def test_a_probe_repeating_crypto_bytes_is_no_flight_of_its_own():
    from labsupport.labs.http_versions.h3client import Packet

    def crypto(sent, space, offset, length, *more):
        frames = ({"frame_type": "crypto", "offset": offset, "length": length}, *more)
        return Packet(sent, space, frames, 1200)

    first = [crypto(False, "handshake", 0, 829)]
    probe = crypto(False, "handshake", 0, 829)                      # sent again: an ACK was late
    fresh = crypto(False, "1RTT", 0, 89, {"frame_type": "handshake_done"})
    mine = crypto(True, "handshake", 0, 52)                         # the client's own bytes
    carried: dict = {}
    assert handshakes._without_repeats(first, carried) == first
    assert handshakes._without_repeats([probe, fresh, mine], carried) == [fresh, mine]


def test_flights_say_what_each_side_sent(server):
    tls12, tls13, quic, early = handshakes.all_handshakes(server.port)
    assert tls12.flights[2].label == "Handshake(ClientHello)"
    assert "ServerKeyExchange" in tls12.flights[3].label
    assert "HTTP request" in tls13.flights[4].label           # with the client's Finished
    assert quic.flights[0].label == "Initial[CRYPTO]"
    assert early.flights[0].label == "Initial[CRYPTO] + 0-RTT[STREAM]"
    assert early.flights[-1].label.endswith("(the HTTP response)")


def test_zero_rtt_needs_a_ticket_the_server_accepts_once(server):
    ticket = handshakes.ticket_from(server.port)
    before = server.tickets.resumed
    assert handshakes.zero_rtt(server.port, ticket).round_trips == 1
    again = handshakes.zero_rtt(server.port, ticket)   # single-use: no early data this time
    assert "refused" in again.name and again.round_trips >= 2
    assert server.tickets.resumed == before + 1


def test_the_diagram_has_a_panel_per_handshake(server):
    figure = flights_diagram(handshakes.tcp_tls(server.port, "1.3"))
    assert len(figure.axes) == 1


# --- header compression -----------------------------------------------------------------

def test_hpack_and_qpack_shrink_repeated_headers_and_the_sizes_repeat(server):
    sizes = compression.measure(server)
    assert sizes == compression.measure(server)
    assert len(set(sizes.http1)) == 1
    assert sizes.hpack[0] > 2 * sizes.hpack[-1]        # the table pays from request 2 on
    assert sizes.qpack[-1] < 20 < sizes.qpack[0]       # QPACK indexes even authorization
    assert sum(sizes.qpack_encoder_stream) > 0         # ...by inserting on its encoder stream
    assert sizes.hpack[-1] > sizes.qpack[-1]           # h2 never indexes authorization


# --- loss and head-of-line blocking -------------------------------------------------------

def test_a_loss_pattern_is_seeded_and_spares_the_handshake():
    pattern = LossPattern(0.05, seed=4, spare=8)
    lost = [n for n in range(2000) if pattern.lost(n)]
    assert lost == [n for n in range(2000) if LossPattern(0.05, seed=4, spare=8).lost(n)]
    assert min(lost) >= 8 and 60 < len(lost) < 140


def test_the_udp_relay_really_drops_and_quic_recovers(server):
    with UDPRelay(server.port, LossPattern(0.05, seed=2)) as relay, \
            H3Client(server.port, target=relay.port) as client:
        reply = client.fetch("/bytes/200000", timeout=15)
        assert (reply.status, reply.body_bytes) == (200, 200_000)
        assert relay.dropped > 0


def test_the_tap_loses_the_segments_the_pattern_names_and_only_downwards(server):
    pattern = LossPattern(0.05, seed=2)
    with WireTap(server.cleartext_port, loss=pattern, record=False) as tap, \
            H2Client(tap.port) as client:
        reply = client.fetch("/bytes/100000", timeout=15)
    assert reply.body_bytes == 100_000
    assert {direction for direction, _ in tap.stalls} == {DOWN}
    lost = [offset // SEGMENT for _, offset in tap.stalls]
    assert lost and all(offset % SEGMENT == 0 for _, offset in tap.stalls)
    assert lost == [n for n in range(lost[-1] + 1) if pattern.lost(n)]   # same numbers as UDP
    assert rto(tap.profile) == 0.2     # loopback: the model's RTO is Linux's minimum


@pytest.mark.parametrize("seed", [1, 16])   # first losses early: every stream is still open
def test_under_the_same_loss_http2_streams_stall_together_http3_streams_separately(server, seed):
    loss = LossPattern(0.015, seed=seed)
    h2, h3 = hol.compare(server, loss)
    assert h2.losses > 0 and h3.losses > 0
    # TCP: the first lost segment holds every stream, since all are still open
    assert h2.held_up_by_each_loss[0] == 8 and h2.held_up == 8
    # QUIC: a lost datagram holds only the streams whose frames it carried
    assert 0 < h3.held_up < 8
    assert hol.plot([h2, h3]).axes


# --- 0-RTT replay and connection migration ------------------------------------------------

def test_a_replayed_0rtt_post_runs_again_unless_tickets_are_single_use():
    from labsupport.labs.http_versions.replay import replay_early_request

    reusable = replay_early_request(single_use_tickets=False)
    assert reusable.early_data_accepted
    assert (reusable.orders_on_a, reusable.orders_on_b) == (1, 1)
    single = replay_early_request(single_use_tickets=True)
    assert single.early_data_accepted
    assert (single.orders_on_a, single.orders_on_b) == (1, 0)


def test_a_quic_connection_survives_a_new_client_address(server):
    with H3Client(server.port) as client:
        before = client.sock.getsockname()[1]
        assert client.fetch("/").status == 200
        handshakes_sent = sum(p.sent and p.packet_type == "initial" for p in client.packets())
        after = client.migrate()           # the old socket is closed: answers reach only the new
        assert after != before
        assert client.fetch("/").status == 200
        assert handshakes_sent == sum(p.sent and p.packet_type == "initial"
                                      for p in client.packets())   # no new handshake


# --- a page of 30 resources on a shaped link ----------------------------------------------

def test_thirty_resources_take_six_connections_and_five_waves_over_http1_one_and_one_over_h2(
        server):
    from labsupport.labs.http_versions import waterfall
    from labsupport.wire import profile

    lte = profile("lte")
    h1 = waterfall.load(server, http2=False, link=lte, think_ms=150)
    h2 = waterfall.load(server, http2=True, link=lte, think_ms=150)
    assert len(h1.requests) == len(h2.requests) == 30
    assert (h1.connections, h1.most_in_flight, h1.waves) == (6, 6, 5)
    assert (h2.connections, h2.most_in_flight, h2.waves) == (1, 30, 1)
    assert sorted({r.connection for r in h1.requests}) == [1, 2, 3, 4, 5, 6]
    # never faster than the link allows: new connections' handshake, then 5 waves of a
    # round trip + 150 ms each over HTTP/1.1; one round trip + 150 ms over HTTP/2
    assert h1.total_ms >= 1000 * (lte.model_time(1 + 5) + 5 * 0.150) - 1
    assert h2.total_ms >= 1000 * (lte.model_time(1) + 0.150) - 1
    assert len(waterfall.plot([h1, h2]).axes) == 2


# --- trailers -----------------------------------------------------------------------------

def test_a_trailer_comes_in_a_last_headers_frame_that_ends_the_stream(server):
    from labsupport.labs.http_versions import trailers

    reply, frames = trailers.http_trailer(server)
    assert [(f.kind, f.end_stream) for f in frames] == [
        ("HEADERS", False), ("DATA", False), ("HEADERS", True)]
    assert frames[0].fields["trailer"] == "x-body-sha256"
    assert list(frames[2].fields) == ["x-body-sha256"]
    assert reply.trailers == [(b"x-body-sha256", frames[2].fields["x-body-sha256"].encode())]


def test_without_te_trailers_or_over_http1_no_trailer_is_sent(server):
    with H2Client(server.cleartext_port) as client:
        assert client.fetch("/trailers").trailers is None
    with httpx.Client() as client:
        reply = client.get(f"{server.cleartext_url}/trailers", headers={"te": "trailers"})
    assert reply.http_version == "HTTP/1.1" and "trailer" not in reply.headers
    assert reply.text.count("part") == 3


def test_grpc_sends_its_status_in_the_trailing_headers_frame():
    from labsupport.labs.http_versions import trailers

    found, missing = trailers.grpc_trailers()
    assert [(f.kind, f.end_stream) for f in found] == [
        ("HEADERS", False), ("DATA", False), ("HEADERS", True)]
    assert found[-1].fields["grpc-status"] == "0" and "grpc-status" not in found[0].fields
    assert [f.kind for f in missing if f.kind == "DATA"] == []
    assert missing[-1].end_stream and missing[-1].fields["grpc-status"] == "5"
