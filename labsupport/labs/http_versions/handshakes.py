"""Round trips to the first byte of a response, counted flight by flight.

Each handshake is driven one round trip at a time: the client sends everything it can
(a *flight*), then takes in everything the server answers until the server has been quiet
for ``quiet`` seconds, and only then may send again. A round trip is a client flight that
carries data the server must act on (a TCP SYN, TLS handshake records, QUIC CRYPTO or
STREAM frames; not bare ACKs). The count ends with the flight whose answer holds the
response's first byte. It depends on the protocol's rules, not on clocks: it is the same
on loopback and across an ocean, and the same run after run. Only the TCP SYN / SYN-ACK
exchange is made by the kernel inside ``connect()``; it is counted as the first round.

    tcp_tls(server.port, "1.2").round_trips      # 4
    quic(server.port).round_trips                # 2
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections import Counter
from dataclasses import dataclass

from aioquic.tls import SessionTicket

from ...harness import LOOPBACK
from .certs import authority
from .h3client import H3Client, Packet

__all__ = ["Flight", "Handshake", "tcp_tls", "quic", "zero_rtt", "all_handshakes", "QUIET",
           "PROFILES", "first_byte_ms"]

# Round-trip times of WebPageTest's connectivity profiles (its connectivity.ini: "Cable",
# "4G", "3G"), in ms; the same names the other labs' network profiles use.
PROFILES = {"Cable (28 ms RTT)": 28, "4G (170 ms RTT)": 170, "3G (300 ms RTT)": 300}
QUIET = 0.2      # s of silence that ends the server's answer to one flight
PATIENCE = 5.0   # s the client waits at most for the first byte of an answer
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
TLS_CONTENT = {20: "ChangeCipherSpec", 21: "Alert", 22: "Handshake", 23: "encrypted"}
TLS_HANDSHAKE = {1: "ClientHello", 2: "ServerHello", 4: "NewSessionTicket", 11: "Certificate",
                 12: "ServerKeyExchange", 14: "ServerHelloDone", 16: "ClientKeyExchange",
                 20: "Finished"}


@dataclass(frozen=True)
class Flight:
    """What one side sent in one round: ``client`` or ``server``, a short label, its bytes."""

    round: int
    sender: str
    label: str
    size: int


@dataclass(frozen=True)
class Handshake:
    """One connection's way to its first response byte: every flight, and the round trips."""

    name: str
    flights: tuple[Flight, ...]
    round_trips: int

    def __str__(self) -> str:
        trips = "round trip" if self.round_trips == 1 else "round trips"
        lines = [f"{self.name}: {self.round_trips} {trips} to the first byte"]
        for f in self.flights:
            arrow = "→" if f.sender == "client" else "←"
            lines.append(f"  {f.round}  {arrow} {f.label}")
        return "\n".join(lines)


def first_byte_ms(round_trips: int, rtt_ms: float) -> float:
    """The model: time to the first byte = round trips × RTT (server time and bandwidth left
    out: a handshake's few kB take well under a round trip on these profiles)."""
    return round_trips * rtt_ms


# --- TLS over TCP ------------------------------------------------------------------

def _tls_records(data: bytes, encrypted_after_ccs: bool) -> str:
    """What TLS records ``data`` holds, e.g. 'Handshake(ClientHello)' or 'encrypted ×4'."""
    names: list[str] = []
    offset, encrypted = 0, False
    while offset + 5 <= len(data):
        kind, length = data[offset], int.from_bytes(data[offset + 3:offset + 5], "big")
        body = data[offset + 5:offset + 5 + length]
        if kind == 22 and not encrypted:
            messages, at = [], 0
            while at + 4 <= len(body):
                messages.append(TLS_HANDSHAKE.get(body[at], f"type {body[at]}"))
                at += 4 + int.from_bytes(body[at + 1:at + 4], "big")
            names.append(f"Handshake({', '.join(messages)})")
        elif kind == 22:
            names.append("Handshake(encrypted Finished)")
        else:
            names.append(TLS_CONTENT.get(kind, f"record {kind}"))
        if kind == 20 and encrypted_after_ccs:
            encrypted = True
        offset += 5 + length
    counted = Counter(names)
    return " + ".join(n if c == 1 else f"{n} ×{c}" for n, c in counted.items())


def _answer(sock: socket.socket, quiet: float) -> bytes:
    """What the server sends until it has been quiet for ``quiet`` s (the first byte
    awaited up to PATIENCE s)."""
    received = b""
    deadline = time.monotonic() + PATIENCE
    while True:
        wait = quiet if received else deadline - time.monotonic()
        if wait <= 0:
            return received
        sock.settimeout(wait)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return received
        if not data:
            return received
        received += data


