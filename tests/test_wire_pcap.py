"""tap.save_pcap: what the tap saw, read back by Debian's tshark (Wireshark's command line)."""

from __future__ import annotations

import shutil
import struct
import subprocess

import pytest
import requests

from labsupport.labs.rest import server as rest
from labsupport.wire import DOWN, UP, WireTap

TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed "
                                  "(apt-get install tshark; .ci/run installs it)")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    server = rest.start(name="pcap-rest", rate_limit=None)
    try:
        with WireTap(server.port) as tap:
            for _ in range(3):
                requests.get(f"{tap.url}/api/v1/users/101", timeout=5).raise_for_status()
            requests.patch(f"{tap.url}/api/v1/users/101", json={"name": "Ada L."},
                           timeout=5).raise_for_status()
        path = tap.save_pcap(tmp_path_factory.mktemp("pcap") / "rest.pcap")
        yield tap, path, server.port
    finally:
        server.stop()


def tshark(path, port: int, *fields: str, display: str = "") -> list[list[str]]:
    assert TSHARK is not None
    command = [TSHARK, "-r", str(path), "-d", f"tcp.port=={port},http", "-T", "fields",
               *(a for f in fields for a in ("-e", f))]
    if display:
        command += ["-Y", display]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    return [line.split("\t") for line in out.stdout.splitlines()]


def test_the_file_is_a_pcap_of_raw_ipv4(recorded):
    _, path, _ = recorded
    magic, major, minor, _, _, _, link = struct.unpack("<IHHiIII", path.read_bytes()[:24])
    assert (magic, major, minor, link) == (0xA1B2C3D4, 2, 4, 101)


@needs_tshark
def test_tshark_finds_the_same_requests(recorded):
    tap, path, port = recorded
    requests_seen = tshark(path, port, "http.request.method", "http.request.uri",
                           display="http.request")
    ours = [m.label.split(" + ")[0] for m in tap.messages() if m.direction == UP]
    assert [f"{method} {uri}" for method, uri in requests_seen] == ours
    assert [m for m, _ in requests_seen] == ["GET", "GET", "GET", "PATCH"]
    codes = tshark(path, port, "http.response.code", display="http.response")
    assert [c[0] for c in codes] == ["200", "200", "200", "200"]


@needs_tshark
def test_tshark_counts_the_same_bytes_and_connections(recorded):
    tap, path, port = recorded
    segments = tshark(path, port, "tcp.srcport", "tcp.len", "tcp.stream")
    up = sum(int(n) for src, n, _ in segments if int(src) != port)
    down = sum(int(n) for src, n, _ in segments if int(src) == port)
    assert (up, down) == (tap.bytes_up, tap.bytes_down)
    assert len({stream for _, _, stream in segments}) == len(tap.connections) == 4
    sizes = {DOWN: sum(m.size for m in tap.messages() if m.direction == DOWN)}
    assert sizes[DOWN] == tap.bytes_down
