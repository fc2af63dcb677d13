"""Exercises of notebooks/10-http-versions.ipynb, each judged by a measurement it makes live."""

from __future__ import annotations

from typing import Any

import hpack

from ...engine import NotAttempted, Unmet, cases, exercise, expect
from ...wire import LossPattern
from . import hol
from .compression import REQUEST_HEADERS
from .h2client import H2Client
from .handshakes import all_handshakes
from .replay import replay_early_request
from .server import start

NOTEBOOK = "10-http-versions"
CHECK_SERVER = "http-versions-check"


def _not_filled(answer: Any) -> bool:
    return answer is None or answer is Ellipsis


# --- 1. round trips to the first byte --------------------------------------------

HANDSHAKES = {"TLS 1.2": "TCP + TLS 1.2", "TLS 1.3": "TCP + TLS 1.3", "QUIC": "QUIC (1-RTT)",
              "0-RTT": "QUIC 0-RTT (resumed)"}
WHY = {
    "TLS 1.2": "TCP's SYN/SYN-ACK, then TLS 1.2's two round trips (hellos and certificate; "
               "key exchange and Finished), then the request",
    "TLS 1.3": "TCP's SYN/SYN-ACK, then TLS 1.3's one (the client's Finished travels with the "
               "request)",
    "QUIC": "QUIC does the transport and the TLS 1.3 handshake in one round trip, then the "
            "request goes with the client's Finished",
    "0-RTT": "a returning client sends the request in its very first flight (early data), "
             "so the answer comes with the server's first flight",
}


def predicted_round_trips() -> dict[str, int]:
    """Round trips before the first byte of the response, for each way to connect."""
    return {"TLS 1.2": 4, "TLS 1.3": 3, "QUIC": 2, "0-RTT": 1}


@exercise(
    "http-versions.round-trips",
    title="Count the round trips to the first byte of each handshake",
    notebook=NOTEBOOK,
    hints=[
        "Count client flights that the server must answer before the response can start: "
        "the request itself is one of them.",
        "TCP has its own handshake before TLS can say a word: SYN, SYN-ACK. QUIC has no "
        "separate transport handshake.",
        "TLS 1.2 needs two round trips, TLS 1.3 one; QUIC carries TLS 1.3 inside its first "
        "packets; 0-RTT sends the request before the handshake is over.",
    ],
    reference=predicted_round_trips,
    timeout=30,
)
def check_round_trips(predicted_round_trips):
    predicted = predicted_round_trips()
    if _not_filled(predicted) or (isinstance(predicted, dict)
                                  and any(_not_filled(v) for v in predicted.values())):
        raise NotAttempted("fill in a number for each handshake")
    expect(isinstance(predicted, dict) and set(predicted) == set(HANDSHAKES),
           f"return a dict with the keys {sorted(HANDSHAKES)}; got {predicted!r}")
    for key, value in predicted.items():
        expect(type(value) is int, f"{key}: give a whole number of round trips, not {value!r}")
    with start(name=CHECK_SERVER) as server:
        measured = {h.name: h.round_trips for h in all_handshakes(server.port)}
    for key, name in HANDSHAKES.items():
        got = measured[name]
        expect(predicted[key] == got, f"{key}: you said {predicted[key]}, the wire shows {got} "
                                      f"round trips to the first byte: {WHY[key]}")
    return ", ".join(f"{k} {measured[n]}" for k, n in HANDSHAKES.items()) + \
        " round trips, as measured flight by flight"


# --- 2. which requests may ride in 0-RTT -------------------------------------------------

def allow_early_data(method: str, path: str) -> bool:
    """Whether the server should act on this request if it arrives in 0-RTT early data."""
    return method in ("GET", "HEAD", "OPTIONS")


EARLY_REQUESTS = [("GET", "/"), ("GET", "/bytes/100"), ("POST", "/orders"), ("PATCH", "/orders/7")]


