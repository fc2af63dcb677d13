"""Swagger UI, in a real browser: it renders the REST lab's contract from the lab server alone."""

from __future__ import annotations


def test_swagger_ui_renders_every_operation_offline(browser, rest_server):
    page = browser.new_page()
    elsewhere: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(rest_server.url)
            else elsewhere.append(request.url))
    try:
        page.goto(f"{rest_server.url}/docs/", timeout=10_000)
        page.wait_for_selector(".opblock", timeout=10_000)
        operations = page.locator(".opblock").count()
        title = page.locator(".info .title").first.inner_text(timeout=5_000)
    finally:
        page.close()
    assert operations == 19
    assert title.startswith("Protocol Lab REST API")
    assert elsewhere == [], "Swagger UI fetched something from outside the lab server"
