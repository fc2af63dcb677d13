"""The SSE page in headless Chromium: receive, reconnect, resume, no XSS."""

from __future__ import annotations

import time

import pytest
import requests

from labsupport import sse

XSS = '<img src=x onerror="window.pwned=1">'


@pytest.fixture
def sse_server():
    with sse.start(name="sse-browser", heartbeat=0.5, retry_ms=300) as server:
        yield server


def received_ids(page):
    return page.evaluate("window.received.map(r => r.id)")


def test_eventsource_resumes_with_last_event_id_and_gets_exactly_what_it_missed(
        browser, sse_server, wait_until):
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


def test_sse_page_shows_server_data_as_text(browser, sse_server, wait_until):
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


# --- the document's client, as the notebook shows it ---------------------------

def test_the_documents_sse_client_fails_on_a_relative_url_and_allows_xss(document_client):
    page, errors = document_client("05-sse.ipynb", "news-feed")
    assert any("Invalid URL" in error for error in errors), errors
    page.evaluate("article => displayArticle(article)",
                  {"title": XSS, "summary": "", "category": "tech"})
    page.wait_for_function("window.pwned === 1", timeout=2000)
    page.close()
