"""Chromium fetches the lab's page over HTTP/2 and over HTTP/3, and says so (nextHopProtocol)."""

from __future__ import annotations

import shutil
import tempfile

import pytest

from labsupport import http_versions as hv

pytestmark = pytest.mark.slow


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def server():
    with hv.start(name="http-versions-browser") as running:
        yield running


def next_hop_protocol(server, *, force_quic: bool) -> str:
    """Open the server's page in headless Chromium; the protocol its navigation used."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium); CI installs it")
    sync_api = pytest.importorskip("playwright.sync_api")
    # Chromium trusts no private CA for QUIC (ERR_QUIC_CERT_ROOT_NOT_KNOWN) and never upgrades
    # to one through Alt-Svc: pin the certificate's key and force QUIC for this origin.
    flags = [f"--ignore-certificate-errors-spki-list={hv.authority().spki_sha256()}"]
    if force_quic:
        flags.append(f"--origin-to-force-quic-on=127.0.0.1:{server.port}")
    with tempfile.TemporaryDirectory() as profile, sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=flags)
        try:
            page = context.new_page()
            reply = page.goto(f"{server.url}/", timeout=15_000)
            assert reply is not None and reply.status == 200
            return page.evaluate(
                "performance.getEntriesByType('navigation')[0].nextHopProtocol")
        finally:
            context.close()


def test_chromium_fetches_the_page_over_http2(server):
    assert next_hop_protocol(server, force_quic=False) == "h2"


def test_chromium_fetches_the_page_over_http3(server):
    assert next_hop_protocol(server, force_quic=True) == "h3"
    assert ("3", "GET", "/") in server.app.requests


def load_page(server, *, http2: bool) -> tuple[int, list[dict]]:
    """Chromium loads /page (30 slow resources at once); how many TCP connections carried
    the 30 (the server sees each request's client port), and their Resource Timing."""

    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium); CI installs it")
    sync_api = pytest.importorskip("playwright.sync_api")
    flags = [f"--ignore-certificate-errors-spki-list={hv.authority().spki_sha256()}"]
    if not http2:
        flags.append("--disable-http2")
    with tempfile.TemporaryDirectory() as profile, sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=flags)
        try:
            page = context.new_page()
            page.goto(f"{server.url}/page?n=30", timeout=15_000)
            page.wait_for_function("window.loaded !== undefined", timeout=15_000)
            loaded = page.evaluate("window.loaded")
        finally:
            context.close()
    # each request came from the client port of the connection that carried it
    carriers = {port for path, port in server.app.peers[-31:] if path.startswith("/slow/")}
    return len(carriers), loaded


def test_http1_loads_thirty_resources_six_connections_at_a_time(server):
    connections, loaded = load_page(server, http2=False)
    assert len(loaded) == 30 and {r["protocol"] for r in loaded} == {"http/1.1"}
    assert connections == 6
    # in waves of six: the seventh resource starts only when one of the first six has ended
    ends = sorted(r["end"] for r in loaded)
    starts_after_first_wave = [r for r in loaded if r["start"] >= ends[0]]
    assert len(starts_after_first_wave) >= 24


def test_http2_loads_thirty_resources_on_one_connection(server):
    connections, loaded = load_page(server, http2=True)
    assert len(loaded) == 30 and {r["protocol"] for r in loaded} == {"h2"}
    assert connections == 1