@exercise(
    "http-versions.early-data",
    title="Decide which requests a server may run from 0-RTT early data",
    notebook=NOTEBOOK,
    hints=[
        "Early data can be replayed: whatever you allow may run twice (or more).",
        "A request is safe to run twice when running it again changes nothing on the "
        "server: RFC 9110's safe and idempotent methods.",
        "Allow GET (and HEAD, OPTIONS); refuse POST (the server answers 425 Too Early and "
        "the client retries after the handshake). Refusing everything throws 0-RTT away.",
    ],
    reference=allow_early_data,
    timeout=40,
)
def check_early_data(allow_early_data):
    answers = {request: allow_early_data(*request) for request in EARLY_REQUESTS}
    if any(_not_filled(a) for a in answers.values()):
        raise NotAttempted("allow_early_data returns nothing yet")
    for (method, path), answer in answers.items():
        expect(isinstance(answer, bool), f"{method} {path}: answer True or False, not {answer!r}")
    for (method, path), answer in answers.items():
        replayed = replay_early_request(single_use_tickets=False, method=method, path=path)
        expect(replayed.early_data_accepted and replayed.ran_on_b,
               "the check's replay did not reach the second node; please re-run it")
        harmful = replayed.orders_on_b > 0
        if answer and harmful:
            raise Unmet(f"you allow {method} {path} in early data; replayed to a second node it "
                        f"ran again and changed an order a second time: refuse it (425 Too "
                        f"Early). Judge by the method: only the safe ones may run twice")
        if not answer and not harmful:
            raise Unmet(f"you refuse {method} {path}; replayed, it ran again and changed "
                        f"nothing, so refusing it only costs the client the round trip 0-RTT "
                        f"saves")
    return "each request replayed on a second node: you allow exactly the harmless ones"


# --- 3. HPACK: the tenth request --------------------------------------------------

PSEUDO = [(":method", "GET"), (":scheme", "http"), (":authority", "127.0.0.1:8000"),
          (":path", "/")]


def tenth_request_bytes(headers: list[tuple[str, str]]) -> int:
    """Bytes of HPACK header block h2 sends for the tenth identical GET / with ``headers``."""
    encoder = hpack.Encoder()
    fields = []
    for name, value in PSEUDO + headers:
        # h2 never indexes credentials, nor cookies short enough to guess (RFC 7541 7.1.3)
        secret = name == "authorization" or (name == "cookie" and len(value) < 20)
        fields.append(hpack.NeverIndexedHeaderTuple(name, value) if secret
                      else hpack.HeaderTuple(name, value))
    block = b""
    for _ in range(10):
        block = encoder.encode(fields)
    return len(block)


HEADER_SETS = {
    "the browser's headers": REQUEST_HEADERS,
    "the same without authorization": [h for h in REQUEST_HEADERS if h[0] != "authorization"],
    "a short cookie and a longer token": [
        ("accept", "application/json"), ("cookie", "theme=dark"),
        ("authorization", "Bearer " + "k" * 160)],
}


def measured_tenth(port: int, headers: list[tuple[str, str]]) -> int:
    """The HPACK block of the tenth of ten identical requests, as h2 wrote it."""
    with H2Client(port) as client:
        for _ in range(10):
            client.fetch("/", headers)
        return client.header_blocks[-1]


def _drawn_header_set() -> dict[str, list[tuple[str, str]]]:
    """Headers the learner has not seen: a cookie on either side of h2's 20-byte rule."""
    draw = cases()
    cookie = "id=" + "".join(draw.choices("abcdef0123456789", k=draw.randint(10, 24)))
    headers = [("accept", draw.choice(["text/html", "application/json", "*/*"])),
               ("user-agent", f"lab-client/{draw.randint(1, 99)}.{draw.randint(0, 9)}"),
               ("cookie", cookie)]
    if draw.random() < 0.5:
        headers.append(("authorization", "Bearer " + "t" * draw.randint(20, 80)))
    return {f"headers drawn for this check ({len(cookie)}-byte cookie)": headers}


