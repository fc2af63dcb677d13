"""The document's decision matrix, each cell judged against this run's measurements.

A cell's verdict compares the protocol with the best protocol measured in the
same row, on that row's key figures (:data:`KEY_FIGURES`), as a factor (1 = the
best; with two figures, the geometric mean of the two factors). The rule
(:data:`RULE`) is symmetric: a claim of fitness ("Perfect", "Good", "Efficient",
...) is confirmed at a factor of at most :data:`NEAR` and contradicted at
:data:`FAR` or more; a claim of unfitness ("Too slow", "Battery drain",
"Limited") the other way round; in between it is nuanced. Where latencies were
measured, the factor gets a 95 % bootstrap interval (numpy), and a cell whose
interval straddles a threshold is "too close to call", and so is a cell whose verdict
moved between repeated Run-Alls (:data:`MOVED`). Capability claims are
judged as capabilities: "One-way" by whether the protocol's stream carries the
other direction, "Possible", "Subscriptions" and "Streaming" by whether every
message arrived. Cells no experiment here can measure say so, and why.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ...wire import profile as wire_profile
from .driver import Result, Run
from .evidence import Measured
from .experiments import RADIO_TAIL

__all__ = ["DOCUMENT", "PROTOCOLS", "Cell", "judge", "table", "heatmap", "KEY_FIGURES", "RULE"]

PROTOCOLS = ["REST", "GraphQL", "gRPC", "WebSockets", "SSE", "Long Polling"]

# The document's "Protocol Selection Guide", verbatim.
DOCUMENT: dict[str, list[str]] = {
    "CRUD Operations": ["✅ Perfect", "⚡ Good", "⚡ Good", "❌ Overkill", "❌ No", "❌ No"],
    "Real-time Chat": ["❌ No", "❌ No", "⚡ Good", "✅ Perfect", "❌ One-way", "⚡ Possible"],
    "Live Updates": ["❌ No", "🔄 Subscriptions", "🔄 Streaming", "✅ Perfect", "✅ Perfect",
                     "⚡ Good"],
    "Mobile Apps": ["✅ Good", "⚡ Efficient", "✅ Efficient", "🔋 Battery drain", "⚡ Good",
                    "🔋 Battery drain"],
    "Microservices": ["✅ Standard", "❌ Complex", "✅ Perfect", "❌ Overkill", "❌ No", "❌ No"],
    "Public APIs": ["✅ Perfect", "✅ Perfect", "❌ Complex", "❌ No", "❌ No", "❌ No"],
    "File Upload": ["✅ Good", "❌ Limited", "✅ Streaming", "❌ No", "❌ No", "❌ No"],
    "Gaming": ["❌ Too slow", "❌ Too slow", "✅ Good", "✅ Perfect", "❌ One-way", "❌ Too slow"],
}

# Which experiment row measures each use case.
ROWS = {"CRUD Operations": "CRUD", "Real-time Chat": "Real-time chat",
        "Live Updates": "Live updates", "Mobile Apps": "Mobile apps",
        "Microservices": "Microservices", "Public APIs": "Public APIs",
        "File Upload": "File upload", "Gaming": "Gaming"}


def _full_answers(r: Result) -> float:
    return r.extra["answers"].count("200")


# What each row is judged on (lower is better for each figure) and how it reads. With two
# figures, a protocol's factor is the geometric mean of its factors on each.
KEY_FIGURES: dict[str, tuple[Callable[[Result], tuple[float, ...]], str]] = {
    "CRUD": (lambda r: (r.p50, r.bytes_per_op), "p50 latency and bytes per operation"),
    "Real-time chat": (lambda r: (r.p50, r.bytes_per_op),
                       "p50 latency and bytes per delivered message (20 clients)"),
    "Live updates": (lambda r: (r.p50, r.bytes_per_op), "p50 push latency and bytes per update"),
    "Mobile apps": (lambda r: (r.extra["wake-ups/hour"] + 1,),
                    "(1 + radio wake-ups per hour), idle the same way"),
    "Microservices": (lambda r: (r.p50,), "p50 latency, 4 concurrent clients"),
    "Public APIs": (lambda r: (_full_answers(r),),
                    "full answers the server sent for 3 identical reads"),
    "File upload": (lambda r: (r.extra["time vs raw TCP"], 1 + r.extra["peak vs file"]),
                    "time vs raw TCP and (1 + server peak memory / file)"),
    "Gaming": (lambda r: (r.p99, r.bytes_per_op),
               "p99 state latency and bytes per update, 10 players at 30 Hz"),
}

NEGATIVE = ("Too slow", "Battery drain", "Limited")
# Claims that a protocol can do it at all: confirmed when every message arrived.
WORKS = ("Possible", "Subscriptions", "Streaming")
# A claim about direction: SSE's stream only goes server -> client (messages up are POSTs).
ONE_WAY = {"SSE"}
NEAR, FAR = 2.0, 4.0
RULE = (f"fit claims are confirmed within {NEAR:g}× the row's best and contradicted at "
        f"{FAR:g}× or more; unfit claims the other way round; nuanced in between; "
        "'too close to call' when the 95 % bootstrap interval of the factor straddles "
        f"{NEAR:g}× or {FAR:g}×, or when the cell's verdict moved between repeated Run-Alls; "
        "capability claims judged as capabilities")

#: Cells whose verdict moved between Run-Alls of notebook 08 (``python -m
#: tools.choosing_stability``: 5 runs idle, 3 with one core busy, on 2 shared cores): the
#: spread of their factor from run to run is wider than the in-run bootstrap interval,
#: so they get no verdict, whatever one run says. What the runs gave is kept as the reason.
MOVED = {
    ("Real-time chat", "WebSockets"): "confirmed, nuanced, too close and contradicted in 8 runs",
    ("Real-time chat", "gRPC"): "confirmed 23 times, nuanced once in 24 runs",
    ("Live updates", "SSE"): "nuanced 7 times, too close once in 8 runs",
    ("File upload", "GraphQL"): "confirmed 7 times, nuanced once in 8 runs",
}

# Cells no experiment measures, and why not.
NOT_MEASURED = {
    ("CRUD", "WebSockets"): "no request/response: each CRUD call would need its own ids "
                            "and error replies on top of frames",
    ("CRUD", "SSE"): "the stream only goes server → client; writes need plain HTTP",
    ("CRUD", "Long Polling"): "a poll only reads; writes need plain HTTP",
    ("Real-time chat", "REST"): "HTTP has no push: chat over REST is polling (see long polling)",
    ("Real-time chat", "GraphQL"): "would be a mutation per message plus a subscription",
    ("Live updates", "REST"): "HTTP has no push: a client can only poll",
    ("Microservices", "GraphQL"): "a service-to-service call through a query language",
    ("Microservices", "WebSockets"): "no request/response semantics between services",
    ("Microservices", "SSE"): "one-way",
    ("Microservices", "Long Polling"): "one-way",
    ("Public APIs", "gRPC"): "HTTP/2 POSTs of protobuf: no HTTP cache or browser can read them "
                             "without a gateway",
    ("Public APIs", "WebSockets"): "no cacheable reads", ("Public APIs", "SSE"): "no reads",
    ("Public APIs", "Long Polling"): "no reads",
    ("File upload", "WebSockets"): "possible in binary frames, but no standard upload protocol",
    ("File upload", "SSE"): "server → client only", ("File upload", "Long Polling"): "reads only",
    ("Gaming", "REST"): "polling at 30 Hz is long polling without the wait",
    ("Gaming", "GraphQL"): "a mutation per tick plus a subscription",
}


@dataclass(frozen=True)
class Cell:
    """One judged cell: the document's claim, the measured figure, the verdict and why."""

    use_case: str
    protocol: str
    document: str
    measured: str
    verdict: str
    why: str


