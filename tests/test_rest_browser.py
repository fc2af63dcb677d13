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


def test_try_it_out_reaches_the_lab_behind_a_path_prefixed_proxy(browser, rest_server):
    """On a hub the page is ``<base_url>proxy/<port>/docs/``: "Try it out" must send its
    request under that prefix (the document's relative ``servers`` entry), not to the
    origin's root, where the hub would answer 404."""
    prefix = "http://hub.test/user/learner/proxy/5000"
    page = browser.new_page()
    outside: list[str] = []
    sent: list[str] = []

    def proxy(route) -> None:
        url = route.request.url
        if not url.startswith(prefix + "/"):
            outside.append(url)
            route.fulfill(status=404, body="not under the proxy's prefix")
            return
        sent.append(url)
        response = route.fetch(url=rest_server.url + url[len(prefix):])
        route.fulfill(response=response)

    page.route("http://hub.test/**", proxy)
    try:
        page.goto(f"{prefix}/docs/", timeout=10_000)
        # Swagger UI escapes the operationId's dot in the element id: a backslash in the id
        operation = page.locator("[id='operations-users-users\\\\.get_user']")
        operation.locator(".opblock-summary").click(timeout=10_000)
        operation.locator("button.try-out__btn").click(timeout=5_000)
        operation.locator("input[placeholder='user_id']").fill("101")
        operation.locator("button.execute").click(timeout=5_000)
        status = operation.locator(".live-responses-table tbody .response-col_status").first
        shown = status.inner_text(timeout=10_000).strip()
    finally:
        page.close()
    assert outside == [], f"requests that missed the proxy: {outside}"
    assert f"{prefix}/api/v1/users/101" in sent
    assert shown == "200"
