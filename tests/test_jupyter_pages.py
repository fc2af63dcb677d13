"""The labs in a real JupyterLab under a hub-like base URL, driven in headless Chromium.

A JupyterLab is started as a JupyterHub starts a learner's server (``base_url=/user/learner/``,
known token, loopback, a free port) with the settings ``make lab`` uses, on a copy of the
notebooks. In it: opening a notebook leaves it unmodified and shows no news prompt; after
Run All, 04's two chat pages exchange a message, 05's SSE page has its articles and resumes
after a server-side drop, 06's long-polling page has every notification — all through
``<base_url>proxy/<port>/`` (jupyter-server-proxy); and 00's pre-flight cell finds the proxy.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from labsupport import sse

ROOT = Path(__file__).resolve().parent.parent
BASE = "/user/learner/"
SETTINGS = ROOT / "jupyter" / "lab-settings"
START_TIMEOUT = 60
RUN_ALL_TIMEOUT_MS = 120_000
WAIT_MS = 15_000

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # `make quick` leaves it out


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Jupyter:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{BASE}"
        self.log = home / "jupyter.log"
        env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
               "JUPYTER_CONFIG_DIR": str(home / "config"),
               "PROTOCOL_LAB_PROGRESS": str(home / "progress.json")}
        env.pop("JUPYTERHUB_SERVICE_PREFIX", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
             "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
             "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.base_url={BASE}", f"--ServerApp.root_dir={home}",
             f"--LabApp.app_settings_dir={SETTINGS}", "--LabApp.expose_app_in_browser=True"],
            cwd=home, env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
        )

    def api(self, method: str, path: str, **options) -> requests.Response:
        return requests.request(method, f"{self.url}api/{path}", timeout=5,
                                headers={"Authorization": f"token {self.token}"}, **options)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if self.api("GET", "status").status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"JupyterLab did not start:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.api("POST", "shutdown")  # stops the kernels, and with them the lab servers
                self.process.wait(15)
            except (requests.RequestException, subprocess.TimeoutExpired):
                self.process.terminate()
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(5)


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory):
    pytest.importorskip("jupyter_server_proxy")
    home = tmp_path_factory.mktemp("hub-user")
    shutil.copytree(ROOT / "notebooks", home / "notebooks")
    server = Jupyter(home)
    server.wait_ready()
    yield server
    server.stop()


# --- JupyterLab, driven through its own application object ---------------------------

CURRENT = "window.jupyterapp.shell.currentWidget"


def open_notebook(browser, jupyter, name):
    page = browser.new_page()
    page.proxy_errors = []  # what a page's own requests got wrong, through the proxy
    page.on("response", lambda r: page.proxy_errors.append(f"{r.status} {r.url}")
            if "/proxy/" in r.url and r.status >= 400 else None)
    page.goto(f"{jupyter.url}lab/tree/notebooks/{name}?token={jupyter.token}")
    page.wait_for_function(
        f"""() => window.jupyterapp && {CURRENT} && {CURRENT}.context
            && {CURRENT}.context.path.endsWith({json.dumps(name)}) && {CURRENT}.context.isReady
            && {CURRENT}.sessionContext.session?.kernel?.status === 'idle'""",
        timeout=60_000)
    return page


def dirty(page) -> dict:
    return page.evaluate(f"""() => ({{
        model: {CURRENT}.context.model.dirty,
        tabs: document.querySelectorAll('.lm-TabBar-tab.jp-mod-dirty').length }})""")


def assert_opens_unmodified_without_news(page) -> None:
    page.wait_for_timeout(3000)  # JupyterLab writes kernel metadata soon after the kernel starts
    assert dirty(page) == {"model": False, "tabs": 0}, "opening the notebook modified it (●)"
    assert page.get_by_text(re.compile("Jupyter news", re.I)).count() == 0, "news prompt shown"


def run_all(page) -> None:
    page.evaluate("""async () => {
        await window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs');
        await window.jupyterapp.commands.execute('notebook:run-all-cells');
    }""")
    try:
        page.wait_for_function(
            f"""() => {CURRENT}.sessionContext.session.kernel.status === 'idle'
                && {CURRENT}.content.widgets.filter(c => c.model.type === 'code')
                   .every(c => c.model.executionCount !== null)""",
            timeout=RUN_ALL_TIMEOUT_MS)
    finally:
        errors = page.evaluate(f"""() => {CURRENT}.content.widgets
            .filter(c => c.model.type === 'code')
            .flatMap(c => c.model.outputs.toJSON())
            .filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue)""")
        assert errors == [], f"Run All raised: {errors}"


def run_cell(page, index) -> str:
    """Run one cell and return its output text."""
    page.evaluate(f"""async () => {{
        {CURRENT}.content.activeCellIndex = {index};
        await window.jupyterapp.commands.execute('notebook:run-cell');
    }}""")
    page.wait_for_function(
        f"() => {CURRENT}.content.widgets[{index}].model.executionCount !== null "
        f"&& {CURRENT}.sessionContext.session.kernel.status === 'idle'", timeout=60_000)
    return page.evaluate(f"""() => {CURRENT}.content.widgets[{index}].model.outputs.toJSON()
        .map(o => o.text || (o.data && o.data['text/plain']) || '').join('')""")


def close(page) -> None:
    assert page.proxy_errors == [], "requests through the proxy failed"
    page.close()


def lab_frames(page, count):
    """The notebook's page frames, each served through the proxy; waits for ``count``."""
    locator = page.locator("iframe[src*='/proxy/']")
    locator.nth(count - 1).wait_for(state="attached", timeout=WAIT_MS)
    sources = [locator.nth(n).get_attribute("src") for n in range(count)]
    assert all(s.startswith(f"{BASE}proxy/") for s in sources), sources
    for n in range(count):
        locator.nth(n).scroll_into_view_if_needed()
    return sources