def _factor(figures: tuple[float, ...], bests: list[float]) -> float:
    """The geometric mean of ``figures`` each divided by the row's best (1 = the best)."""
    product = 1.0
    for value, best in zip(figures, bests, strict=True):
        product *= value / best if best > 0 else (1.0 if value == best else float("inf"))
    return product ** (1 / len(figures))


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _band(factor: float) -> str:
    return "near" if factor <= NEAR else "far" if factor >= FAR else "between"


def _verdict(claim: str, factor: float, interval: tuple[float, float] | None = None) -> str:
    """The symmetric rule: ``factor`` against :data:`NEAR` and :data:`FAR`."""
    if interval is not None and _band(interval[0]) != _band(interval[1]):
        return "too close to call"
    band = _band(factor)
    if band == "between":
        return "nuanced"
    negative = any(word in claim for word in NEGATIVE)
    return "confirmed" if (band == "far") == negative else "contradicted"


def _capability(claim: str, protocol: str, result: Result) -> tuple[str, str] | None:
    """A capability claim's verdict and why, or None when the claim is about fitness."""
    if "One-way" in claim:
        one_way = protocol in ONE_WAY
        return ("confirmed" if one_way else "contradicted",
                "a capability: its stream carries server → client only; messages up went as "
                "separate HTTP POSTs" if one_way else "a capability: it carries both ways")
    if any(word in claim for word in WORKS):
        if "delivered" not in result.extra:   # an upload: did the whole file arrive?
            whole = bool(result.extra.get("received"))
            return ("confirmed" if whole else "contradicted",
                    "a capability: the whole file arrived, streamed" if whole else
                    "a capability: the file did not arrive whole")
        delivered = str(result.extra["delivered"])
        got, _, wanted = delivered.partition("/")
        whole = bool(wanted) and got == wanted
        return ("confirmed" if whole else "contradicted",
                f"a capability: {delivered} messages delivered")
    return None


