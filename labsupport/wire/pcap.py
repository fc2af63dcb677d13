"""What a tap saw, as a pcap file Wireshark and tshark open.

The tap relays a byte stream, not packets, so the packets are rebuilt from what it
recorded, the way a capture on the client's side of the link would show them: per
connection a TCP handshake (SYN, SYN-ACK, ACK), each recorded chunk as segments of
at most 1,460 bytes with their sequence and acknowledgement numbers, and FINs when
the connection closed (an RST instead, from the side that reset it, when it ended by
a reset; from both when the tap cut it). Addresses are 127.0.0.1; the client's port is 40000 + the
connection's number and the server's is the tap's target port. Times are the
chunks' (when the tap read them). IPv4 header checksums are computed; TCP
checksums are left 0 (Wireshark does not check them by default).

Format: classic libpcap, link type 101 (raw IPv4), microsecond timestamps.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from .records import CUT, RESETS, RST_CLIENT, UP, Connection

__all__ = ["write_pcap", "CLIENT_PORT_BASE"]

CLIENT_PORT_BASE = 40000
SEGMENT = 1460
_LOOPBACK = bytes([127, 0, 0, 1])
_SYN, _ACK, _PSH, _FIN, _RST = 0x02, 0x10, 0x08, 0x01, 0x04


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _packet(source_port: int, dest_port: int, seq: int, ack: int, flags: int,
            payload: bytes = b"") -> bytes:
    tcp = struct.pack("!HHIIBBHHH", source_port, dest_port, seq & 0xFFFFFFFF,
                      ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0)
    length = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, length, 0, 0x4000, 64, 6, 0, _LOOPBACK,
                     _LOOPBACK)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return ip + tcp + payload


def _packets(connection: Connection, server_port: int) -> Iterator[tuple[float, bytes]]:
    client_port = CLIENT_PORT_BASE + connection.number
    ports = {UP: (client_port, server_port), "down": (server_port, client_port)}
    seq = {UP: 1000, "down": 5000}   # initial sequence numbers, fixed so captures compare
    opened = connection.opened
    yield opened, _packet(client_port, server_port, seq[UP], 0, _SYN)
    yield opened, _packet(server_port, client_port, seq["down"], seq[UP] + 1, _SYN | _ACK)
    seq = {UP: seq[UP] + 1, "down": seq["down"] + 1}
    yield opened, _packet(client_port, server_port, seq[UP], seq["down"], _ACK)
    last = opened
    for chunk in connection.chunks:
        side = UP if chunk.direction == UP else "down"
        other = "down" if side == UP else UP
        for start in range(0, len(chunk.data), SEGMENT):
            piece = chunk.data[start:start + SEGMENT]
            yield chunk.time, _packet(*ports[side], seq[side], seq[other], _PSH | _ACK, piece)
            seq[side] += len(piece)
        last = chunk.time
    if connection.end in RESETS:
        closed = max(connection.ended or last, last)
        if connection.end in (RST_CLIENT, CUT):
            yield closed, _packet(client_port, server_port, seq[UP], seq["down"], _RST | _ACK)
        if connection.end != RST_CLIENT:
            yield closed, _packet(server_port, client_port, seq["down"], seq[UP], _RST | _ACK)
    elif connection.closed is not None:
        closed = max(connection.closed, last)
        yield closed, _packet(client_port, server_port, seq[UP], seq["down"], _FIN | _ACK)
        yield closed, _packet(server_port, client_port, seq["down"], seq[UP] + 1, _FIN | _ACK)
        yield closed, _packet(client_port, server_port, seq[UP] + 1, seq["down"] + 1, _ACK)


def write_pcap(path: str | Path, connections: Iterable[Connection], server_port: int) -> Path:
    """Write ``connections`` (recorded by a tap to ``server_port``) to ``path`` as pcap."""
    epoch = time.time() - time.perf_counter()   # chunk times are perf_counter seconds
    packets = sorted((p for c in connections for p in _packets(c, server_port)),
                     key=lambda p: p[0])
    path = Path(path)
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
        for when, packet in packets:
            seconds = epoch + when
            out.write(struct.pack("<IIII", int(seconds), int(seconds % 1 * 1e6), len(packet),
                                  len(packet)))
            out.write(packet)
    return path