@exercise(
    "http-versions.hpack-tenth",
    title="Predict the HPACK bytes of the tenth identical request",
    notebook=NOTEBOOK,
    hints=[
        "After the first request every header is in the dynamic table, and an indexed "
        "header costs one byte. Not every header is allowed in the table, though.",
        "h2 sends authorization, and cookies shorter than 20 bytes, as 'never indexed' "
        "literals (RFC 7541 7.1.3): they are spelled out on every request.",
        "hpack.Encoder() keeps a table across encode() calls: encode the fields (pseudo-headers "
        "first) ten times, wrapping secrets in hpack.NeverIndexedHeaderTuple, and measure the "
        "last block.",
    ],
    reference=tenth_request_bytes,
    timeout=30,
)
def check_hpack_tenth(tenth_request_bytes):
    first = tenth_request_bytes(list(REQUEST_HEADERS))
    if _not_filled(first):
        raise NotAttempted("tenth_request_bytes returns nothing yet")
    with start(name=CHECK_SERVER) as server:
        for what, headers in {**HEADER_SETS, **_drawn_header_set()}.items():
            predicted = tenth_request_bytes(list(headers))
            expect(type(predicted) is int, f"return a number of bytes, not {predicted!r}")
            got = measured_tenth(server.cleartext_port, list(headers))
            expect(predicted == got,
                   f"with {what}, you predicted {predicted} bytes; h2 wrote a {got}-byte "
                   f"header block for the tenth request"
                   + (" (each header is 1 byte once indexed: what is never indexed?)"
                      if predicted < got else ""))
    return "your predictions match the HEADERS frames h2 wrote, byte for byte"


# --- 4. a version for a lossy mobile link ---------------------------------------------

def pick_version(loss_rate: float, streams: int, udp_allowed: bool) -> str:
    """The HTTP version for an app fetching ``streams`` resources at once over a link."""
    if not udp_allowed:
        return "HTTP/2"
    return "HTTP/3"


SCENARIOS = [(0.02, 8, True), (0.02, 8, False), (0.0, 4, True)]
VERSIONS = ("HTTP/1.1", "HTTP/2", "HTTP/3")


def _judge(server: Any, loss_rate: float, streams: int, udp_allowed: bool
           ) -> tuple[set[str], str]:
    """The versions the measurement supports for a scenario, and why."""
    loss = LossPattern(loss_rate, seed=16)   # its first loss comes before any stream can end
    h2 = hol.http2_under_loss(server, loss, streams=streams, size=30_000)
    if not udp_allowed:
        try:
            hol.http3_under_loss(server, loss, streams=streams, size=30_000, timeout=1.0,
                                 blocked=True)
        except TimeoutError:
            return {"HTTP/2"}, ("with UDP blocked, the QUIC handshake got no answer in 1 s: "
                                "HTTP/3 cannot start; HTTP/2 over TCP finished its "
                                f"{streams} streams")
        raise Unmet("the check could not block UDP; please re-run it")
    h3 = hol.http3_under_loss(server, loss, streams=streams, size=30_000)
    if h2.losses == h3.losses == 0:
        return {"HTTP/2", "HTTP/3"}, (f"no packet was lost: both finished their {streams} "
                                      "streams untouched, too close to call")
    if h2.held_up == h3.held_up:
        return {"HTTP/2", "HTTP/3"}, (f"at {loss_rate:.0%} loss no stream was held up more "
                                      "under one than the other: too close to call")
    better = "HTTP/3" if h3.held_up < h2.held_up else "HTTP/2"
    return {better}, (f"at {loss_rate:.0%} loss with {streams} streams, losses held up "
                      f"{h2.held_up} of {streams} HTTP/2 streams and {h3.held_up} of "
                      f"{streams} HTTP/3 streams")


@exercise(
    "http-versions.pick-version",
    title="Choose a version for a lossy mobile link, judged by measured streams",
    notebook=NOTEBOOK,
    hints=[
        "Answer with one of 'HTTP/1.1', 'HTTP/2', 'HTTP/3'.",
        "Under loss, count how many streams each lost packet holds up on one TCP connection, "
        "and on one QUIC connection.",
        "Some networks (corporate firewalls, some hotel Wi-Fi) let no UDP through: what can "
        "HTTP/3 do then? Browsers fall back for exactly this reason.",
    ],
    reference=pick_version,
    timeout=60,
)
def check_pick_version(pick_version):
    answers = {s: pick_version(*s) for s in SCENARIOS}
    if any(_not_filled(a) for a in answers.values()):
        raise NotAttempted("pick_version returns nothing yet")
    for answer in answers.values():
        expect(answer in VERSIONS, f"answer with one of {VERSIONS}, not {answer!r}")
    with start(name=CHECK_SERVER) as server:
        for scenario, answer in answers.items():
            accepted, why = _judge(server, *scenario)
            loss_rate, streams, udp = scenario
            expect(answer in accepted,
                   f"for {loss_rate:.0%} loss, {streams} streams, UDP "
                   f"{'allowed' if udp else 'blocked'} you chose {answer}: {why}")
    return "each choice is what the measured streams support"
