"""Exercises of notebooks/08-choosing-a-protocol.ipynb, each judged by a measurement.

A pick is judged by running the scenario with the protocol picked and with its
rivals, and showing what the wrong pick costs; never by matching words.
"""

from __future__ import annotations

from dataclasses import fields

import requests

from ... import database
from ...engine import NotAttempted, Unmet, cases, exercise, expect
from ...harness import serve_wsgi
from ...wire import WireTap
from ..rest import server as rest
from . import experiments
from .driver import Run
from .picker import Pick, Requirements

__all__ = ["Pick", "GAME", "PUBLIC_CATALOGUE"]

NOTEBOOK = "08-choosing-a-protocol"
PROTOCOL_NAMES = ("REST", "GraphQL", "gRPC", "WebSockets", "SSE", "Long Polling")
REQUIREMENT_NAMES = tuple(f.name for f in fields(Requirements))


def _valid_pick(answer: object) -> Pick:
    if answer is None or answer is Ellipsis:
        raise NotAttempted("your function returns None; return a Pick(protocol, decided_by)")
    if not isinstance(answer, Pick):
        raise Unmet(f"return a Pick(protocol, decided_by), not {answer!r}")
    expect(answer.protocol in PROTOCOL_NAMES,
           f"protocol {answer.protocol!r} is not one of {', '.join(PROTOCOL_NAMES)}")
    expect(answer.decided_by in REQUIREMENT_NAMES,
           f"decided_by {answer.decided_by!r} is not a requirement; the requirements are "
           f"{', '.join(REQUIREMENT_NAMES)}")
    return answer


# --- 1. bytes on the wire ------------------------------------------------------------

def bytes_per_read(server_port: int, reads: int) -> float:
    """Bytes on the wire, both directions, per GET /api/v1/users/101 through a WireTap."""
    with WireTap(server_port) as tap, requests.Session() as http:
        for _ in range(reads):
            http.get(f"{tap.url}/api/v1/users/101", timeout=5)
    return tap.total_bytes / reads


@exercise(
    "choosing.wire-bytes",
    title="Count a REST read's bytes on the wire with a WireTap",
    notebook=NOTEBOOK,
    hints=[
        "Open a WireTap(server_port) and send the requests to tap.url instead of the server.",
        "tap.total_bytes counts both directions: the request as well as the response.",
        "len(response.content) is the body alone: the status line and headers are bytes too.",
    ],
    reference=bytes_per_read,
)
def check_wire_bytes(bytes_per_read):
    draw = cases()
    paddings = draw.sample(range(0, 1200, 40), 2)
    while abs(paddings[0] - paddings[1]) < 300:
        paddings[1] = (paddings[1] + 400) % 1200
    summary = ""
    for padding, reads in zip(paddings, draw.sample(range(1, 8), 2), strict=True):
        summary = _check_one_configuration(bytes_per_read, padding, reads) or summary
    return summary


def _padded_server(padding: int):
    """The REST lab on the learner's data, each response carrying ``padding`` more header
    bytes: a configuration the learner has not seen, so only a measurement can be right."""
    database.ready(False)
    app = rest.create_app(rate_limit=None)

    def pad(response):
        if padding:
            response.headers["X-Check-Padding"] = "x" * padding
        return response

    app.after_request(pad)
    return serve_wsgi("choosing-check-rest", app)


