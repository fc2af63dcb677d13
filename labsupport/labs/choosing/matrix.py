"""The document's decision matrix, each cell judged against this run's measurements.

A cell's verdict compares the protocol with the best protocol measured in the
same row, on that row's key figures (:data:`KEY_FIGURES`), as a factor (1 = the
best; with two figures, the geometric mean of the two factors). A claim of
fitness ("Perfect", "Good", "Efficient", ...) is confirmed when the factor is
small; a claim of unfitness ("Too slow", "Battery drain", "One-way",
"Limited") when it is large; in between it is nuanced. A claim that it can be done
("Possible", "Subscriptions", "Streaming") is confirmed when it was done at a
reasonable cost, and nuanced when at a high one. Cells no experiment here
can measure say so, and why.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from .driver import Result, Run

__all__ = ["DOCUMENT", "PROTOCOLS", "Cell", "judge", "table", "heatmap", "KEY_FIGURES"]

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
    "Mobile apps": (lambda r: (r.extra["wake-ups/min"] + 1,), "radio wake-ups per minute, idle"),
    "Microservices": (lambda r: (r.p50,), "p50 latency, 4 concurrent clients"),
    "Public APIs": (lambda r: (_full_answers(r),),
                    "full answers the server sent for 3 identical reads"),
    "File upload": (lambda r: (r.extra["time vs raw TCP"], 1 + r.extra["peak vs file"]),
                    "time vs raw TCP and (1 + server peak memory / file)"),
    "Gaming": (lambda r: (r.p99, r.bytes_per_op),
               "p99 state latency and bytes per update, 10 players at 30 Hz"),
}

NEGATIVE = ("Too slow", "Battery drain", "One-way", "Limited")
# Claims that a protocol can do it at all: confirmed when it delivered, nuanced when at a cost.
WORKS = ("Possible", "Subscriptions", "Streaming")

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


def _verdict(claim: str, factor: float) -> str:
    if any(word in claim for word in WORKS):
        return "confirmed" if factor <= 4 else "nuanced"
    if any(word in claim for word in NEGATIVE):
        return "confirmed" if factor >= 3 else "nuanced" if factor >= 1.5 else "contradicted"
    limit = 1.5 if "Perfect" in claim else 3.0
    return "confirmed" if factor <= limit else "nuanced" if factor <= 4 * limit else \
        "contradicted"


def _measured(row: str, result: Result, run: Run) -> str:
    if row in ("CRUD", "Microservices"):
        return f"p50 {_fmt(result.p50 / run.floor.rtt)}× floor, {result.bytes_per_op:.0f} B/op"
    if row in ("Real-time chat", "Live updates"):
        return f"p50 {_fmt(result.p50 / run.floor.rtt)}× floor, {result.bytes_per_op:.0f} B/msg"
    if row == "Gaming":
        return f"p99 {_fmt(result.p99 / run.floor.rtt)}× floor, {result.bytes_per_op:.0f} B/msg"
    if row == "Mobile apps":
        return (f"{result.extra['wake-ups/min']} wake-ups/min, "
                f"{result.extra['bytes/min']} B/min")
    if row == "Public APIs":
        return f"{result.extra['answers']}"
    return (f"{result.extra['time vs raw TCP']}× raw TCP time, peak "
            f"{result.extra['peak vs file']}× file")


def judge(run: Run) -> list[Cell]:
    """Every cell of the document's matrix, judged against ``run.results``."""
    cells = []
    for use_case, claims in DOCUMENT.items():
        row = ROWS[use_case]
        key, meaning = KEY_FIGURES[row]
        measured = {p: r for p in PROTOCOLS
                    if (r := run.result(row, p)) is not None and (r.latencies or r.extra)}
        figures = {p: key(r) for p, r in measured.items()}
        bests = [min(column) for column in zip(*figures.values(), strict=True)]
        factors = {p: _factor(f, bests) for p, f in figures.items()}
        for protocol, claim in zip(PROTOCOLS, claims, strict=True):
            if protocol not in factors:
                reason = NOT_MEASURED.get((row, protocol), "this row was not run")
                cells.append(Cell(use_case, protocol, claim, "—", "not measured", reason))
                continue
            factor = factors[protocol]
            best_protocol = min(factors, key=lambda p: factors[p])
            why = (f"{meaning}: the best here" if protocol == best_protocol else
                   f"{meaning}: {_fmt(factor)}× the best here ({best_protocol})")
            cells.append(Cell(use_case, protocol, claim, _measured(row, measured[protocol], run),
                              _verdict(claim, factor), why))
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


def table(run: Run) -> Table:
    """:func:`judge` as a table."""
    return Table(judge(run))


COLOURS = {"confirmed": "#2da44e", "nuanced": "#d4a72c", "contradicted": "#cf222e",
           "not measured": "#d0d7de"}


def heatmap(cells: list[Cell]) -> Figure:
    """The matrix redrawn: each cell coloured by its verdict, the document's claim inside."""
    verdicts = list(COLOURS)
    grid = [[verdicts.index(next(c.verdict for c in cells
                                 if c.use_case == use_case and c.protocol == protocol))
             for protocol in PROTOCOLS] for use_case in DOCUMENT]
    figure, axes = plt.subplots(figsize=(10, 5.2))
    axes.imshow(grid, cmap=ListedColormap(list(COLOURS.values())), vmin=0,
                vmax=len(verdicts) - 1, aspect="auto")
    axes.set_xticks(range(len(PROTOCOLS)), PROTOCOLS)
    axes.set_yticks(range(len(DOCUMENT)), list(DOCUMENT))
    axes.xaxis.tick_top()
    for y, use_case in enumerate(DOCUMENT):
        for x in range(len(PROTOCOLS)):
            claim = DOCUMENT[use_case][x].split(" ", 1)[1]
            axes.text(x, y, claim, ha="center", va="center", fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour) for colour in COLOURS.values()]
    axes.legend(handles, verdicts, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=4,
                frameon=False)
    axes.set_title("The document's verdicts, judged by this run's measurements", pad=28)
    figure.tight_layout()
    plt.close(figure)  # shown once, by the cell that returns it
    return figure