def frame_at(page, source):
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        for frame in page.frames:
            if frame.url.endswith(source):
                return frame
        time.sleep(0.1)
    raise AssertionError(f"no frame loaded {source}: {[f.url for f in page.frames]}")


def lab_server(source: str) -> str:
    """The lab server behind a proxied page, reached directly (as the kernel does)."""
    found = re.match(rf"{BASE}proxy/(\d+)/", source)
    assert found, source
    port = found[1]
    return f"http://127.0.0.1:{port}"


# --- the tests ---------------------------------------------------------------------

def test_make_lab_uses_the_repos_settings_that_turn_the_news_off():
    dry_run = subprocess.run(["make", "-n", "lab", "BROWSER=none"], cwd=ROOT, text=True,
                             capture_output=True, timeout=30, check=True).stdout
    assert f"--LabApp.app_settings_dir={SETTINGS}" in dry_run
    overrides = json.loads((SETTINGS / "overrides.json").read_text())
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"


def test_00_preflight_reaches_a_lab_server_through_the_proxy(browser, jupyter):
    page = open_notebook(browser, jupyter, "00-start-here.ipynb")
    assert_opens_unmodified_without_news(page)
    first_code = page.evaluate(
        f"() => {CURRENT}.content.widgets.findIndex(c => c.model.type === 'code')")
    output = run_cell(page, first_code)
    proxy_line = "ok   pages through Jupyter (jupyter-server-proxy): /user/learner/proxy/"
    assert proxy_line in output, output
    assert "FIX" not in output, output
    close(page)


def test_04_two_chat_pages_talk_through_the_proxy_after_run_all(browser, jupyter):
    page = open_notebook(browser, jupyter, "04-websockets.ipynb")
    assert_opens_unmodified_without_news(page)
    run_all(page)
    edsger, barbara = (page.frame_locator(f"iframe[src='{s}']") for s in lab_frames(page, 2))
    for chat in (edsger, barbara):
        chat.locator("#status", has_text="connected as").wait_for(timeout=WAIT_MS)
    edsger.locator("#message").fill("Hello through Jupyter's proxy")
    edsger.locator("#message").press("Enter")
    for chat in (barbara, edsger):
        chat.locator("#messages li", has_text="Hello through Jupyter's proxy").wait_for(
            timeout=WAIT_MS)
    assert barbara.locator("#status").text_content().startswith("connected as")
    close(page)


def test_05_sse_page_has_its_articles_after_run_all_and_resumes(browser, jupyter):
    page = open_notebook(browser, jupyter, "05-sse.ipynb")
    assert_opens_unmodified_without_news(page)
    run_all(page)
    [source] = lab_frames(page, 1)
    frame = frame_at(page, source)
    frame.wait_for_function("window.received.length >= 3", timeout=WAIT_MS)
    titles = frame.evaluate("window.received.map(r => r.data.title)")
    assert titles[:3] == [a["title"] for a in sse.SAMPLE_ARTICLES[:2]] + [
        "<img src=x onerror=alert(1)>"], titles

    server = lab_server(source)
    opens = frame.evaluate("window.opens")
    assert requests.post(f"{server}/api/disconnect", timeout=5).json()["dropped"] >= 1
    for n in range(2):
        requests.post(f"{server}/api/broadcast", timeout=5,
                      json={"type": "news_article", "data": {"title": f"while away {n}"}})
    frame.wait_for_function(f"window.opens > {opens}", timeout=WAIT_MS)
    frame.wait_for_function("window.received.some(r => r.data.title === 'while away 1')",
                            timeout=WAIT_MS)
    ids = frame.evaluate("window.received.map(r => r.id)")
    assert ids == list(range(ids[0], ids[0] + len(ids))), f"lost or repeated events: {ids}"
    assert "while away 0" in frame.inner_text("#news-feed")
    close(page)


def test_06_long_polling_page_gets_every_notification_after_run_all(browser, jupyter):
    page = open_notebook(browser, jupyter, "06-long-polling.ipynb")
    assert_opens_unmodified_without_news(page)
    run_all(page)
    [source] = lab_frames(page, 1)
    frame = frame_at(page, source)
    server = lab_server(source)
    for n in range(3):
        requests.post(f"{server}/api/notifications/send", timeout=5, json={
            "user_id": "user-123", "type": "message", "data": {"message": f"after Run All {n}"}})
    frame.wait_for_function(
        "window.received.some(n => n.data.message === 'after Run All 2')", timeout=WAIT_MS)
    kept = requests.get(f"{server}/api/notifications/user-123", timeout=5).json()
    received = frame.evaluate("window.received.map(n => n.id)")
    assert received == [n["id"] for n in kept["notifications"]]
    assert "Welcome!" in frame.inner_text("#notifications")
    close(page)