def _check_one_configuration(bytes_per_read, padding: int, reads: int) -> str:
    case = f"bytes_per_read(port, reads={reads}) on a server adding {padding} B of headers"
    with _padded_server(padding) as server:
        answer = bytes_per_read(server.port, reads)
        if answer is None:
            raise NotAttempted("bytes_per_read returns None")
        expect(isinstance(answer, int | float) and answer > 0,
               f"return the bytes per read as a number, got {answer!r}")
        with WireTap(server.port) as tap, requests.Session() as http:
            for _ in range(reads):
                body = len(http.get(f"{tap.url}/api/v1/users/101", timeout=5).content)
        wire, down = tap.total_bytes / reads, tap.bytes_down / reads
    if abs(answer - body) < 2:
        raise Unmet(f"you counted {answer:.0f} B per read: the body alone; the wire carried "
                    f"{wire:.0f} B (the request, the status line and the headers count too)")
    if abs(answer - down) <= 0.03 * down:
        raise Unmet(f"you counted {answer:.0f} B per read: the response only; the request's "
                    f"{wire - down:.0f} B cross the wire too ({wire:.0f} B in all)")
    expect(abs(answer - wire) <= 0.03 * wire,
           f"{case}: you counted {answer:.0f} B per read; a WireTap measured {wire:.0f} B "
           "(measure each time, through the tap, and divide by the reads you made)")
    return f"{answer:.0f} B per read on the wire, {body} B of them the JSON body"


# --- 2. predict, then measure -----------------------------------------------------

def predict_overhead() -> float:
    """Long polling's bytes per live update ÷ a WebSocket's, predicted from the formats."""
    update = 60                       # the JSON of one small update
    poll_request = 190                # GET line, Host, User-Agent, Accept... of the next poll
    poll_response_head = 160          # status line, Server, Date, Content-Type, Content-Length
    envelope = 120                    # the notification's id, type, timestamp; cursor, has_more
    # The measurement sends WebSocket frames uncompressed, like every other protocol there.
    websocket_frame = 2 + update
    return (poll_request + poll_response_head + envelope + update) / websocket_frame


@exercise(
    "choosing.predict-ratio",
    title="Predict long polling's bytes per update against WebSocket's, then measure",
    notebook=NOTEBOOK,
    hints=[
        "A WebSocket frame from the server adds 2 bytes of header to the payload.",
        "A long poll answers with a whole HTTP response (status line, headers, JSON envelope), "
        "and the client sends a whole new HTTP request for the next update.",
        "HTTP/1.1 heads of requests and responses are each about 150-250 bytes.",
        "The measurement compresses nothing: WebSocket frames go without permessage-deflate, "
        "as HTTP bodies go without gzip.",
    ],
    reference=predict_overhead,
    timeout=30,
)
def check_predict_ratio(predict_overhead):
    prediction = predict_overhead()
    if prediction is None or prediction is Ellipsis:
        raise NotAttempted("predict_overhead returns None")
    expect(isinstance(prediction, int | float) and prediction > 0,
           f"return your predicted ratio as a positive number, got {prediction!r}")
    with Run(only=("websockets", "long-polling"), prefix="choosing-check") as run:
        ws, lp = experiments.live_updates(run, events=10, kinds=("websockets", "long-polling"),
                                          graphql=False)
    measured = lp.bytes_per_op / ws.bytes_per_op
    expect(measured / 2 <= prediction <= measured * 2,
           f"you predicted {prediction:.3g}; measured {measured:.3g} (long polling "
           f"{lp.bytes_per_op:.0f} B per update, WebSocket {ws.bytes_per_op:.0f} B): "
           f"within a factor of 2 passes")
    return (f"predicted {prediction:.3g}, measured {measured:.3g} "
            f"({lp.bytes_per_op:.0f} B vs {ws.bytes_per_op:.0f} B per update)")


# --- 3. a browser game ----------------------------------------------------------------

GAME = Requirements(direction="bidirectional", browser=True, rate_hz=30, clients=10)


def pick_for_game() -> Pick:
    """10 players in browsers, each sending its state 30 times a second to the others."""
    return Pick("WebSockets", "rate_hz")


_KINDS = {"WebSockets": "websockets", "Long Polling": "long-polling", "SSE": "sse"}


