"""Trailers on the wire: header fields that come after the body, in a last HEADERS frame.

- :func:`http_trailer` asks the lab's server for ``/trailers`` over h2c through a
  :class:`~labsupport.wire.WireTap`: a HEADERS frame (``:status``, ``trailer``), the body
  in DATA frames, then a HEADERS frame with END_STREAM carrying ``x-body-sha256``.
- :func:`grpc_trailers` makes calls to lab 03's gRPC server through a tap: a call that
  succeeds ends the same way, ``grpc-status: 0`` in the trailing HEADERS; a call that fails
  before any message is *Trailers-Only*: one HEADERS frame with END_STREAM and the status.

The frames are read back from the bytes the tap recorded with hyperframe and hpack (the
parsers h2 uses), keeping what the wire layer's labels leave out: each frame's END_STREAM
flag and the names of the fields it carried. Consecutive DATA frames of a stream are
counted as one (how a body is cut into frames is the sender's choice).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import hpack
from hyperframe.frame import DataFrame, HeadersFrame

from ...wire import DOWN, WireTap
from ...wire.parsers import h2_frames
from ..grpc_service import server as grpc_service
from .h2client import H2Client, H2Response

__all__ = ["H2Frame", "server_frames", "http_trailer", "grpc_trailers"]


@dataclass(frozen=True)
class H2Frame:
    """One HEADERS or DATA frame the server sent on a request stream."""

    kind: str
    stream: int
    end_stream: bool
    fields: dict[str, str]     # a HEADERS frame's fields (empty for DATA)
    size: int                  # a DATA frame's bytes (0 for HEADERS)

    def line(self, *, sizes: bool = True) -> str:
        """One line: ``← KIND sN [END_STREAM]`` and the fields (or the body's bytes)."""
        end = " END_STREAM" if self.end_stream else ""
        if self.kind == "DATA":
            return f"← DATA    s{self.stream}{end}  " + (f"{self.size} B" if sizes else "body")
        shown = ", ".join(f"{k}: {v}" if k in SHOWN else k for k, v in self.fields.items())
        return f"← HEADERS s{self.stream}{end}  {shown}"

    def __str__(self) -> str:
        return self.line()


SHOWN = {":status", "trailer", "grpc-status", "grpc-message"}   # values worth printing


def server_frames(tap: WireTap) -> list[H2Frame]:
    """The HEADERS and DATA frames each server sent on request streams, in order, from
    what ``tap`` recorded (HTTP/2 connections; HPACK decoded per connection)."""
    frames = []
    for connection in tap.connections:
        decoder = hpack.Decoder()
        for frame, _ in h2_frames(connection.stream(DOWN)):
            end = "END_STREAM" in frame.flags
            if isinstance(frame, HeadersFrame):
                fields = {str(k): str(v) for k, v in decoder.decode(frame.data, raw=False)}
                frames.append(H2Frame("HEADERS", frame.stream_id, end, fields, 0))
            elif isinstance(frame, DataFrame) and frame.stream_id:
                before = next((f for f in reversed(frames) if f.stream == frame.stream_id), None)
                size = len(frame.data)
                if before is not None and before.kind == "DATA":   # the body goes on
                    frames.remove(before)
                    size += before.size
                frames.append(H2Frame("DATA", frame.stream_id, end, {}, size))
    return frames


def http_trailer(server: Any) -> tuple[H2Response, list[H2Frame]]:
    """``GET /trailers`` over h2c with ``te: trailers``, through a tap: the response (its
    ``trailers``) and the frames the server sent."""
    with WireTap(server.cleartext_port) as tap:
        with H2Client(tap.port) as client:
            response = client.fetch("/trailers", headers=[("te", "trailers")])
        return response, server_frames(tap)


def grpc_trailers(*, user_id: int = 101, missing_id: int = 999_999) -> list[list[H2Frame]]:
    """Two calls to lab 03's ``GetUser`` through a tap, one found, one not: the frames the
    server sent for each (one connection, one stream a call)."""
    pb = grpc_service.user_service_pb2
    with grpc_service.start(name="http-versions-grpc", fresh_data=False) as server, \
            WireTap(server.port) as tap:
        channel = grpc_service.channel(tap.address)
        try:
            stub = grpc_service.user_service_pb2_grpc.UserServiceStub(channel)
            stub.GetUser(pb.GetUserRequest(id=user_id), timeout=5)
            with contextlib.suppress(grpc_service.grpc.RpcError):   # NOT_FOUND: expected
                stub.GetUser(pb.GetUserRequest(id=missing_id), timeout=5)
        finally:
            channel.close()
        frames = server_frames(tap)
    streams = sorted({f.stream for f in frames})
    return [[f for f in frames if f.stream == s] for s in streams]
