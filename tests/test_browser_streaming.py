"""The SSE and long-polling pages in headless Chromium: receive, reconnect, resume, no XSS."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
import requests
from browser_helpers import browser  # noqa: F401  (the fixture)

from labsupport import long_polling, sse

ROOT = Path(__file__).resolve().parent.parent
XSS = '<img src=x onerror="window.pwned=1">'


def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def sse_server():
    with sse.start(name="sse-browser", heartbeat=0.5, retry_ms=300) as server:
        yield server


def received_ids(page):
    return page.evaluate("window.received.map(r => r.id)")


def test_eventsource_resumes_with_last_event_id_and_gets_exactly_what_it_missed(
        browser, sse_server):  # noqa: F811
    page = browser.new_page()
    page.goto(f"{sse_server.url}/?client_id=tab")
    assert wait_until(lambda: sse_server.broker.connections() == ["tab"])
    for n in range(2):
        sse_server.broker.publish("news_article", {"title": f"before {n}"})
    page.wait_for_function("window.received.length === 2", timeout=5000)

    assert sse_server.broker.drop_all() == 1
    assert wait_until(lambda: sse_server.broker.connections() == [])
    for n in range(2):
        sse_server.broker.publish("news_article", {"title": f"while away {n}"})
    assert wait_until(lambda: sse_server.broker.connections() == ["tab"]), "no reconnect"
    sse_server.broker.publish("notification", {"message": "after"})

    page.wait_for_function("window.received.length >= 5", timeout=5000)
    time.sleep(0.3)
    assert received_ids(page) == [1, 2, 3, 4, 5]
    assert sse_server.broker.resumed_from == [2], "the browser sent Last-Event-ID: 2"
    assert page.evaluate("window.opens") == 2
    page.close()


def test_sse_page_shows_server_data_as_text(browser, sse_server):  # noqa: F811
    page = browser.new_page()
    page.goto(f"{sse_server.url}/?client_id=xss")
    assert wait_until(lambda: sse_server.broker.connections() == ["xss"])
    requests.post(f"{sse_server.url}/api/broadcast",
                  json={"type": "news_article", "data": {"title": XSS}}, timeout=2)
    page.wait_for_function("window.received.length === 1", timeout=5000)
    assert XSS in page.inner_text("#news-feed")
    assert page.evaluate("window.pwned") is None
    assert page.locator("#news-feed img").count() == 0
    page.close()


def test_long_polling_page_receives_every_notification_as_text(browser):  # noqa: F811
    with long_polling.start(name="long-polling-browser", history=3) as server:
        page = browser.new_page()
        page.goto(f"{server.url}/?user=ada&timeout=2")
        assert wait_until(lambda: server.hub.waiting() == 1)
        for n in range(3):
            requests.post(f"{server.url}/api/notifications/send", json={
                "user_id": "ada", "type": "message", "data": {"message": f"hello {n}"}},
                timeout=2)
            time.sleep(0.05)
        requests.post(f"{server.url}/api/notifications/send", json={
            "user_id": "ada", "type": "message", "data": {"message": XSS}}, timeout=2)
        page.wait_for_function("window.received.length === 4", timeout=5000)
        assert page.evaluate("window.received.map(n => n.id)") == [1, 2, 3, 4]
        assert XSS in page.inner_text("#notifications")
        assert page.evaluate("window.pwned") is None
        page.close()


# --- the document's clients, as the notebooks show them --------------------------

def document_javascript(notebook: str) -> str:
    """The document's JavaScript block, taken from the notebook that shows it."""
    cells = nbformat.read(ROOT / "notebooks" / notebook, as_version=4).cells
    [block] = [c.source for c in cells if c.cell_type == "markdown" and "```javascript" in c.source]
    return block.split("```javascript\n", 1)[1].split("\n```", 1)[0]


def run_document_client(browser, script: str, container: str):  # noqa: F811
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.route("**/*", lambda route: route.abort())  # the document's URLs lead nowhere here
    page.set_content(f'<div id="{container}"></div>')
    page.add_script_tag(content=script)
    return page, errors


def test_the_documents_sse_client_fails_on_a_relative_url_and_allows_xss(browser):  # noqa: F811
    page, errors = run_document_client(browser, document_javascript("05-sse.ipynb"), "news-feed")
    assert any("Invalid URL" in error for error in errors), errors
    page.evaluate("article => displayArticle(article)",
                  {"title": XSS, "summary": "", "category": "tech"})
    page.wait_for_function("window.pwned === 1", timeout=2000)
    page.close()


def test_the_documents_long_polling_client_allows_xss(browser):  # noqa: F811
    page, _ = run_document_client(browser, document_javascript("06-long-polling.ipynb"),
                                  "notifications")
    page.evaluate("notification => displayNotification(notification)",
                  {"type": "message", "data": {"message": XSS}, "timestamp": 0})
    page.wait_for_function("window.pwned === 1", timeout=2000)
    page.close()
