"""labsupport.pages: a lab page's address through Jupyter's proxy, or direct outside Jupyter."""

from __future__ import annotations

import json
import os

import pytest
import requests

import labsupport
from labsupport import long_polling, pages


@pytest.fixture
def server():
    with long_polling.start(name="pages-test") as handle:
        yield handle


@pytest.fixture(autouse=True)
def outside_jupyter(tmp_path, monkeypatch):
    """No hub variable, an empty runtime directory, nothing remembered from before."""
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    pages.jupyter_server.cache_clear()
    yield tmp_path
    pages.jupyter_server.cache_clear()


def write_runtime_file(directory, pid, base_url):
    info = {"base_url": base_url, "pid": pid, "port": 8888, "token": "t", "hostname": "127.0.0.1"}
    (directory / f"jpserver-{pid}.json").write_text(json.dumps(info))


def test_outside_jupyter_the_page_is_the_direct_url(server):
    assert pages.base_url() is None
    assert pages.url(server, "/?user=ada") == f"http://127.0.0.1:{server.port}/?user=ada"


def test_under_the_jupyter_server_that_started_the_kernel_it_goes_through_its_proxy(
        server, outside_jupyter):
    write_runtime_file(outside_jupyter, os.getppid(), "/user/learner/")
    assert pages.url(server, "/?user=ada") == f"/user/learner/proxy/{server.port}/?user=ada"
    assert pages.url(server) == f"/user/learner/proxy/{server.port}/"


def test_another_jupyter_servers_runtime_file_is_not_ours(server, outside_jupyter):
    write_runtime_file(outside_jupyter, os.getppid() + 1, "/user/someone-else/")
    assert pages.url(server) == f"http://127.0.0.1:{server.port}/"


def test_on_a_hub_the_service_prefix_is_the_fallback(server, monkeypatch, outside_jupyter):
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada")
    assert pages.url(server, "/x") == f"/user/ada/proxy/{server.port}/x"
    pages.jupyter_server.cache_clear()
    write_runtime_file(outside_jupyter, os.getppid(), "/")
    assert pages.url(server, "/x") == f"/proxy/{server.port}/x", "the server's own file wins"


def test_without_jupyter_server_proxy_the_page_stays_direct(server, monkeypatch,
                                                            outside_jupyter):
    write_runtime_file(outside_jupyter, os.getppid(), "/user/learner/")
    monkeypatch.setattr(pages, "proxy_installed", lambda: False)
    assert pages.url(server) == f"http://127.0.0.1:{server.port}/"


@pytest.mark.parametrize("lab, path, script", [
    ("sse", "/", "static/sse-client.js"),
    ("long_polling", "/", "static/long-polling-client.js"),
    ("chat", "/?token=x", "chat.js"),
])
def test_each_page_is_served_as_html_and_its_script_by_a_relative_url(lab, path, script):
    """A page and what it loads, with 200 and their types (a proxy relays nothing less)."""
    module = getattr(labsupport, lab)  # the lab by its short name
    with module.start(name=f"pages-{lab}") as handle:
        page = requests.get(f"{handle.url}{path}", timeout=5)
        assert page.status_code == 200
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
        assert f'src="{script}"' in page.text, "relative, so it works under proxy/<port>/"
        loaded = requests.get(f"{handle.url}/{script}", timeout=5)
        assert loaded.status_code == 200
        assert loaded.headers["Content-Type"].startswith("text/javascript")
