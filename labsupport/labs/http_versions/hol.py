"""Head-of-line blocking: N streams on one connection, the same packets lost under each.

- HTTP/2 runs over TCP through the wire tap's labelled loss *model* (``WireTap(port,
  loss=pattern)``): a lost segment holds every byte after it, so every stream still open waits.
- HTTP/3 runs over QUIC through :class:`~.loss.UDPRelay` (datagrams really dropped): QUIC
  retransmits the lost frames, and only the streams whose frames were lost wait.

Counts first: a stream is *held up* when a loss made it wait. Over TCP, every stream not
yet finished at a stall's offset is held up by it. Over QUIC, a stream is held up when a
STREAM frame arrived beyond a gap in its data (the client's qlog shows it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ...wire import DOWN, LossPattern, WireTap
from .h2client import H2Client
from .h3client import H3Client
from .loss import UDPRelay

__all__ = ["StreamResult", "Run", "http2_under_loss", "http3_under_loss", "plot", "compare"]


@dataclass(frozen=True)
class StreamResult:
    """One stream: when it finished (ms after the requests went out), whether loss held it."""

    stream_id: int
    finished_ms: float
    held_up: bool


@dataclass(frozen=True)
class Run:
    """N streams over one connection under one loss pattern."""

    protocol: str
    streams: tuple[StreamResult, ...]
    losses: int                       # segments stalled (TCP model) / datagrams dropped (UDP)
    held_up_by_each_loss: tuple[int, ...] = ()   # TCP model only: streams each stall held

    @property
    def held_up(self) -> int:
        return sum(s.held_up for s in self.streams)

    @property
    def finish_order(self) -> list[int]:
        return [s.stream_id for s in sorted(self.streams, key=lambda s: s.finished_ms)]

    def __str__(self) -> str:
        times = sorted(s.finished_ms for s in self.streams)
        return (f"{self.protocol}: {self.losses} packets lost, {self.held_up} of "
                f"{len(self.streams)} streams held up; they finished between "
                f"{times[0]:.0f} ms and {times[-1]:.0f} ms")


def http2_under_loss(server, loss: LossPattern, *, streams: int = 8, size: int = 40_000,
                     timeout: float = 20.0) -> Run:
    """``streams`` GETs of ``size`` bytes over one HTTP/2 (h2c) connection through the TCP
    loss model (a wire tap losing the segments ``loss`` names)."""
    with WireTap(server.cleartext_port, loss=loss, record=False) as tap, \
            H2Client(tap.port) as client:
        start = time.monotonic()
        ids = [client.request("GET", f"/bytes/{size}") for _ in range(streams)]
        client.run_until(lambda: all(client.responses[i].ended for i in ids), timeout)
        responses = [client.responses[i] for i in ids]
        stalls = [offset for direction, offset in tap.stalls if direction == DOWN]
        held = tuple(sum(1 for r in responses if (r.ended_offset or 0) > stall)
                     for stall in stalls)
        first_stall = stalls[0] if stalls else None
        results = tuple(StreamResult(
            r.stream_id, ((r.ended_at or start) - start) * 1000,
            first_stall is not None and (r.ended_offset or 0) > first_stall) for r in responses)
        return Run("HTTP/2 over TCP (loss model)", results, len(stalls), held)


def _streams_with_gaps(client: H3Client, ids: list[int]) -> set[int]:
    """Request streams on which a STREAM frame arrived beyond a gap (a loss held them)."""
    contiguous = dict.fromkeys(ids, 0)
    pending: dict[int, list[tuple[int, int]]] = {i: [] for i in ids}
    gapped = set()
    for packet in client.packets():
        if packet.sent:
            continue
        for frame in packet.frames:
            stream = frame.get("stream_id")
            if frame.get("frame_type") != "stream" or stream not in contiguous:
                continue
            begin, end = frame["offset"], frame["offset"] + frame["length"]
            if begin > contiguous[stream]:
                gapped.add(stream)
            pending[stream].append((begin, end))
            pending[stream].sort()
            while pending[stream] and pending[stream][0][0] <= contiguous[stream]:
                contiguous[stream] = max(contiguous[stream], pending[stream].pop(0)[1])
    return gapped


def http3_under_loss(server, loss: LossPattern, *, streams: int = 8, size: int = 40_000,
                     timeout: float = 20.0, blocked: bool = False) -> Run:
    """The same GETs over one HTTP/3 connection through a UDP relay dropping datagrams."""
    with UDPRelay(server.port, loss, blocked=blocked) as relay, \
            H3Client(server.port, target=relay.port) as client:
        client.run_until(lambda: client.handshake_done, timeout=min(timeout, 3.0))
        start = time.monotonic()
        ids = [client.request("GET", f"/bytes/{size}") for _ in range(streams)]
        client.run_until(lambda: all(client.responses[i].ended for i in ids), timeout)
        gapped = _streams_with_gaps(client, ids)
        results = tuple(StreamResult(i, ((client.responses[i].ended_at or start) - start) * 1000,
                                     i in gapped) for i in ids)
        return Run("HTTP/3 over QUIC (real datagram loss)", results, relay.dropped)


def compare(server, loss: LossPattern, *, streams: int = 8, size: int = 40_000) -> list[Run]:
    """HTTP/2 and HTTP/3 under the same loss pattern."""
    return [http2_under_loss(server, loss, streams=streams, size=size),
            http3_under_loss(server, loss, streams=streams, size=size)]


def plot(runs: list[Run], title: str = "When each stream finished, under the same loss") -> Figure:
    """One row per stream, one panel per run: a filled square for a stream a loss held up,
    an open circle for one no loss touched (readable without colour)."""
    figure, panels = plt.subplots(len(runs), 1, figsize=(8, 1.3 + 1.6 * len(runs)),
                                  squeeze=False)
    for axes, run in zip(panels[:, 0], runs, strict=True):
        for row, stream in enumerate(run.streams):
            axes.plot(stream.finished_ms, row, "s" if stream.held_up else "o", ms=7,
                      color="#9a3412" if stream.held_up else "#1f6feb",
                      fillstyle="full" if stream.held_up else "none")
        axes.set_yticks(range(len(run.streams)), [f"stream {s.stream_id}" for s in run.streams],
                        fontsize=7)
        axes.set_title(f"{run.protocol}: {run.losses} lost, {run.held_up} of "
                       f"{len(run.streams)} streams held up", fontsize=9, loc="left")
        axes.invert_yaxis()
        axes.grid(axis="x", linestyle=":", alpha=0.6)
    panels[-1, 0].set_xlabel("ms after the requests were sent (■ held up by a loss, ○ not)")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    plt.close(figure)
    return figure
