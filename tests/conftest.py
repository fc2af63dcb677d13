"""Fixtures the tests share: bounded waiting, headless Chromium, the lab servers several
test files start the same way (GraphQL, gRPC, REST, the queues broker).

Tests that use the ``browser`` fixture skip, saying why, where no Chromium is found
(Debian's chromium, driven by Playwright); CI installs it (.ci/run).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import nbformat
import pytest

from labsupport import database, graphql_api, grpc_service, queues, rest
from labsupport.harness import ServerHandle

ROOT = Path(__file__).resolve().parent.parent

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def _wait_until(condition: Callable[[], object], timeout: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return bool(condition())


def _long_file(item: pytest.Item) -> bool:
    """A notebook, or a test module marked slow as a whole."""
    module = item.getparent(pytest.Module)
    return item.path.suffix == ".ipynb" or (
        module is not None and module.get_closest_marker("slow") is not None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the longest files first (the notebooks, the whole-system modules): on two workers
    (``--dist loadfile``) no long file is then left to start last."""
    items.sort(key=lambda item: not _long_file(item))


@pytest.fixture
def wait_until() -> Callable[..., bool]:
    """``wait_until(condition, timeout=5.0)``: a bounded wait for ``condition`` to hold."""
    return _wait_until


@pytest.fixture(scope="module")
def graphql_server() -> Iterator[ServerHandle]:
    """The GraphQL lab, as a notebook starts it (HTTP plus the subscription server)."""
    with graphql_api.start() as handle:
        yield handle


@pytest.fixture(scope="module")
def grpc_server() -> Iterator[ServerHandle]:
    """The gRPC lab on fresh sample data."""
    with grpc_service.start(name="grpc-test") as handle:
        yield handle


@pytest.fixture(scope="module")
def grpc_channel(grpc_server: ServerHandle) -> Iterator[grpc.Channel]:
    """A channel to ``grpc_server``, closed after the module."""
    with grpc_service.channel(grpc_server.url) as channel:
        yield channel


@pytest.fixture(scope="module")
def rest_server() -> Iterator[ServerHandle]:
    """The REST lab without its rate limit (tested on its own): tests are fast clients.
    The sample data is reset afterwards, whatever the tests wrote."""
    with rest.start(name="rest-test", rate_limit=None) as handle:
        yield handle
    database.reset()


@pytest.fixture(scope="module")
def queues_broker() -> Iterator[queues.BrokerHandle]:
    """The queues lab's NATS server with its JetStream streams."""
    with queues.start(name="queues-test") as handle:
        yield handle


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """A Playwright BrowserContext on the machine's Chromium; call .new_page() on it."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium); CI installs it")
    sync_api = pytest.importorskip("playwright.sync_api")
    with tempfile.TemporaryDirectory() as profile, sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield context
        finally:
            context.close()


def document_javascript(notebook: str) -> str:
    """The document's JavaScript block, taken from the notebook that shows it."""
    cells = nbformat.read(ROOT / "notebooks" / notebook, as_version=4).cells
    [block] = [c.source for c in cells if c.cell_type == "markdown" and "```javascript" in c.source]
    return block.split("```javascript\n", 1)[1].split("\n```", 1)[0]


@pytest.fixture
def document_client(browser) -> Callable[[str, str], tuple[object, list[str]]]:
    """``document_client(notebook, container)``: a page running the document's own client.

    Returns the page and the page errors it raised; the document's URLs lead nowhere.
    """

    def run(notebook: str, container: str) -> tuple[object, list[str]]:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.route("**/*", lambda route: route.abort())
        page.set_content(f'<div id="{container}"></div>')
        page.add_script_tag(content=document_javascript(notebook))
        return page, errors

    return run