def tcp_tls(port: int, tls: str = "1.3", *, quiet: float = QUIET) -> Handshake:
    """HTTP/1.1 over TCP + TLS ``tls`` ("1.2" or "1.3") to 127.0.0.1:``port``, round by round."""
    context = authority().client_context(tls=tls)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    sock = socket.create_connection((LOOPBACK, port), timeout=PATIENCE)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    flights = [Flight(1, "client", "TCP SYN", 0), Flight(1, "server", "TCP SYN-ACK", 0)]
    rounds, request_sent = 1, False
    try:
        while True:
            try:
                client.do_handshake()
                if not request_sent:
                    client.write(REQUEST)
                    request_sent = True
            except ssl.SSLWantReadError:
                pass
            carries_request = request_sent and not any(
                "HTTP request" in f.label for f in flights)
            sending = outgoing.read()
            if sending:
                rounds += 1
                sock.sendall(sending)
                label = _tls_records(sending, tls == "1.2")
                if carries_request:
                    label += " (… the HTTP request)"
                flights.append(Flight(rounds, "client", label, len(sending)))
            answer = _answer(sock, quiet)
            if not answer:
                raise TimeoutError(f"the server answered nothing in round {rounds}")
            incoming.write(answer)
            got = b""
            if request_sent:
                with contextlib.suppress(ssl.SSLWantReadError):
                    got = client.read(65536)
            label = _tls_records(answer, tls == "1.2")
            flights.append(Flight(rounds, "server", label + (" (the HTTP response)" if got else ""),
                                  len(answer)))
            if got:
                return Handshake(f"TCP + TLS {tls}", tuple(flights), rounds)
    finally:
        sock.close()


# --- QUIC ----------------------------------------------------------------------------

def _quic_label(packets: list[Packet]) -> str:
    """'Initial[CRYPTO] + 0-RTT[STREAM]': each packet type once, with its frames that matter."""
    kinds: dict[str, set[str]] = {}
    for packet in packets:
        frames = kinds.setdefault(packet.packet_type, set())
        frames.update(f["frame_type"].upper() for f in packet.frames
                      if f["frame_type"] in ("crypto", "stream", "ack", "handshake_done"))
    names = {"initial": "Initial", "handshake": "Handshake", "0RTT": "0-RTT", "1RTT": "1-RTT"}
    return " + ".join(f"{names.get(kind, kind)}[{','.join(sorted(frames))}]"
                      for kind, frames in kinds.items())


def _without_repeats(packets: list[Packet], carried: dict[tuple[bool, str], int]
                     ) -> list[Packet]:
    """``packets`` less pure repeats: a packet whose CRYPTO bytes were all carried before in
    its direction and packet space, and nothing new with them, is a probe sent because an
    ACK came late (a loaded machine's timing, not the handshake), so no flight of its own.
    ``carried`` keeps how far each direction's CRYPTO bytes reached, packet space by space."""
    kept = []
    for packet in packets:
        key = (packet.sent, packet.packet_type)
        crypto = [f for f in packet.frames if f.get("frame_type") == "crypto"]
        repeat = bool(crypto) and all(f["offset"] + f["length"] <= carried.get(key, 0)
                                      for f in crypto) and \
            not any(f.get("frame_type") in ("stream", "handshake_done") for f in packet.frames)
        for frame in crypto:
            carried[key] = max(carried.get(key, 0), frame["offset"] + frame["length"])
        if not repeat:
            kept.append(packet)
    return kept


def _quic_rounds(client: H3Client, name: str, request_early: bool, quiet: float) -> Handshake:
    stream = client.request("GET", "/") if request_early else None
    flights: list[Flight] = []
    rounds, seen = 0, 0
    carried: dict[tuple[bool, str], int] = {}
    deadline = time.monotonic() + 3 * PATIENCE
    while True:
        if stream is None and client.handshake_done:
            stream = client.request("GET", "/")
        client.flush()
        packets = client.packets()
        sent = _without_repeats([p for p in packets[seen:] if p.sent], carried)
        if any(p.carries_data for p in sent):
            rounds += 1
            flights.append(Flight(rounds, "client", _quic_label(sent), sum(p.size for p in sent)))
        seen = len(packets)
        # the server's answer: every datagram until it is quiet
        waited = time.monotonic() + PATIENCE
        while client.receive(quiet if len(client.packets()) > seen else waited - time.monotonic()):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: no response after {rounds} rounds")
        packets = client.packets()
        received = _without_repeats([p for p in packets[seen:] if not p.sent], carried)
        response = client.responses.get(stream) if stream is not None else None
        has_first_byte = response is not None and response.status is not None
        if received:
            label = _quic_label(received) + (" (the HTTP response)" if has_first_byte else "")
            flights.append(Flight(rounds, "server", label, sum(p.size for p in received)))
        seen = len(packets)
        if has_first_byte:
            return Handshake(name, tuple(flights), rounds)


def quic(port: int, *, quiet: float = QUIET) -> Handshake:
    """HTTP/3 over a new QUIC connection (TLS 1.3 inside), round by round."""
    with H3Client(port) as client:
        return _quic_rounds(client, "QUIC (1-RTT)", False, quiet)


def ticket_from(port: int) -> SessionTicket:
    """A session ticket from a first connection to ``port`` (what a returning client keeps)."""
    with H3Client(port) as client:
        client.fetch("/")
        client.run_until(lambda: bool(client.tickets), timeout=3)
        return client.tickets[-1]


def zero_rtt(port: int, ticket: SessionTicket | None = None, *, quiet: float = QUIET
             ) -> Handshake:
    """HTTP/3 resumed with a session ticket, the request sent in 0-RTT, round by round."""
    with H3Client(port, session_ticket=ticket or ticket_from(port)) as client:
        found = _quic_rounds(client, "QUIC 0-RTT (resumed)", True, quiet)
        if not client.early_data_accepted:
            return Handshake(found.name + ", early data refused", found.flights,
                             found.round_trips)
        return found


def all_handshakes(port: int, *, quiet: float = QUIET) -> list[Handshake]:
    """The four ways to a first byte, against a server of :func:`~.server.start`."""
    return [tcp_tls(port, "1.2", quiet=quiet), tcp_tls(port, "1.3", quiet=quiet),
            quic(port, quiet=quiet), zero_rtt(port, quiet=quiet)]
