"""EventSource's connection limit over HTTP/1.1, seen in headless Chromium.

Chromium keeps at most six connections per host over HTTP/1.1, and an open
EventSource holds one: the seventh stream of a page waits until another closes.
"""

from __future__ import annotations

import time

import pytest

from labsupport import sse

OPEN_SEVEN = """
window.opened = [];
window.sources = [];
for (let n = 0; n < 7; n++) {
  const source = new EventSource(`/events?client_id=limit${n}`);
  source.onopen = () => window.opened.push(n);
  window.sources.push(source);
}
"""


@pytest.fixture
def sse_server():
    with sse.start(name="choosing-browser-sse", heartbeat=0.5) as server:
        yield server


def streams(server):
    return [c for c in server.broker.connections() if c.startswith("limit")]


def test_the_seventh_eventsource_waits_until_another_closes(browser, sse_server, wait_until):
    page = browser.new_page()
    page.goto(f"{sse_server.url}/api/clients")  # same origin, and no stream of its own
    page.evaluate(OPEN_SEVEN)
    assert wait_until(lambda: len(streams(sse_server)) == 6)
    time.sleep(1.0)  # two heartbeats: the seventh has had time, and still waits
    assert len(streams(sse_server)) == 6
    assert page.evaluate("window.opened.length") == 6
    assert "limit6" not in streams(sse_server)

    page.evaluate("window.sources[0].close()")
    assert wait_until(lambda: "limit6" in streams(sse_server)), streams(sse_server)
    page.wait_for_function("window.opened.includes(6)", timeout=5000)
    page.close()
