"""Exercises of notebooks/09-interview-questions.ipynb: each answer is judged by running it.

What one WebSocket message costs (frames of eight sizes measured on the wire
to the chat server), a retry that charges once and retries only what a retry can fix (a live
payment server that loses a response, answers 503 and refuses a body with 422), a
protocol per feature (budgets worked out from costs measured on the labs), a
game update schema (the live game server sends it for a second), a
deprecation plan (client teams simulated against the live v1 server), and a
``.proto`` breaking-change detector (real proto pairs, compiled by protoc).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import time
import uuid
from typing import Any

import requests

from ...engine import NotAttempted, Unmet, cases, exercise, expect
from ..websocket_chat import server as chat
from . import connections, design, evidence, game, idempotency, practice, protodiff, versioning

NOTEBOOK = "09-interview-questions"
__all__ = ["connections", "practice"]  # their checks register on import


# --- 1. what one WebSocket message costs (Q2) -------------------------------------------

def frame_bytes(payload: int) -> int:
    """Bytes on the wire for one text message of ``payload`` bytes from a client (RFC 6455)."""
    if payload <= 125:
        length = 0          # fits in the 7-bit length of the second byte
    elif payload <= 0xFFFF:
        length = 2          # 126, then a 16-bit length
    else:
        length = 8          # 127, then a 64-bit length
    return 2 + length + 4 + payload   # header, extended length, masking key, payload


FRAME_SIZES = (0, 9, 125, 126, 1000, 65535, 65536, 100_000)


@exercise(
    "interview.frame-bytes",
    title="Q2: what one WebSocket message costs on the wire, at any size",
    notebook=NOTEBOOK,
    hints=[
        "A client's frame is 2 bytes of header (FIN, opcode, the MASK bit and a 7-bit "
        "length), a 4-byte masking key, then the payload: the 6 bytes measured above.",
        "The 7-bit length holds 0-125. The value 126 means: the length follows in 2 more "
        "bytes (up to 65,535); 127: in 8 more bytes.",
        "So 2 + 4 + payload, plus 2 bytes from 126 to 65,535 bytes of payload, or plus 8 "
        "from 65,536 up.",
    ],
    reference=frame_bytes,
    timeout=30,
)
def check_frame_bytes(frame_bytes):
    answers = {size: frame_bytes(size) for size in FRAME_SIZES}
    if all(answer is None for answer in answers.values()):
        raise NotAttempted("frame_bytes returns None")
    for size, answer in answers.items():
        expect(isinstance(answer, int) and not isinstance(answer, bool),
               f"frame_bytes({size}) returned {answer!r}: return a whole number of bytes")
    with chat.start(name="interview-frames-check", fresh_data=False,
                    max_size=2 * max(FRAME_SIZES)) as server:
        measured = evidence.client_frame_bytes(server, FRAME_SIZES)
    for size in FRAME_SIZES:
        said, wire = answers[size], measured[size]
        if said == wire:
            continue
        why = ""
        if said == wire - 4:
            why = ": a client masks every frame it sends, with a 4-byte masking key"
        elif size > 0xFFFF and said < wire:
            why = ": above 65,535 bytes the extended length takes 8 bytes (RFC 6455 §5.2)"
        elif size > 125 and said < wire:
            why = (": above 125 bytes the length no longer fits in the first two bytes "
                   "(RFC 6455 §5.2)")
        raise Unmet(f"a {size:,}-byte message took {wire:,} bytes on the wire to the chat "
                    f"server; you said {said:,}{why}")
    return (f"{len(FRAME_SIZES)} sizes from 0 to {max(FRAME_SIZES):,} bytes, each exactly "
            "what the wire carried to the chat server")


# --- 2. a payment POST that is safe to retry -----------------------------------------

def pay(base_url: str, body: dict, attempts: int = 5) -> dict:
    """POST a payment, retrying lost responses and 503s with one Idempotency-Key for every
    attempt and a pause that doubles; any other error is raised at once."""
    key = str(uuid.uuid4())
    for attempt in range(attempts):
        if attempt:
            pause = 0.1 * 2 ** (attempt - 1)           # 100, 200, 400 ms ...
            time.sleep(pause / 2 + random.uniform(0, pause / 2))   # ... half of it jittered
        try:
            response = requests.post(f"{base_url}/api/payments", json=body, timeout=5,
                                     headers={"Idempotency-Key": key})
        except (requests.ConnectionError, requests.Timeout):
            continue
        if response.status_code in (409, 503):   # the first attempt still running; overloaded
            continue
        response.raise_for_status()               # 400, 422 ...: the same answer every time
        return response.json()
    raise ConnectionError(f"no answer after {attempts} attempts")


#: Bodies the server refuses with 422 whatever the attempt: drawn by the check.
REFUSED_BODIES: dict[str, dict[str, Any]] = {
    "an amount of 0 cents": {"amount_cents": 0, "to": "bob"},
    "a negative amount": {"amount_cents": -500, "to": "bob"},
    "an amount over the limit": {"amount_cents": 5_000_000, "to": "bob"},
    "no account to pay": {"amount_cents": 700},
    "an unknown field": {"amount_cents": 700, "to": "bob", "currency": "EUR"},
}
MIN_BACKOFF = 0.1   # seconds, in all, from each 503 to the next attempt (two or three 503s)


def _attempts_for(server: idempotency.PaymentsHandle, body: dict) -> list[float]:
    with server.ledger.lock:
        return [when for when, sent in server.ledger.attempts if sent == body]


@exercise(
    "interview.safe-retry",
    title="Retry a payment POST without charging twice, and only when a retry can help",
    notebook=NOTEBOOK,
    hints=[
        "A lost response does not mean the payment failed: the server may have charged. "
        "Retry, but let the server recognise the retry.",
        "Make one key (uuid.uuid4()) before the first attempt and send it in the "
        "Idempotency-Key header of every attempt.",
        "Catch requests.ConnectionError (and requests.Timeout) around the POST; on those and "
        "on a 503 (or a 409: the first attempt still running) sleep, doubling the pause each "
        "time (100 ms, 200 ms, ...), and try again. Any other error (400, 422) will be answered "
        "the same every time: response.raise_for_status() at once.",
    ],
    reference=pay,
    timeout=30,
)
def check_safe_retry(pay):
    draw = cases()
    body = {"amount_cents": draw.randrange(100, 10_000), "to": "bob"}
    busy = draw.choice((2, 3))
    refused_as = draw.choice(sorted(REFUSED_BODIES))
    refused = REFUSED_BODIES[refused_as]
    with idempotency.start(name="interview-payments-check", lose_responses=1) as server:
        try:
            payment = pay(server.url, body)
        except requests.RequestException as exc:
            raise Unmet(f"the server charged, then the connection dropped before the response; "
                        f"pay() raised {type(exc).__name__} instead of retrying") from None
        if payment is None and not server.ledger.charges:
            raise NotAttempted("pay returns None")
        charges = len(server.ledger.charges)
        expect(charges == 1, f"one pay() call charged {charges} times: the retry was not "
                             "recognised as the same payment (send the same Idempotency-Key "
                             "on every attempt)")
        expect(isinstance(payment, dict) and payment.get("id") == server.ledger.charges[0]["id"],
               f"return the payment the server answered (its JSON), got {payment!r}")
        second = pay(server.url, {"amount_cents": 100, "to": "carol"})
        expect(len(server.ledger.charges) == 2 and second.get("to") == "carol",
               "a second, different payment must be charged too: use a new key per payment, "
               "not one key for ever")

        third_body = {"amount_cents": draw.randrange(100, 10_000), "to": "dave"}
        server.unavailable(busy)
        try:
            third = pay(server.url, third_body)
        except Exception as exc:
            raise Unmet(f"the server answered 503 (overloaded) {busy} times, then would have "
                        f"charged; pay() raised {type(exc).__name__}: a 503 says 'try again "
                        "later', so wait and retry") from None
        tries = _attempts_for(server, third_body)
        expect(isinstance(third, dict) and third.get("to") == "dave",
               f"after {busy} answers of 503, return the payment the server charged, got "
               f"{third!r}")
        with server.ledger.lock:
            busy_at = server.ledger.busy_answers[-busy:]
        waited = sum(later - sent for sent, later in zip(busy_at, tries[1:], strict=False))
        expect(waited >= MIN_BACKOFF,
               f"the server answered 503 {busy} times and the retries came {waited * 1000:.0f} "
               "ms after those answers in all: an overloaded server retried at once gets "
               "busier; pause before each retry, doubling the pause (100 ms, 200 ms, ...)")

        try:
            answered = pay(server.url, refused)
        except Exception:
            answered = None
            raised = True
        else:
            raised = False
        tries = _attempts_for(server, refused)
        expect(len(tries) == 1,
               f"a body with {refused_as} was answered 422 (validation failed) and pay() sent "
               f"it {len(tries)} times: a 422 is answered the same every time; retry only "
               "lost connections and 503s (or 409s), and raise on the others")
        expect(raised, f"a body with {refused_as} was answered 422, and pay() returned "
                       f"{answered!r} as if it were a payment: raise (response.raise_for_status())")
    return (f"a lost response retried with the same key: charged once; {busy} answers of 503 "
            f"retried after {waited * 1000:.0f} ms in all; a 422 for {refused_as} sent once "
            "and raised")


# --- 3. a protocol per feature (Q4) ----------------------------------------------------

def choose_protocols() -> dict[str, str]:
    """Q4: the protocol for each feature of the social-media API."""
    return {
        "feed": "rest",                 # a cacheable GET: the CDN answers most loads
        "profile-screen": "graphql",    # one round trip for the user and their orders
        "live-comments": "sse",         # one-way push to many viewers
        "chat": "websocket",            # both directions, small frames
        "notifications": "sse",         # one-way push, occasional
    }


@exercise(
    "interview.social-api",
    title="Q4: a protocol per feature, within each feature's budget",
    notebook=NOTEBOOK,
    hints=[
        "Read each feature's budget: which direction does data flow, how many clients, how "
        "many requests or bytes a second are allowed?",
        "Only a GET can be answered by a CDN; a push protocol needs no request per update, "
        "but long polling makes one per delivery.",
        "The chat budget is about bytes from clients: compare a POST with a WebSocket frame, "
        "both measured on the labs.",
    ],
    reference=choose_protocols,
    timeout=30,
)
def check_social_api(choose_protocols):
    answer = choose_protocols()
    if answer is None:
        raise NotAttempted("choose_protocols returns None")
    expect(isinstance(answer, dict), f"return a dict feature -> protocol, got {answer!r}")
    if answer and all(value is ... for value in answer.values()):
        raise NotAttempted("choose_protocols still returns ... for every feature")
    missing = [f for f in design.FEATURES if f not in answer]
    expect(not missing, f"choose a protocol for {', '.join(missing)}")
    costs = design.measure_costs()
    for feature in design.FEATURES:
        protocol = str(answer[feature]).strip().lower()
        ok, why = design.judge(feature, protocol, costs)
        expect(ok, f"{feature} with {protocol}: {why}")
    return "every feature within its budget, with costs measured on the labs"


# --- 4. a game update schema and rate (Q6) ---------------------------------------------

class GameCodec:
    """Q6: delta updates, positions in tenths, 10 a second."""

    updates_per_second = 10

    @staticmethod
    def encode(previous: dict, current: dict) -> str:
        """The players whose position changed since ``previous``, as [id, x*10, y*10]."""
        changed = [[id, round(x * 10), round(y * 10)] for id, (x, y) in current.items()
                   if id not in previous
                   or (round(x * 10), round(y * 10)) != tuple(round(v * 10) for v in previous[id])]
        return json.dumps(changed, separators=(",", ":"))

    @staticmethod
    def decode(previous: dict, message: str) -> dict:
        """``previous`` with the changes of one message applied."""
        state = dict(previous)
        for id, x, y in json.loads(message):
            state[id] = (x / 10, y / 10)
        return state


BYTES_BUDGET = 2000        # payload bytes a second, per client
STALENESS_BUDGET = 0.1     # seconds between updates (the interpolation buffer)
POSITION_TOLERANCE = 0.5   # units


@exercise(
    "interview.game-update",
    title="Q6: an update schema and rate within bandwidth and freshness budgets",
    notebook=NOTEBOOK,
    hints=[
        f"Two budgets: at most {BYTES_BUDGET} bytes/s per client, and an update at least every "
        f"{STALENESS_BUDGET * 1000:.0f} ms. Sending full state 20 times a second breaks the "
        "first; sending rarely breaks the second.",
        "Send only what changed since the previous message (a delta): players standing still "
        "cost nothing.",
        "Positions do not need 15 digits: integers in tenths of a unit are precise enough "
        f"(the check allows {POSITION_TOLERANCE} units) and much shorter in JSON.",
    ],
    reference=GameCodec,
    timeout=20,
)
def check_game_update(codec):
    rate = getattr(codec, "updates_per_second", ...)
    if rate is ... or codec.encode({}, {"p1": (1.0, 2.0)}) is None:
        raise NotAttempted("GameCodec is still the stub")
    expect(isinstance(rate, int) and rate > 0 and game.TICK_RATE % rate == 0,
           f"updates_per_second must divide the server's {game.TICK_RATE} ticks a second "
           f"(1, 2, 4, 5, 10 or 20), got {rate!r}")
    expect(1 / rate <= STALENESS_BUDGET,
           f"{rate} updates a second: a client shows positions up to {1000 / rate:.0f} ms old; "
           f"the budget is {STALENESS_BUDGET * 1000:.0f} ms")
    seconds = 1.0
    with game.start(name="interview-game-check", encoder=codec.encode,
                    send_every=game.TICK_RATE // rate) as server:
        messages = game.receive(f"{server.ws_url}?mode=custom", seconds)
        sent = list(server.game.sent)
        errors = list(server.game.errors)
    expect(not errors, f"your encode raised on the server: {errors[:1]}")
    expect(messages, "the client received no update in 1 s")
    size = sum(len(m.encode() if isinstance(m, str) else m) for m in messages) / seconds
    expect(size <= BYTES_BUDGET, f"{size:,.0f} bytes/s per client (measured over {seconds:g} s, "
                                 f"{len(messages)} messages); the budget is {BYTES_BUDGET:,}")
    state: dict = {}
    for n, (message, (tick, truth)) in enumerate(zip(messages, sent, strict=False), 1):
        state = codec.decode(state, message)
        expect(isinstance(state, dict), f"decode must return a dict, got {state!r}")
        for id, (x, y) in truth.items():
            expect(id in state, f"after message {n} (tick {tick}) player {id} is missing from "
                                "your decoded state")
            got = state[id]
            off = math.hypot(got[0] - x, got[1] - y)
            expect(off <= POSITION_TOLERANCE,
                   f"after message {n} (tick {tick}) you decoded {id} at "
                   f"({got[0]:.1f}, {got[1]:.1f}); the server had ({x:.1f}, {y:.1f})")
    return (f"{size:,.0f} bytes/s per client, an update every {1000 / rate:.0f} ms, every "
            f"position right within {POSITION_TOLERANCE} units")


# --- 5. a deprecation plan (Q7) ------------------------------------------------------------

class VersioningPlan:
    """Q7: deprecate v1 the day v2 ships, sunset it six months later, say so in headers."""

    deprecate_after_days = 0
    sunset_after_days = 180

    @staticmethod
    def headers(deprecated_at: dt.datetime, sunset_at: dt.datetime, successor: str) -> dict:
        """RFC 9745 Deprecation (@ + Unix seconds), RFC 8594 Sunset (an HTTP-date), Link."""
        from email.utils import format_datetime
        return {
            "Deprecation": f"@{int(deprecated_at.timestamp())}",
            "Sunset": format_datetime(sunset_at.astimezone(dt.UTC), usegmt=True),
            "Link": f'<{successor}>; rel="successor-version"',
        }


TEAMS = 200
BROKEN_BUDGET = 0.02        # share of client teams still on v1 at its sunset
COST_BUDGET_DAYS = 365      # days v1 may keep running after v2 ships
UNWARNED_DELAY = 90         # days a team puts off a migration that has no date


def team_efforts(seed: int = 9) -> list[tuple[int, int]]:
    """(weekday each team calls v1, days of work its migration takes), for every team."""
    rng = random.Random(seed)
    return [(rng.randrange(7), min(300, round(rng.lognormvariate(math.log(40), 0.6))))
            for _ in range(TEAMS)]


def simulate_deprecation(plan: Any, base_day: dt.datetime) -> dict[str, Any]:
    """Run the client teams against a live v1/v2 server that follows ``plan``; what happened."""
    release = base_day
    lifecycle = versioning.Lifecycle(
        release + dt.timedelta(days=plan.deprecate_after_days),
        release + dt.timedelta(days=plan.sunset_after_days))
    sunset_day = plan.sunset_after_days
    seen: dict[int, dict] = {}
    with versioning.start(lifecycle, name="interview-versions-check", headers=plan.headers,
                          clock=versioning.Clock(release)) as server:
        def on(day: int) -> dict:
            if day not in seen:
                server.clock.now = release + dt.timedelta(days=day)
                response = requests.get(f"{server.url}/api/v1/users/101", timeout=5)
                seen[day] = versioning.describe(response) | {
                    "raw": {k: response.headers.get(k) for k in ("Deprecation", "Sunset",
                                                                 "Link")}}
            return seen[day]

        broken, noticed = 0, 0
        for weekday, effort in team_efforts():
            done_by = None
            for day in range(weekday, sunset_day, 7):
                answer = on(day)
                if answer["deprecated"] is None:
                    continue
                noticed += 1
                start = day if answer["sunset"] is not None else day + UNWARNED_DELAY
                done_by = start + effort
                break
            if done_by is None or done_by > sunset_day:
                broken += 1
        last = on(max(0, sunset_day - 1))
        after = on(sunset_day)
    return {"broken": broken, "noticed": noticed, "requests": len(seen),
            "last_headers": last["raw"], "status_after_sunset": after["status"]}


@exercise(
    "interview.versioning-plan",
    title="Q7: a deprecation plan that breaks at most 2% of clients",
    notebook=NOTEBOOK,
    hints=[
        "Client teams only notice a Deprecation header they can parse: RFC 9745 wants '@' and "
        "Unix seconds, e.g. '@1767225600'.",
        "Sunset is an HTTP-date (RFC 8594), e.g. 'Thu, 01 Jan 2026 00:00:00 GMT': "
        "email.utils.format_datetime(when, usegmt=True) writes one. And a Link header with "
        "rel=\"successor-version\" says where to go.",
        "Teams need time: most migrations take one to three months, a few much longer. Give "
        f"them enough, but no more than {COST_BUDGET_DAYS} days in all.",
    ],
    reference=VersioningPlan,
    timeout=30,
)
def check_versioning_plan(plan):
    deprecate = getattr(plan, "deprecate_after_days", ...)
    sunset = getattr(plan, "sunset_after_days", ...)
    if deprecate is ... or sunset is ...:
        raise NotAttempted("VersioningPlan is still the stub")
    if not (isinstance(deprecate, int) and isinstance(sunset, int) and min(deprecate, sunset) >= 0):
        raise Unmet(f"days must be whole numbers from 0, got {(deprecate, sunset)}")
    expect(sunset > deprecate, f"the sunset (day {sunset}) must come after the deprecation "
                               f"(day {deprecate})")
    expect(sunset <= COST_BUDGET_DAYS, f"v1 runs {sunset} days beside v2; the budget is "
                                       f"{COST_BUDGET_DAYS} days of running both")
    probe = plan.headers(dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                         dt.datetime(2026, 7, 1, tzinfo=dt.UTC), "/api/v2/users/101")
    if probe is None:
        raise NotAttempted("headers returns None")
    outcome = simulate_deprecation(plan, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    raw = outcome["last_headers"]
    expect(outcome["noticed"] > 0,
           f"none of {TEAMS} client teams noticed the deprecation: they could not read your "
           f"Deprecation header {raw['Deprecation']!r} (RFC 9745: '@' and Unix seconds)")
    share = outcome["broken"] / TEAMS
    expect(share <= BROKEN_BUDGET,
           f"{outcome['broken']} of {TEAMS} client teams were still on v1 at its sunset "
           f"({share:.0%}; budget {BROKEN_BUDGET:.0%}); your Sunset header was "
           f"{raw['Sunset']!r}" + ("" if versioning.parse_sunset(raw["Sunset"]) else
                                    ", which is not an HTTP-date, so teams saw no deadline"))
    expect(outcome["status_after_sunset"] == 410, "after the sunset v1 must answer 410")
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    announced = versioning.parse_sunset(raw["Sunset"])
    expect(announced is not None,
           f"v1 deprecated itself but never announced its sunset (Sunset: {raw['Sunset']!r}): "
           f"without a date, client teams put the migration off and are broken on the day it "
           f"stops; send an RFC 8594 Sunset header (an HTTP-date)")
    stops = base + dt.timedelta(days=sunset)
    expect(announced is not None and abs(announced - stops) < dt.timedelta(days=1),
           f"your Sunset header announces {raw['Sunset']!r}, but v1 stops answering on "
           f"{stops:%d %b %Y}: announce the date it really stops (headers gets it as sunset_at)")
    successor = versioning.successor_link(raw["Link"])
    expect(successor == "/api/v2/users/101",
           f"v1's responses do not say where to go (Link: {raw['Link']!r}): send "
           f"Link: <successor>; rel=\"successor-version\" (RFC 5829), the successor "
           f"headers is given, so a team finds v2 from the response itself")
    return (f"{outcome['broken']} of {TEAMS} teams broken at the sunset on day {sunset}, "
            f"{outcome['requests']} requests to the live server")


# --- 6. a .proto breaking-change detector ---------------------------------------------------

@exercise(
    "interview.proto-breaking",
    title="Q7: find the breaking changes between two .proto versions",
    notebook=NOTEBOOK,
    hints=[
        "The wire carries field numbers, never names: index each message's fields by "
        "number (field.number) in both versions.",
        "A number that disappeared is 'removed' unless the new version reserves it "
        "(message.reserved_range: start inclusive, end exclusive).",
        "Same number: same name but other type or cardinality is 'type'; another name and "
        "another type is 'reused'; a number the old version reserved, used again, is 'reused'. "
        "A rename alone is safe on the binary wire, so it is not reported here (it still breaks "
        "the JSON mapping and generated code: notebook 03, section 2).",
        "Walk nested messages too (message.nested_type), naming them 'Outer.Inner'.",
    ],
    reference=protodiff.breaking_changes,
)
def check_proto_breaking(breaking_changes):
    for pair in protodiff.pairs():
        old = protodiff.descriptor(protodiff.PAIRS_DIR / f"{pair}_old.proto")
        new = protodiff.descriptor(protodiff.PAIRS_DIR / f"{pair}_new.proto")
        found = breaking_changes(old, new)
        if found is None:
            raise NotAttempted("breaking_changes returns None")
        found = {tuple(f) for f in found}
        want = protodiff.expected(pair)
        extra, missed = found - want, want - found
        expect(not extra, f"pair {pair!r} (protos/interview/pairs/{pair}_*.proto): you "
                          f"reported {sorted(extra)}, which is not a breaking change there")
        expect(not missed, f"pair {pair!r} (protos/interview/pairs/{pair}_*.proto): you "
                           f"missed {sorted(missed)}")
    return f"all {len(protodiff.pairs())} real proto pairs judged right"
