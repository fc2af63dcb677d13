"""Header compression measured: the same request headers sent ten times on one connection.

HTTP/1.1 sends every header as text every time. HTTP/2's HPACK (RFC 7541) and HTTP/3's
QPACK (RFC 9204) keep a dynamic table on both ends: a header seen once is sent next time
as a small index. The sizes are what the clients really wrote: the HEADERS frames' blocks
(h2), the QPACK blocks plus what went on QPACK's encoder stream (h3), the request head (h1).
"""

from __future__ import annotations

from dataclasses import dataclass

import h11

from .h2client import H2Client
from .h3client import H3Client

__all__ = ["REQUEST_HEADERS", "Sizes", "measure", "http1_head"]

# What a browser sends with an API call (Chrome 131 on Linux), token and cookie made up.
REQUEST_HEADERS = [
    ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/131.0.0.0 Safari/537.36"),
    ("accept", "application/json"),
    ("accept-language", "en-GB,en;q=0.9"),
    ("accept-encoding", "gzip, deflate, br, zstd"),
    ("cookie", "session=6f1c0a7e52b94d1d8a3b2c4e5f607182; theme=dark"),
    ("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZGEiLCJzY29wZSI6InJlYWQifQ."
                      "c2lnbmF0dXJlLW5vdC1yZWFs"),
]


@dataclass(frozen=True)
class Sizes:
    """Bytes of each request's headers, request 1 first, for each HTTP version."""

    http1: list[int]
    hpack: list[int]
    qpack: list[int]
    qpack_encoder_stream: list[int]

    def table(self) -> str:
        lines = ["request  HTTP/1.1  HPACK (h2)  QPACK (h3) + encoder stream"]
        for n, row in enumerate(zip(self.http1, self.hpack, self.qpack,
                                    self.qpack_encoder_stream, strict=True), start=1):
            lines.append(f"{n:>7}  {row[0]:>8}  {row[1]:>10}  {row[2]:>10} + {row[3]}")
        return "\n".join(lines)


def http1_head(path: str, authority: str, headers: list[tuple[str, str]]) -> bytes:
    """The request head HTTP/1.1 puts on the wire (h11 writes it)."""
    connection = h11.Connection(h11.CLIENT)
    request = h11.Request(method="GET", target=path, headers=[("host", authority), *headers])
    return connection.send(request) or b""


def measure(server, *, requests: int = 10, path: str = "/",
            headers: list[tuple[str, str]] | None = None) -> Sizes:
    """Send ``requests`` identical requests over each version to ``server``; header sizes."""
    headers = REQUEST_HEADERS if headers is None else headers
    h1 = [len(http1_head(path, f"127.0.0.1:{server.port}", headers))] * requests
    with H2Client(server.cleartext_port) as h2:
        for _ in range(requests):
            h2.fetch(path, headers)
        hpack = list(h2.header_blocks)
    with H3Client(server.port) as h3:
        for _ in range(requests):
            h3.fetch_with(path, headers)
        qpack = [b.block for b in h3.header_blocks]
        encoder = [b.encoder_stream for b in h3.header_blocks]
    return Sizes(h1, hpack, qpack, encoder)