def _bootstrap(values: list[float], q: float, seed: int = 0) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the ``q``-th percentile of ``values``."""
    data = np.asarray(values, dtype=float)
    samples = np.random.default_rng(seed).choice(data, size=(1000, len(data)))
    estimates = np.percentile(samples, q, axis=1)
    low, high = np.percentile(estimates, [2.5, 97.5])
    return float(low), float(high)


def _interval(row: str, result: Result, best: Result, factor: float, figures: int
              ) -> tuple[float, float] | None:
    """The factor's 95 % interval from the latencies' bootstrap (other figures fixed)."""
    if row not in LATENCY_Q or len(result.latencies) < 5 or len(best.latencies) < 5:
        return None
    q = LATENCY_Q[row]
    low, high = _bootstrap(result.latencies, q)
    best_low, best_high = _bootstrap(best.latencies, q)
    point = percentile_of(result.latencies, q) / percentile_of(best.latencies, q)
    # Replace the latency term of the geometric mean by its interval's ends.
    rest = factor ** figures / point if point > 0 else 1.0
    ends = [max(low / best_high, 1e-9), high / max(best_low, 1e-9)]
    return (min((e * rest) ** (1 / figures) for e in ends),
            max((e * rest) ** (1 / figures) for e in ends))


def percentile_of(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q))


# Which percentile of the latencies each timed row is judged on.
LATENCY_Q = {"CRUD": 50, "Real-time chat": 50, "Live updates": 50, "Microservices": 50,
             "Gaming": 99}


def _measured(row: str, result: Result, run: Run) -> str:
    if row in ("CRUD", "Microservices"):
        return f"p50 {_fmt(result.p50 / run.floor.rtt)}× floor, {result.bytes_per_op:.0f} B/op"
    if row in ("Real-time chat", "Live updates"):
        return f"p50 {_fmt(result.p50 / run.floor.rtt)}× floor, {result.bytes_per_op:.0f} B/msg"
    if row == "Gaming":
        return f"p99 {_fmt(result.p99 / run.floor.rtt)}× floor, {result.bytes_per_op:.0f} B/msg"
    if row == "Mobile apps":
        return (f"{result.extra['wake-ups/hour']} wake-ups/h, "
                f"{result.extra['bytes/hour']} B/h")
    if row == "Public APIs":
        return f"{result.extra['answers']}"
    return (f"{result.extra['time vs raw TCP']}× raw TCP time, peak "
            f"{result.extra['peak vs file']}× file")


# Rows judged on production-served counts when they are given (:mod:`.evidence`): the
# model time of a CRUD cycle, ``round trips × RTT + bytes ÷ bandwidth``, on the row's network.
COUNTED = {"CRUD": ("cable", "model time of a CRUD cycle on cable, from production-served "
                             "counts (round trips × RTT + bytes ÷ bandwidth)"),
           "Microservices": ("lan", "model time of a CRUD cycle on a LAN, from production-served "
                                    "counts (round trips × RTT + bytes ÷ bandwidth)")}


def _counted_figures(row: str, production: list[Measured] | None) -> dict[str, float]:
    if production is None or row not in COUNTED:
        return {}
    link = wire_profile(COUNTED[row][0])
    return {m.adapter.matrix: link.model_time(m.counts.round_trips, m.counts.bytes_up,
                                              m.counts.bytes_down) / m.cycles
            for m in production if m.adapter.matrix}


def _counted_measured(production: list[Measured]) -> dict[str, str]:
    """What the counted rows show in their "measured" column: production-served counts per
    CRUD cycle (the in-kernel loopback figures are this Python implementation's, not shown)."""
    return {m.adapter.matrix: f"{m.counts.round_trips / m.cycles:g} round trips, "
                              f"{m.counts.bytes_up / m.cycles:.0f} + "
                              f"{m.counts.bytes_down / m.cycles:.0f} B a cycle (production)"
            for m in production if m.adapter.matrix}


def judge(run: Run, production: list[Measured] | None = None) -> list[Cell]:
    """Every cell of the document's matrix, judged against ``run.results``; the rows in
    :data:`COUNTED` on ``production`` (from :func:`.evidence.measure_all`) when given."""
    cells = []
    for use_case, claims in DOCUMENT.items():
        row = ROWS[use_case]
        key, meaning = KEY_FIGURES[row]
        measured = {p: r for p in PROTOCOLS
                    if (r := run.result(row, p)) is not None and (r.latencies or r.extra)}
        counted = _counted_figures(row, production)
        if counted:
            meaning = COUNTED[row][1]
            measured = {p: r for p, r in measured.items() if p in counted}
        figures = ({p: (counted[p],) for p in measured} if counted else
                   {p: key(r) for p, r in measured.items()})
        bests = [min(column) for column in zip(*figures.values(), strict=True)]
        factors = {p: _factor(f, bests) for p, f in figures.items()}
        for protocol, claim in zip(PROTOCOLS, claims, strict=True):
            if protocol not in factors:
                reason = NOT_MEASURED.get((row, protocol), "this row was not run")
                cells.append(Cell(use_case, protocol, claim, "—", "not measured", reason))
                continue
            result = measured[protocol]
            capability = _capability(claim, protocol, result)
            if capability is not None:
                cells.append(Cell(use_case, protocol, claim, _measured(row, result, run),
                                  *capability))
                continue
            factor = factors[protocol]
            best_protocol = min(factors, key=lambda p: factors[p])
            interval = None if counted else _interval(row, result, measured[best_protocol],
                                                      factor, len(bests))
            shown = f" (95 % {_fmt(interval[0])}–{_fmt(interval[1])})" if interval else ""
            why = (f"{meaning}: the best here" if protocol == best_protocol else
                   f"{meaning}: {_fmt(factor)}×{shown} the best here ({best_protocol})")
            if counted:
                why += f" ({counted[protocol] * 1000:.1f} ms a cycle)"
            if row == "Mobile apps":
                why += (f"; {result.extra['counted']} in compressed time, "
                        f"tail {RADIO_TAIL:g} s")
            verdict = _verdict(claim, factor, interval)
            if (row, protocol) in MOVED:
                verdict = "too close to call"
                why += f"; its verdict moved between Run-Alls ({MOVED[(row, protocol)]})"
            shown_figure = (_counted_measured(production or [])[protocol] if counted
                            else _measured(row, result, run))
            cells.append(Cell(use_case, protocol, claim, shown_figure, verdict, why))
    return cells


class Table(list):
    """Judged cells shown as a table (HTML in Jupyter, text elsewhere)."""

    columns = ("use_case", "protocol", "document", "measured", "verdict", "why")

    def __str__(self) -> str:
        # The document's words without its emoji: a plain-text ❌ reads as a failed check.
        return "\n".join(f"{c.use_case:<16} {c.protocol:<12} {c.document.split(' ', 1)[1]:<15} "
                         f"{c.verdict:<12} {c.measured}" for c in self)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{name.replace('_', ' ')}</th>" for name in self.columns)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(getattr(c, name)))}</td>"
                                        for name in self.columns) + "</tr>" for c in self)
        return f"<table><tr>{head}</tr>{rows}</table>"


