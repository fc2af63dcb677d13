"""The labs on a real JupyterHub: a learner logs in, Run All, and every page works.

JupyterHub (from PyPI) runs behind its own proxy (configurable-http-proxy, from npm:
``npm ci`` in tools/jupyterhub), with ``SimpleLocalProcessSpawner`` starting the learner's
JupyterLab (the labs installed in its environment, jupyter-server-proxy loaded by it) and
the dummy authenticator. In headless Chromium the learner logs in at ``/hub/login``; then, in
each notebook with a page: Run All, and the page is used: 01's Swagger UI "Try it out", 04's
chat both ways, 05's news feed, 06's notifications. No request through the proxy answers 400
or more while the kernel lives. Skips, saying why, without Node's proxy or Chromium.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from test_jupyter_pages import (
    BASE,
    SETTINGS,
    WAIT_MS,
    assert_opens_unmodified_without_news,
    close,
    frame_at,
    free_port,
    lab_frames,
    open_notebook,
    run_all,
)

ROOT = Path(__file__).resolve().parent.parent
PROXY = ROOT / "tools" / "jupyterhub" / "node_modules" / ".bin" / "configurable-http-proxy"
USER, PASSWORD = "learner", "protocol-lab"
START_TIMEOUT = 90

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # `make quick` leaves it out

CONFIG = """
c = get_config()  # noqa: F821
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.JupyterHub.db_url = "sqlite:///{home}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{home}/cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allowed_users = {{{user!r}}}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = "{home}/{{username}}"
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = {start_timeout}
c.Spawner.http_timeout = {start_timeout}
c.Spawner.args = ["--allow-root", "--LabApp.app_settings_dir={settings}",
                  "--LabApp.expose_app_in_browser=True"]
c.Spawner.environment = {{"PROTOCOL_LAB_PROGRESS": "{home}/{user}/progress.json"}}
"""


class Hub:
    """A JupyterHub with its proxy, on free loopback ports, in ``home``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        port = free_port()
        self.root = f"http://127.0.0.1:{port}"
        self.url = f"{self.root}{BASE}"  # the learner's server, as open_notebook wants it
        self.token = ""  # the learner is logged in by cookie, not by token
        singleuser = Path(sys.executable).with_name("jupyterhub-singleuser")
        (home / "jupyterhub_config.py").write_text(CONFIG.format(
            port=port, hub_port=free_port(), api_port=free_port(), proxy=str(PROXY),
            home=home, password=PASSWORD, user=USER, singleuser=str(singleuser),
            settings=SETTINGS, start_timeout=START_TIMEOUT))
        learner = home / USER
        learner.mkdir()
        shutil.copytree(ROOT / "notebooks", learner / "notebooks")
        self.log = home / "jupyterhub.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(home / "jupyterhub_config.py")],
            cwd=home, env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if requests.get(f"{self.root}/hub/api/", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        self.stop()
        pytest.fail(f"JupyterHub did not start:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # the hub stops the learner's server and its proxy
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    if not PROXY.exists():
        pytest.skip("no configurable-http-proxy: `npm ci` in tools/jupyterhub (Node 18 or "
                    "newer); CI does it")
    pytest.importorskip("jupyterhub", reason="JupyterHub is in the [test] extra")
    pytest.importorskip("jupyter_server_proxy")
    server = Hub(tmp_path_factory.mktemp("hub"))
    server.wait_ready()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def learner(browser, hub):
    """The browser, logged in as the learner, their JupyterLab running."""
    page = browser.new_page()
    try:
        page.goto(f"{hub.root}/hub/login", timeout=30_000)
        page.fill("input[name=username]", USER)
        page.fill("input[name=password]", PASSWORD)
        page.click("input[type=submit], button[type=submit]")
        page.wait_for_url(f"**{BASE}lab**", timeout=START_TIMEOUT * 1000)
    except Exception:
        print(hub.tail())
        raise
    finally:
        page.close()
    return browser


def test_01_swagger_try_it_out_reaches_the_lab_server_through_the_hub(learner, hub):
    page = open_notebook(learner, hub, "01-rest.ipynb")
    assert_opens_unmodified_without_news(page)
    run_all(page)
    [source] = [s for s in lab_frames(page, 1) if s.endswith("/docs/")]
    frame = frame_at(page, source)
    operation = frame.locator("[id='operations-users-users\\\\.get_user']")
    operation.locator(".opblock-summary").click(timeout=WAIT_MS)
    operation.locator("button.try-out__btn").click(timeout=WAIT_MS)
    operation.locator("input[placeholder='user_id']").fill("101")
    operation.locator("button.execute").click(timeout=WAIT_MS)
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    assert status.inner_text(timeout=WAIT_MS).strip() == "200"
    url = operation.locator(".request-url pre").first.inner_text(timeout=WAIT_MS)
    assert f"{BASE}proxy/" in url and url.endswith("/api/v1/users/101"), url
    close(page)


def test_04_two_chat_pages_talk_both_ways_through_the_hub(learner, hub):
    page = open_notebook(learner, hub, "04-websockets.ipynb")
    assert_opens_unmodified_without_news(page)
    run_all(page)
    edsger, barbara = (page.frame_locator(f"iframe[src='{s}']") for s in lab_frames(page, 2))
    for chat in (edsger, barbara):
        chat.locator("#status", has_text="connected as").wait_for(timeout=WAIT_MS)
    for sender, text in ((edsger, "Hello from Edsger, via the hub"),
                         (barbara, "Hello back from Barbara")):
        sender.locator("#message").fill(text)
        sender.locator("#message").press("Enter")
        for chat in (edsger, barbara):
            chat.locator("#messages li", has_text=text).wait_for(timeout=WAIT_MS)
    close(page)


def test_05_news_feed_fills_through_the_hub(learner, hub):
    page = open_notebook(learner, hub, "05-sse.ipynb")
    run_all(page)
    [source] = lab_frames(page, 1)
    frame = frame_at(page, source)
    frame.wait_for_function("window.received.length >= 3", timeout=WAIT_MS)
    assert "<img src=x onerror=alert(1)>" in frame.inner_text("#news-feed")
    close(page)


def test_06_notifications_arrive_through_the_hub(learner, hub):
    page = open_notebook(learner, hub, "06-long-polling.ipynb")
    run_all(page)
    [source] = lab_frames(page, 1)
    frame = frame_at(page, source)
    frame.wait_for_function("window.received.length >= 1", timeout=WAIT_MS)
    assert "Welcome!" in frame.inner_text("#notifications")
    close(page)


def test_07_an_order_placed_on_the_page_comes_back_as_a_notification(learner, hub):
    page = open_notebook(learner, hub, "07-queues-vs-direct.ipynb")
    run_all(page)
    frames = page.locator("iframe[src*='/orders-page']")
    frames.first.wait_for(state="attached", timeout=WAIT_MS)
    frames.first.scroll_into_view_if_needed()
    orders = page.frame_locator("iframe[src*='/orders-page']").first
    orders.locator("#status", has_text="connected").wait_for(timeout=WAIT_MS)
    orders.locator("#item").fill("Hub keyboard")
    orders.locator("button", has_text="Place order").click()
    status = orders.locator("#status")
    status.filter(has_text=re.compile("placed|error")).wait_for(timeout=WAIT_MS)
    assert "placed" in status.inner_text(), status.inner_text()
    orders.locator("#notifications div").first.wait_for(timeout=WAIT_MS)
    close(page)