@exercise(
    "choosing.pick-game",
    title="Pick the protocol for a 30 Hz browser game, and the requirement that decides",
    notebook=NOTEBOOK,
    hints=[
        "Every protocol that can carry messages both ways in a browser is a candidate.",
        "At 30 Hz per player, what does each message cost on long polling or SSE + POST?",
        "The direction and the browser rule out some protocols, but not all but one: "
        "which requirement separates the rest?",
    ],
    reference=pick_for_game,
    timeout=40,
)
def check_pick_game(pick_for_game):
    answer = _valid_pick(pick_for_game())
    if answer.protocol == "gRPC":
        raise Unmet("the players are in browsers: a browser cannot open a gRPC stream "
                    "(its HTTP/2 trailers are out of reach of fetch; gRPC-Web needs a proxy "
                    "and has no client streaming)")
    expect(answer.protocol in _KINDS,
           f"{answer.protocol} cannot carry the players' state both ways "
           f"(requirement: direction={GAME.direction!r})")
    with Run(only=("websockets", "long-polling", "sse"), prefix="choosing-check") as run:
        results = experiments.gaming(run, players=4, hz=GAME.rate_hz, seconds=0.4,
                                     kinds=tuple(_KINDS.values()))
    measured = dict(zip(_KINDS, results, strict=True))
    best = min(measured.values(), key=lambda r: r.bytes_per_op)
    mine = measured[answer.protocol]
    figures = "; ".join(f"{p} {r.bytes_per_op:.0f} B/update, p99 {r.p99 * 1000:.0f} ms"
                        for p, r in measured.items())
    expect(mine.bytes_per_op <= 2 * best.bytes_per_op,
           f"measured at 30 Hz: {answer.protocol} carried {mine.bytes_per_op:.0f} B per state "
           f"update, {mine.bytes_per_op / best.bytes_per_op:.1f}× {best.protocol}'s: one HTTP "
           f"request per update ({figures})")
    expect(answer.decided_by == "rate_hz",
           f"{answer.protocol} is right, but {answer.decided_by!r} does not decide it: "
           f"long polling and SSE + POST work in a browser and carry both directions too; "
           f"what rules them out is the rate ({figures})")
    return figures


# --- 4. a public catalogue ------------------------------------------------------------

PUBLIC_CATALOGUE = Requirements(direction="request-response", browser=True, http_caching=True,
                                clients=100_000)


def pick_for_catalogue() -> Pick:
    """A public product catalogue read by many anonymous clients through HTTP caches."""
    return Pick("REST", "http_caching")


@exercise(
    "choosing.pick-public",
    title="Pick the protocol for a public, cacheable read API",
    notebook=NOTEBOOK,
    hints=[
        "Many clients read the same entries: the cheapest read is one the server never sees.",
        "An HTTP cache can reuse or revalidate a GET; what can it do with a POST?",
    ],
    reference=pick_for_catalogue,
    timeout=30,
)
def check_pick_public(pick_for_catalogue):
    answer = _valid_pick(pick_for_catalogue())
    if answer.protocol in ("WebSockets", "SSE", "Long Polling"):
        raise Unmet(f"{answer.protocol} has no cacheable request/response reads: a catalogue "
                    "is read on demand (requirement: direction='request-response')")
    if answer.protocol == "gRPC":
        raise Unmet("an HTTP cache (and a browser) cannot read gRPC: HTTP/2 POSTs of protobuf "
                    "with trailers; CacheControl cannot even make the call")
    with Run(only=("rest", "graphql"), prefix="choosing-check") as run:
        results = {r.protocol: r for r in experiments.public_api(run, reads=3)}
    mine = results[answer.protocol]
    figures = "; ".join(f"{p}: {r.extra['answers']}" for p, r in results.items())
    expect(mine.extra["answers"].count("200") == 1,
           f"measured through CacheControl, 3 identical reads over {answer.protocol} got "
           f"{mine.extra['answers']} from the server: every read paid the full answer "
           f"({figures})")
    expect(answer.decided_by == "http_caching",
           f"{answer.protocol} is right, but {answer.decided_by!r} does not decide it: "
           f"GraphQL over HTTP serves browsers and answers requests too; what separates them "
           f"is what an HTTP cache can reuse ({figures})")
    return figures
