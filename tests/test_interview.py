"""The interview lab's pieces: game server, versioning, evolution, detector, idempotency, more."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from labsupport import chat, database, graphql_api, grpc_service, long_polling, sse
from labsupport.labs.interview import (
    backpressure,
    evidence,
    evolution,
    game,
    graphql_deprecation,
    idempotency,
    onepage,
    prediction,
    protodiff,
    questions,
    versioning,
)

# --- Q6: the game server ------------------------------------------------------------


@pytest.fixture(scope="module")
def game_server():
    with game.start(name="test-game") as server:
        yield server


def test_each_mode_costs_what_it_should(game_server):
    rows = {row["mode"]: row for row in game.measure(game_server, 1.0)}
    assert rows["full"]["frames_per_s"] >= game.TICK_RATE / 2    # a frame a tick, if not starved
    assert rows["moves"]["frames_per_s"] == pytest.approx(
        game.PLAYERS * rows["full"]["frames_per_s"], rel=0.15)
    assert rows["batched"]["frames_per_s"] < rows["delta"]["frames_per_s"]
    assert rows["delta"]["payload_bytes_per_s"] < rows["full"]["payload_bytes_per_s"] / 3
    assert rows["full"]["payload_bytes_per_s"] < rows["moves"]["payload_bytes_per_s"]


def test_deltas_rebuild_the_authoritative_state(game_server):
    messages = game.receive(f"{game_server.ws_url}?mode=delta", 0.5)
    state: dict = {}
    for message in messages:
        update = json.loads(message)
        state = game.decode_delta(state, json.dumps(update["players"]))
        truth = dict(game_server.game.history)[update["tick"]]
        for id, (x, y) in truth.items():
            assert state[id] == pytest.approx((x, y), abs=0.06)


def test_an_unknown_mode_is_refused_at_the_handshake(game_server):
    with pytest.raises(InvalidStatus) as refused, \
            connect(f"{game_server.ws_url}?mode=udp", open_timeout=5):
        pass
    assert refused.value.response.status_code == 400


def test_prediction_shows_the_input_at_once_and_agrees_with_the_server_at_rest():
    trace = prediction.simulate(latency=0.1)
    at_100ms = trace.times.index(0.1)
    assert trace.prediction[at_100ms] == pytest.approx(12.0)
    assert trace.no_prediction[at_100ms] == 0.0
    assert trace.prediction[-1] == trace.server[-1] == trace.no_prediction[-1]


def test_lag_compensation_hits_only_with_rewind():
    assert prediction.shot_hits(0.15)
    assert not prediction.shot_hits(0.15, rewind=False)
    assert not prediction.shot_hits(0.15, latency_error=0.2)


# --- Q7: REST versions ----------------------------------------------------------------


@pytest.fixture()
def versions():
    database.reset()
    day = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    lifecycle = versioning.Lifecycle(day + dt.timedelta(days=30), day + dt.timedelta(days=200))
    with versioning.start(lifecycle, clock=versioning.Clock(day), name="test-versions") as server:
        yield server, day


def test_v1_is_plain_then_deprecated_then_gone(versions):
    server, day = versions
    url = f"{server.url}/api/v1/users/101"
    assert "Deprecation" not in requests.get(url, timeout=5).headers
    server.clock.now = day + dt.timedelta(days=31)
    described = versioning.describe(requests.get(url, timeout=5))
    assert described["deprecated"] == day + dt.timedelta(days=30)
    assert described["sunset"] == day + dt.timedelta(days=200)
    assert 'rel="successor-version"' in described["link"]
    server.clock.now = day + dt.timedelta(days=200)
    gone = requests.get(url, timeout=5)
    assert gone.status_code == 410
    assert gone.json()["error"]["details"]["successor"] == ["/api/v2/users/101"]
    assert requests.get(f"{server.url}/api/v2/users/101", timeout=5).json()["role"]


def test_header_parsers_refuse_other_formats():
    assert versioning.parse_deprecation("true") is None
    assert versioning.parse_deprecation("@abc") is None
    assert versioning.parse_sunset("2026-07-01") is None
    assert versioning.parse_sunset("Wed, 01 Jul 2026 00:00:00 +0000") is None
    assert versioning.parse_sunset("Wed, 01 Jul 2026 00:00:00 GMT") is not None


def test_unknown_user_is_404_in_the_envelope(versions):
    server, _ = versions
    reply = requests.get(f"{server.url}/api/v2/users/99999", timeout=5)
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "NOT_FOUND"


# --- Q7: protobuf evolution and the detector ----------------------------------------------


def test_old_and_new_clients_read_both_servers():
    with evolution.start("v1", name="test-profiles-v1") as v1, \
            evolution.start("v2", name="test-profiles-v2") as v2:
        old_from_new, raw = evolution.get_profile(v2.url, "v1")
        assert old_from_new.name == "Ada Lovelace" and not old_from_new.phone
        assert old_from_new.SerializeToString() == raw      # unknown fields kept
        new_from_old, _ = evolution.get_profile(v1.url, "v2")
        assert new_from_old.display_name == "Ada Lovelace" and list(new_from_old.tags) == []


@pytest.mark.parametrize("pair", protodiff.pairs())
def test_reference_detector_agrees_with_each_pair(pair):
    old = protodiff.descriptor(protodiff.PAIRS_DIR / f"{pair}_old.proto")
    new = protodiff.descriptor(protodiff.PAIRS_DIR / f"{pair}_new.proto")
    assert protodiff.breaking_changes(old, new) == protodiff.expected(pair)


def test_a_changed_type_loses_data_silently_on_the_wire():
    old = protodiff.message_classes(protodiff.descriptor(protodiff.PAIRS_DIR / "retyped_old.proto"))
    new = protodiff.message_classes(protodiff.descriptor(protodiff.PAIRS_DIR / "retyped_new.proto"))
    sent = old["Order"](id=7, quantity=3).SerializeToString()
    read = new["Order"].FromString(sent)
    assert read.id == 7 and read.quantity == ""


def test_graphql_deprecation_is_visible_and_checkable():
    with graphql_api.start(name="test-deprecation", served_schema=graphql_deprecation.schema) as s:
        fields = requests.post(f"{s.url}/graphql", timeout=5, json={
            "query": graphql_deprecation.DEPRECATED_FIELDS_QUERY}).json()
    by_name = {f["name"]: f for f in fields["data"]["__type"]["fields"]}
    assert by_name["name"]["isDeprecated"] and not by_name["displayName"]["isDeprecated"]
    assert graphql_deprecation.deprecated_usage('{ user(id: "101") { displayName } }') == []
    assert graphql_deprecation.deprecated_usage('{ user(id: "101") { name } }')


# --- idempotency keys -------------------------------------------------------------------------


@pytest.fixture()
def payments():
    with idempotency.start(name="test-payments") as server:
        yield server


def post(server, body, key=None):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return requests.post(f"{server.url}/api/payments", json=body, headers=headers, timeout=5)


def test_a_key_replays_the_first_answer(payments):
    first = post(payments, {"amount_cents": 100, "to": "bob"}, "k1")
    again = post(payments, {"amount_cents": 100, "to": "bob"}, "k1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert len(payments.ledger.charges) == 1


def test_a_key_with_another_body_is_422(payments):
    post(payments, {"amount_cents": 100, "to": "bob"}, "k2")
    reused = post(payments, {"amount_cents": 999, "to": "bob"}, "k2")
    assert reused.status_code == 422 and "different body" in reused.json()["error"]["message"]


def test_a_key_still_in_flight_is_409(payments):
    payments.ledger.in_flight.add("k3")
    busy = post(payments, {"amount_cents": 100, "to": "bob"}, "k3")
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "CONFLICT"


@pytest.mark.parametrize("body", [{}, {"amount_cents": 0, "to": "bob"},
                                  {"amount_cents": 1.5, "to": "bob"},
                                  {"amount_cents": 5, "to": "bob", "admin": True}])
def test_bad_payments_are_422_and_charge_nothing(payments, body):
    assert post(payments, body, "k4").status_code == 422
    assert payments.ledger.charges == []


def test_a_required_key_is_400_without_it():
    with idempotency.start(name="test-payments-strict", require_key=True) as server:
        reply = post(server, {"amount_cents": 100, "to": "bob"})
    assert reply.status_code == 400 and "Idempotency-Key" in reply.json()["error"]["details"]


# --- backpressure ----------------------------------------------------------------------


def test_each_policy_gives_up_something_different():
    runs = {p: backpressure.simulate(p) for p in backpressure.POLICIES}
    assert runs["unbounded"].depth[-1] > 300
    assert runs["unbounded"].dropped == 0
    assert max(runs["block"].depth) <= 50 and runs["block"].dropped == 0
    assert runs["block"].produced < runs["unbounded"].produced
    assert max(runs["drop-oldest"].depth) <= 50 and runs["drop-oldest"].dropped > 0
    with pytest.raises(ValueError):
        backpressure.simulate("ignore")


def test_tcp_pushes_back_on_a_writer_whose_reader_stops():
    assert 0 < backpressure.tcp_pushback() < 64 * 2**20


# --- ask() and the summary ---------------------------------------------------------


def test_ask_records_practice_and_prefers_new_questions(tmp_path, monkeypatch):
    monkeypatch.setenv("PROTOCOL_LAB_PROGRESS", str(tmp_path / "progress.json"))
    asked = questions.ask("Q6")
    assert "multiplayer" in str(asked) and questions.practised() == {}
    assert "lag compensation" in str(asked.reveal())
    assert set(questions.practised()) == {"q6"}
    for _ in range(len(questions.QUESTIONS) - 1):
        nxt = questions.ask()
        assert nxt.question.id not in questions.practised()
        nxt.reveal()
    assert set(questions.practised()) == set(questions.QUESTIONS)
    with pytest.raises(KeyError):
        questions.ask("q99")


def test_summary_exports_markdown_and_escaped_html(tmp_path):
    page = onepage.Summary()
    page.record("Q6", "delta vs full", "<b>7x</b> fewer bytes")
    page.record("Q6", "delta vs full", "7x fewer bytes")
    markdown = page.export(tmp_path / "facts.md").read_text()
    assert markdown.count("delta vs full") == 1
    html = page.export(tmp_path / "facts.html").read_text()
    assert "<b>7x" not in html and "7x fewer bytes" in html
    with pytest.raises(ValueError):
        page.export(tmp_path / "facts.pdf")


# --- evidence on the lab servers ------------------------------------------------------


def test_sse_resumes_without_loss_only_with_ids():
    with sse.start(name="test-evidence-sse", heartbeat=0.5) as server:
        assert evidence.resume_after_gap(server, with_ids=True)["lost"] == []
        assert evidence.resume_after_gap(server, with_ids=False)["lost"] == [1, 2, 3]


def test_a_seventh_request_waits_behind_six_streams_but_not_on_http2():
    with sse.start(name="test-evidence-sse", heartbeat=0.5) as server:
        limit = evidence.browser_connection_limit(server, wait=0.3)
    assert limit["connections"] == 6 and not limit["next_request_answered"]
    with grpc_service.start(name="test-evidence-grpc") as server:
        h2 = evidence.http2_multiplexing(server, streams=7)
    assert h2["streams_open"] == 7 and h2["connections"] == 1


def test_a_websocket_frame_costs_a_fraction_of_a_post():
    with long_polling.start(name="test-evidence-lp") as lp, \
            chat.start(name="test-evidence-chat") as c:
        http, websocket = evidence.bytes_per_message(lp, c)
    assert websocket["up"] == 6 + len('{"type": "typing", "room_id": "general", "is_typing": true}')
    assert http["up"] > 3 * websocket["up"] and http["connections"] == 10
