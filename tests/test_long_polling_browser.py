"""The long-polling page in headless Chromium, and the document's own client: no XSS."""

from __future__ import annotations

import time

import requests

from labsupport import long_polling

XSS = '<img src=x onerror="window.pwned=1">'


def test_long_polling_page_receives_every_notification_as_text(browser, wait_until):
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


def test_the_documents_long_polling_client_allows_xss(document_client):
    page, _ = document_client("06-long-polling.ipynb", "notifications")
    page.evaluate("notification => displayNotification(notification)",
                  {"type": "message", "data": {"message": XSS}, "timestamp": 0})
    page.wait_for_function("window.pwned === 1", timeout=2000)
    page.close()