def table(run: Run, production: list[Measured] | None = None) -> Table:
    """:func:`judge` as a table."""
    return Table(judge(run, production))


COLOURS = {"confirmed": "#2da44e", "nuanced": "#d4a72c", "contradicted": "#cf222e",
           "too close to call": "#8250df", "not measured": "#d0d7de"}
# Patterns, so the map reads without colour (and in print).
HATCHES = {"confirmed": "", "nuanced": "..", "contradicted": "xx", "too close to call": "//",
           "not measured": ""}
ABBREVIATIONS = {"confirmed": "✓ confirmed", "nuanced": "~ nuanced", "contradicted": "✗ contra.",
                 "too close to call": "? too close", "not measured": "— n/m"}


def heatmap(cells: list[Cell]) -> Figure:
    """The matrix redrawn: each cell coloured and patterned by its verdict, with the
    document's claim and the verdict written inside (it reads without colour)."""
    verdict_of = {(c.use_case, c.protocol): c.verdict for c in cells}
    figure, axes = plt.subplots(figsize=(10, 5.6))
    for y, use_case in enumerate(DOCUMENT):
        for x, protocol in enumerate(PROTOCOLS):
            verdict = verdict_of[(use_case, protocol)]
            axes.add_patch(plt.Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor=COLOURS[verdict],
                                         hatch=HATCHES[verdict], edgecolor="white",
                                         linewidth=1.5))
            claim = DOCUMENT[use_case][x].split(" ", 1)[1]
            axes.text(x, y, f"{claim}\n{ABBREVIATIONS[verdict]}", ha="center", va="center",
                      fontsize=7.5, bbox={"facecolor": "white", "alpha": 0.8, "pad": 1,
                                          "linewidth": 0})
    axes.set_xlim(-0.5, len(PROTOCOLS) - 0.5)
    axes.set_ylim(len(DOCUMENT) - 0.5, -0.5)
    axes.set_xticks(range(len(PROTOCOLS)), PROTOCOLS)
    axes.set_yticks(range(len(DOCUMENT)), list(DOCUMENT))
    axes.xaxis.tick_top()
    handles = [plt.Rectangle((0, 0), 1, 1, facecolor=COLOURS[v], hatch=HATCHES[v],
                             edgecolor="white") for v in COLOURS]
    axes.legend(handles, [ABBREVIATIONS[v] for v in COLOURS], loc="upper center",
                bbox_to_anchor=(0.5, -0.02), ncol=5, frameon=False)
    axes.set_title("The document's verdicts, judged by this run's measurements", pad=28)
    figure.text(0.5, 0.005, "Each cell: the document's claim, and this run's verdict "
                "(✓ confirmed, ~ nuanced, ✗ contradicted, ? too close to call, — not measured).",
                ha="center", fontsize=8)
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    plt.close(figure)  # shown once, by the cell that returns it
    return figure
