"""09's Q1 and Q3 practices: the references pass, plausible wrong answers fail with their lesson."""

from __future__ import annotations

import json

import requests
import sseclient
from exercise_helpers import assert_fails, assert_passes

# --- interview.q1-caching --------------------------------------------------------------------


def test_q1_reference_passes():
    assert_passes("interview.q1-caching")


def test_q1_stub_is_not_attempted():
    assert_fails("interview.q1-caching", lambda session, url, cache: None, "not solved yet")


def test_q1_no_cache_at_all_costs_a_full_body_each_read():
    def plain(session, url, cache):
        return session.get(url, timeout=5).json()

    assert_fails("interview.q1-caching", plain, "carried If-None-Match")


def test_q1_a_copy_kept_for_ever_returns_stale_data():
    # Skipped requirement: no revalidation, the "304" made up locally.
    def forever(session, url, cache):
        if url not in cache:
            cache[url] = session.get(url, timeout=5).json()
        return cache[url]

    assert_fails("interview.q1-caching", forever, "a cached copy may only be returned after")


def test_q1_a_constant_answer_fails():
    assert_fails("interview.q1-caching", lambda session, url, cache: {"name": "Ada Lovelace"},
                 "but the server had")


def test_q1_returning_the_304_itself_fails():
    # Happy path only: a 304 has no body; the kept copy is the answer.
    def no_body_on_304(session, url, cache):
        headers = {"If-None-Match": cache["etag"]} if "etag" in cache else {}
        response = session.get(url, headers=headers, timeout=5)
        cache["etag"] = response.headers.get("ETag", cache.get("etag"))
        return response.json() if response.content else {}

    assert_fails("interview.q1-caching", no_body_on_304, "returned name None")


# --- interview.q3-resume ---------------------------------------------------------------------


def _updates(url, headers=None):
    """(id, n) of each update event at ``url`` until the stream ends or is cut."""
    try:
        with requests.get(url, headers=headers or {}, stream=True, timeout=5) as response:
            for event in sseclient.SSEClient(iter(response)).events():
                if event.event == "update":
                    yield event.id, json.loads(event.data)["data"]["n"]
    except requests.RequestException:
        return


def test_q3_reference_passes():
    assert_passes("interview.q3-resume")


def test_q3_stub_is_not_attempted():
    assert_fails("interview.q3-resume", lambda url, count: None, "not solved yet")


def test_q3_no_reconnect_fails():
    def once(url, count):
        seen = []
        for _, n in _updates(url):
            seen.append(n)
            if len(seen) == count:
                break
        return seen

    assert_fails("interview.q3-resume", once, "when the stream ends, reconnect")


def test_q3_resuming_only_after_a_clean_end_fails_on_the_cut():
    # Happy path only: a stream the server closes ends the loop; a cut one raises.
    def clean_ends_only(url, count):
        seen, last_id = [], None
        for _ in range(20):
            headers: dict[str, str] = {"Last-Event-ID": last_id} if last_id else {}
            with requests.get(url, headers=headers, stream=True, timeout=5) as response:
                for event in sseclient.SSEClient(iter(response)).events():
                    last_id = event.id or last_id
                    if event.event == "update":
                        seen.append(json.loads(event.data)["data"]["n"])
                        if len(seen) == count:
                            return seen
        return seen

    assert_fails("interview.q3-resume", clean_ends_only, "raised ChunkedEncodingError")


def test_q3_reconnect_without_last_event_id_loses_events():
    def fresh(url, count):
        seen = []
        for _ in range(20):
            for _, n in _updates(url):
                if n not in seen:  # dedup by value: it still cannot get back what it missed
                    seen.append(n)
                if len(seen) == count:
                    return seen
        return seen

    assert_fails("interview.q3-resume", fresh, "were lost")


def test_q3_resuming_from_the_first_id_repeats_events():
    def from_first(url, count):
        seen, first = [], None
        for _ in range(20):
            for event_id, n in _updates(url, {"Last-Event-ID": first} if first else None):
                first = first or event_id or None
                seen.append(n)
                if len(seen) == count:
                    return seen
        return seen

    assert_fails("interview.q3-resume", from_first, "arrived twice")


# --- interview.q5-delivery -------------------------------------------------------------------


def test_q5_reference_passes():
    assert_passes("interview.q5-delivery")


def test_q5_stub_is_not_attempted():
    assert_fails("interview.q5-delivery", lambda note, online, push, hold: None,
                 "not solved yet")


def test_q5_pushing_always_loses_what_an_offline_user_missed():
    # Happy path only: every user assumed online.
    def push_always(note, online, push, hold):
        push(f"user-{note['user_id']}", note)

    assert_fails("interview.q5-delivery", push_always, "a push to a closed app is lost")


def test_q5_holding_always_keeps_an_online_user_waiting():
    def hold_always(note, online, push, hold):
        hold(f"user-{note['user_id']}", note)

    assert_fails("interview.q5-delivery", hold_always, "push to a user who is online, at once")


def test_q5_presence_remembered_in_one_process_goes_stale():
    # One-process state: presence looked up once per user and kept in a dict.
    remembered: dict[str, bool] = {}

    def cached(note, online, push, hold):
        client = f"user-{note['user_id']}"
        if remembered.setdefault(client, online(client)):
            push(client, note)
        else:
            hold(client, note)

    assert_fails("interview.q5-delivery", cached, "ask online() for every notification")


def test_q5_pushing_and_holding_both_is_caught_only_if_it_repeats():
    # Belt and braces: harmless here (a push to a closed app is lost), so it passes.
    def both(note, online, push, hold):
        client = f"user-{note['user_id']}"
        push(client, note)
        if not online(client):
            hold(client, note)

    assert_passes("interview.q5-delivery", both)


# --- interview.balancing ---------------------------------------------------------------------


def test_balancing_reference_passes():
    assert_passes("interview.balancing")


def test_balancing_stub_is_not_attempted():
    assert_fails("interview.balancing", lambda addresses: None, "not solved yet")


def test_balancing_every_address_without_round_robin_stays_on_one():
    import grpc
    assert_fails("interview.balancing",
                 lambda addresses: grpc.insecure_channel("ipv4:" + ",".join(addresses)),
                 "default policy, pick_first, keeps to one backend")


def test_balancing_the_first_address_only_stays_on_one():
    import grpc
    assert_fails("interview.balancing", lambda addresses: grpc.insecure_channel(addresses[0]),
                 "reached backend-1")


def test_balancing_behind_a_layer_4_balancer_stays_on_one():
    import grpc

    from labsupport.labs.interview.balancing import RoundRobinTCP

    def behind_l4(addresses):
        balancer = RoundRobinTCP([int(a.rsplit(":", 1)[1]) for a in addresses])
        return grpc.insecure_channel(balancer.address)

    assert_fails("interview.balancing", behind_l4, "one HTTP/2 connection carries every call")
