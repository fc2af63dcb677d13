"""Q5 in a real browser: the orders page places an order and shows its notification as text."""

from __future__ import annotations

import time

from labsupport import queues
from labsupport.labs.queues import pipeline


def test_the_orders_page_gets_its_notification_and_catches_up(browser, wait_until):
    with queues.start(name="queues-browser") as broker:
        app = pipeline.start(broker, name="queues-browser-app")
        try:
            page = browser.new_page()
            page.goto(f"{app.url}/orders-page?user=101")
            assert wait_until(lambda: app.sse.connections() == ["user-101"])
            page.fill("#item", "<img src=x onerror=window.pwned=1>")
            page.click("button")
            page.wait_for_function(
                "document.querySelectorAll('#notifications div').length === 1", timeout=5000)
            assert "(<img src=x onerror=window.pwned=1>) is confirmed" in page.inner_text(
                "#notifications")
            assert page.locator("#notifications img").count() == 0

            app.stop_worker()  # orders wait in the stream
            page.click("button")
            page.wait_for_function("document.getElementById('status').textContent"
                                   ".startsWith('order ')", timeout=5000)
            time.sleep(0.3)
            assert page.locator("#notifications div").count() == 1
            app.start_worker()
            page.wait_for_function(
                "document.querySelectorAll('#notifications div').length === 2", timeout=5000)
            assert page.evaluate("window.pwned") is None
            page.close()
        finally:
            app.stop()
