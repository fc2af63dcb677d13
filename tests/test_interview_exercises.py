"""The interview lab's exercises: references pass, wrong answers fail with their message."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import requests
from exercise_helpers import assert_fails, assert_passes

from labsupport.labs.interview import exercises, protodiff

# --- frame bytes --------------------------------------------------------------------


def test_frame_bytes_reference_passes():
    assert_passes("interview.frame-bytes")


def test_frame_bytes_with_six_bytes_for_every_size_fails():
    assert_fails("interview.frame-bytes", lambda payload: payload + 6,
                 "a 126-byte message took 134 bytes on the wire")


def test_frame_bytes_without_the_mask_fails():
    assert_fails("interview.frame-bytes", lambda payload: payload + 2,
                 "a client masks every frame it sends")


def test_frame_bytes_without_the_64_bit_length_fails():
    def two_length_bytes_at_most(payload):
        return payload + 6 + (2 if payload > 125 else 0)

    assert_fails("interview.frame-bytes", two_length_bytes_at_most,
                 "above 65,535 bytes the extended length takes 8 bytes")


def test_frame_bytes_stub_is_not_attempted():
    assert_fails("interview.frame-bytes", lambda payload: None, "not solved yet")


# --- safe retry ---------------------------------------------------------------------


def test_safe_retry_reference_passes():
    assert_passes("interview.safe-retry")


def test_safe_retry_without_a_key_charges_twice():
    def pay(base_url, body):
        for _ in range(3):
            try:
                return requests.post(f"{base_url}/api/payments", json=body, timeout=5).json()
            except requests.ConnectionError:
                continue

    assert_fails("interview.safe-retry", pay, "one pay() call charged 2 times")


def test_safe_retry_with_a_new_key_per_attempt_charges_twice():
    def pay(base_url, body):
        for _ in range(3):
            try:
                return requests.post(f"{base_url}/api/payments", json=body, timeout=5,
                                     headers={"Idempotency-Key": str(uuid.uuid4())}).json()
            except requests.ConnectionError:
                continue

    assert_fails("interview.safe-retry", pay, "one pay() call charged 2 times")


def test_safe_retry_that_never_retries_fails():
    def pay(base_url, body):
        key = str(uuid.uuid4())
        return requests.post(f"{base_url}/api/payments", json=body, timeout=5,
                             headers={"Idempotency-Key": key}).json()

    assert_fails("interview.safe-retry", pay, "raised ConnectionError instead of retrying")


def test_safe_retry_with_one_key_for_ever_fails():
    key = str(uuid.uuid4())

    def pay(base_url, body):
        for _ in range(3):
            try:
                return requests.post(f"{base_url}/api/payments", json=body, timeout=5,
                                     headers={"Idempotency-Key": key}).json()
            except requests.ConnectionError:
                continue

    assert_fails("interview.safe-retry", pay, "a second, different payment must be charged")


def test_safe_retry_without_a_pause_fails():
    """Happy path only: it retries 503s in a tight loop, hammering an overloaded server."""
    def pay(base_url, body):
        key = str(uuid.uuid4())
        for _ in range(5):
            try:
                response = requests.post(f"{base_url}/api/payments", json=body, timeout=5,
                                         headers={"Idempotency-Key": key})
            except requests.ConnectionError:
                continue
            if response.status_code == 503:
                continue
            response.raise_for_status()
            return response.json()

    assert_fails("interview.safe-retry", pay, "an overloaded server retried at once")


def test_safe_retry_that_gives_up_on_a_503_fails():
    """Happy path only: every HTTP error is final, a 503 too."""
    def pay(base_url, body):
        key = str(uuid.uuid4())
        for attempt in range(5):
            try:
                response = requests.post(f"{base_url}/api/payments", json=body, timeout=5,
                                         headers={"Idempotency-Key": key})
            except requests.ConnectionError:
                time.sleep(0.05 * 2 ** attempt)
                continue
            response.raise_for_status()
            return response.json()

    assert_fails("interview.safe-retry", pay, "pay() raised HTTPError: a 503 says")


def test_safe_retry_that_retries_every_status_code_fails():
    """Happy path only: any answer but 201 is retried, a 422 too (it never changes)."""
    def pay(base_url, body):
        key = str(uuid.uuid4())
        for attempt in range(5):
            if attempt:
                time.sleep(0.05 * 2 ** (attempt - 1))
            try:
                response = requests.post(f"{base_url}/api/payments", json=body, timeout=5,
                                         headers={"Idempotency-Key": key})
            except requests.ConnectionError:
                continue
            if response.status_code == 201:
                return response.json()
        raise ConnectionError("no payment after 5 attempts")

    assert_fails("interview.safe-retry", pay, "was answered 422 (validation failed) and pay() "
                                              "sent it 5 times")


def test_safe_retry_that_returns_the_error_fails():
    """Happy path only: the error envelope returned as if it were the payment."""
    def pay(base_url, body):
        key = str(uuid.uuid4())
        for attempt in range(5):
            if attempt:
                time.sleep(0.05 * 2 ** (attempt - 1))
            try:
                response = requests.post(f"{base_url}/api/payments", json=body, timeout=5,
                                         headers={"Idempotency-Key": key})
            except requests.ConnectionError:
                continue
            if response.status_code != 503:
                return response.json()

    assert_fails("interview.safe-retry", pay, "as if it were a payment")


def test_safe_retry_stub_is_not_attempted():
    assert_fails("interview.safe-retry", lambda base_url, body: None, "not solved yet")


# --- social API ---------------------------------------------------------------------


def test_social_api_reference_passes():
    assert_passes("interview.social-api")


def answer_with(**changes):
    chosen = exercises.choose_protocols() | {k.replace("_", "-"): v for k, v in changes.items()}
    return lambda: chosen


def test_social_api_rest_everywhere_fails_on_live_comments():
    choose = answer_with(feed="rest", profile_screen="rest", live_comments="rest",
                         chat="rest", notifications="rest")
    assert_fails("interview.social-api", choose, "live-comments with rest: viewers must poll")


def test_social_api_accepts_every_defensible_answer():
    # Issue 20: the requirement that decides is judged, not one accepted string.
    for changes in ({"feed": "graphql"}, {"profile_screen": "rest"},
                    {"live_comments": "websocket"}, {"notifications": "websocket"},
                    {"notifications": "long-polling"}):
        assert_passes("interview.social-api", answer_with(**changes))


def test_social_api_pushing_the_whole_feed_fails_on_connections():
    assert_fails("interview.social-api", answer_with(feed="sse"),
                 "feed with sse: sse holds a connection per reader open: 1,000,000")


def test_social_api_counts_the_websocket_upgrade_with_the_other_handshakes():
    assert_fails("interview.social-api", answer_with(profile_screen="websocket"),
                 "3 handshake round trips (TCP, TLS, the HTTP Upgrade)")


def test_social_api_sse_chat_costs_posts():
    assert_fails("interview.social-api", answer_with(chat="sse"),
                 "chat with sse: sse only carries server-to-client")


def test_social_api_long_polling_comments_cost_a_request_each():
    assert_fails("interview.social-api", answer_with(live_comments="long-polling"),
                 "live-comments with long-polling: one request per comment per viewer")


def test_social_api_grpc_in_browsers_fails():
    assert_fails("interview.social-api", answer_with(chat="grpc"),
                 "chat with grpc: browsers cannot speak gRPC")


def test_social_api_missing_feature():
    assert_fails("interview.social-api", lambda: {"feed": "rest"}, "choose a protocol for")


# --- game update ----------------------------------------------------------------------


def test_game_update_reference_passes():
    assert_passes("interview.game-update")


class FullState:
    updates_per_second = 20

    @staticmethod
    def encode(previous, current):
        return json.dumps({id: {"x": x, "y": y} for id, (x, y) in current.items()})

    @staticmethod
    def decode(previous, message):
        return {id: (p["x"], p["y"]) for id, p in json.loads(message).items()}


def test_game_update_full_state_is_over_the_bandwidth_budget():
    assert_fails("interview.game-update", FullState, "the budget is 2,000")


def test_game_update_too_rare_is_stale():
    class Rare(exercises.GameCodec):
        updates_per_second = 2

    assert_fails("interview.game-update", Rare, "positions up to 500 ms old")


def test_game_update_decoder_that_forgets_players_fails():
    class Forgetful(exercises.GameCodec):
        @staticmethod
        def decode(previous, message):
            return {id: (x / 10, y / 10) for id, x, y in json.loads(message)}

    assert_fails("interview.game-update", Forgetful, "is missing from your decoded state")


def test_game_update_rate_must_divide_the_tick_rate():
    class Odd(exercises.GameCodec):
        updates_per_second = 15

    assert_fails("interview.game-update", Odd, "must divide the server's 20 ticks")


# --- versioning plan -----------------------------------------------------------------------


def test_versioning_plan_reference_passes():
    assert_passes("interview.versioning-plan")


def test_versioning_plan_with_a_short_sunset_breaks_clients():
    class Hasty(exercises.VersioningPlan):
        sunset_after_days = 60

    assert_fails("interview.versioning-plan", Hasty, "client teams were still on v1 at its sunset")


def test_versioning_plan_with_iso_dates_is_not_understood():
    class Iso(exercises.VersioningPlan):
        @staticmethod
        def headers(deprecated_at, sunset_at, successor):
            return {"Deprecation": "@" + str(int(deprecated_at.timestamp())),
                    "Sunset": sunset_at.date().isoformat()}

    assert_fails("interview.versioning-plan", Iso, "which is not an HTTP-date")


def test_versioning_plan_with_the_old_draft_deprecation_header_is_not_noticed():
    class Draft(exercises.VersioningPlan):
        @staticmethod
        def headers(deprecated_at, sunset_at, successor):
            return {"Deprecation": "true",
                    "Sunset": sunset_at.strftime("%a, %d %b %Y %H:%M:%S GMT")}

    assert_fails("interview.versioning-plan", Draft, "none of 200 client teams noticed")


def test_versioning_plan_that_runs_two_versions_for_years_is_too_costly():
    class Patient(exercises.VersioningPlan):
        sunset_after_days = 730

    assert_fails("interview.versioning-plan", Patient, "the budget is 365 days")


def test_simulated_teams_read_the_live_headers():
    outcome = exercises.simulate_deprecation(exercises.VersioningPlan,
                                             dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert outcome["status_after_sunset"] == 410
    assert outcome["last_headers"]["Deprecation"] == "@1767225600"
    assert outcome["last_headers"]["Sunset"] == "Tue, 30 Jun 2026 00:00:00 GMT"
    assert outcome["noticed"] == exercises.TEAMS


# --- proto breaking-change detector -------------------------------------------------------


def test_proto_breaking_reference_passes():
    assert_passes("interview.proto-breaking")


def by_name(old, new):
    """A plausible mistake: fields matched by name, not number."""
    found = set()
    for before in old.message_type:
        after = {m.name: m for m in new.message_type}[before.name]
        names = {f.name: f for f in after.field}
        for field in before.field:
            if field.name not in names:
                found.add(("removed", before.name, field.number))
            elif names[field.name].type != field.type:
                found.add(("type", before.name, field.number))
    return found


def test_proto_breaking_by_name_reports_a_rename():
    assert_fails("interview.proto-breaking", by_name,
                 "pair 'compatible' (protos/interview/pairs/compatible_*.proto): you reported "
                 "[('removed', 'Order', 2)")


def test_proto_breaking_ignoring_reserved_numbers_fails():
    def ignores_reserved(old, new):
        return {f for f in protodiff.breaking_changes(old, new) if f[0] != "reused"} | {
            ("removed", m.name, f.number)
            for m in old.message_type for f in m.field
            if f.number not in {g.number for n in new.message_type if n.name == m.name
                                for g in n.field}}

    assert_fails("interview.proto-breaking", ignores_reserved,
                 "pair 'compatible' (protos/interview/pairs/compatible_*.proto): you reported "
                 "[('removed', 'Order', 4)]")


def test_proto_breaking_without_nested_messages_misses_one():
    def top_level_only(old, new):
        return {f for f in protodiff.breaking_changes(old, new) if "." not in f[1]}

    assert_fails("interview.proto-breaking", top_level_only,
                 "pair 'retyped' (protos/interview/pairs/retyped_*.proto): you missed "
                 "[('type', 'Order.Line', 2)]")


# --- versioning plan: issue 20's loophole and issue 23's classes --------------------------


def test_versioning_plan_with_deprecation_only_fails():
    # Issue 20: "0 of 200 teams broken" with no Sunset and no Link; announcing is the lesson.
    class DeprecationOnly(exercises.VersioningPlan):
        sunset_after_days = 365  # long enough that no team is broken

        @staticmethod
        def headers(deprecated_at, sunset_at, successor):
            return {"Deprecation": f"@{int(deprecated_at.timestamp())}"}

    assert_fails("interview.versioning-plan", DeprecationOnly, "never announced its sunset")


def test_versioning_plan_without_a_link_to_the_successor_fails():
    class NoLink(exercises.VersioningPlan):
        @staticmethod
        def headers(deprecated_at, sunset_at, successor):
            return {key: value for key, value in exercises.VersioningPlan.headers(
                deprecated_at, sunset_at, successor).items() if key != "Link"}

    assert_fails("interview.versioning-plan", NoLink, "do not say where to go")


def test_versioning_plan_with_a_constant_sunset_date_fails():
    # Issue 23, "constant": a date written once, whatever the plan says.
    class Constant(exercises.VersioningPlan):
        @staticmethod
        def headers(deprecated_at, sunset_at, successor):
            return exercises.VersioningPlan.headers(
                deprecated_at, dt.datetime(2026, 12, 31, tzinfo=dt.UTC), successor)

    assert_fails("interview.versioning-plan", Constant, "but v1 stops answering on")


def test_versioning_plan_with_a_link_of_another_relation_fails():
    # Issue 23, "loose comparison": a Link is not enough, its relation must be successor-version.
    class WrongRel(exercises.VersioningPlan):
        @staticmethod
        def headers(deprecated_at, sunset_at, successor):
            return exercises.VersioningPlan.headers(deprecated_at, sunset_at, successor) | {
                "Link": f'<{successor}>; rel="alternate"'}

    assert_fails("interview.versioning-plan", WrongRel, "do not say where to go")


def test_the_successor_link_is_parsed_by_relation():
    from labsupport.labs.interview.versioning import successor_link
    assert successor_link('</v2>; rel="successor-version"') == "/v2"
    assert successor_link('</docs>; rel="help", </v2>; rel="latest-version successor-version"'
                          ) == "/v2"
    assert successor_link('</v2>; rel="alternate"') is None
    assert successor_link(None) is None


# --- issue 23's "constant" class for the older checks ----------------------------------------


def test_frame_bytes_constant_fails():
    assert_fails("interview.frame-bytes", lambda payload: 6, "a 9-byte message took 15 bytes")


def test_social_api_one_protocol_for_everything_fails():
    everything = {feature: "websocket" for feature in exercises.design.FEATURES}
    assert_fails("interview.social-api", lambda: everything, "feed with websocket")
