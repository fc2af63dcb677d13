"""The pre-flight check: what it finds here, and what it says when something is wrong."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from labsupport import pages, preflight, rest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def outside_jupyter(tmp_path, monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    pages.jupyter_server.cache_clear()
    yield tmp_path
    pages.jupyter_server.cache_clear()


def test_this_environment_passes_and_the_command_says_so():
    done = subprocess.run([sys.executable, "-m", "labsupport.preflight"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (f"ok   packages: all {len(preflight.PACKAGES) + len(preflight.PROGRAMS)} "
                        "installed")
    for lab in ("REST (01)", "GraphQL (02)", "gRPC (03)", "WebSockets (04)", "SSE (05)",
                "long polling (06)"):
        assert any(line.startswith(f"ok   {lab} server: ") for line in lines), lab
    assert "--   pages through Jupyter (jupyter-server-proxy): not under a Jupyter server" in (
        done.stdout)
    assert lines[-1] == "All set."
    assert not done.stderr, "nothing on stderr (no server logs)"


def test_every_dependency_in_pyproject_is_checked():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[\[<>=]", r, maxsplit=1)[0] for r in project["dependencies"]}
    assert names == set(preflight.PACKAGES) | set(preflight.PROGRAMS)


def test_a_missing_package_is_named_with_the_fix(monkeypatch, capsys):
    monkeypatch.setitem(preflight.PACKAGES, "no-such-package", "no_such_package")
    result = preflight.check_packages()
    assert result.ok is False
    assert "missing: no-such-package (ModuleNotFoundError)" in result.detail
    assert "make lab" in result.fix
    assert preflight.report([result]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "1 to fix (see -> above)."


def test_a_server_that_fails_is_named_with_its_error_and_the_fix():
    def broken() -> str:
        raise OSError("Address already in use")

    result = preflight.check_server("REST (01)", broken)
    assert result.ok is False
    assert str(result).startswith("FIX  REST (01) server: OSError: Address already in use\n")
    assert "restart the kernel" in result.fix


def test_a_jupyter_server_without_the_proxy_extension_is_told_what_to_install(outside_jupyter):
    """A "Jupyter server" that answers 404 under proxy/ (here the REST lab) lacks the proxy."""
    with rest.start(name="preflight-fake-jupyter") as fake:
        info = {"pid": os.getppid(), "port": fake.port, "base_url": "/", "token": "t",
                "hostname": "127.0.0.1"}
        (outside_jupyter / f"jpserver-{os.getppid()}.json").write_text(json.dumps(info))
        result = preflight.check_proxy()
    assert result.ok is False
    assert "-> 404: the server has no proxy extension" in result.detail
    assert "pip install jupyter-server-proxy" in result.fix


def test_chromium_is_reported_not_required(monkeypatch):
    monkeypatch.setattr(preflight.shutil, "which", lambda name: None)
    result = preflight.check_chromium()
    assert result.ok is None and "apt-get install chromium" in result.fix


@pytest.mark.parametrize("hostname, address", [
    ("0.0.0.0", "127.0.0.1"), ("::", "127.0.0.1"), ("localhost", "127.0.0.1"),
    ("", "127.0.0.1"), ("127.0.0.2", "127.0.0.2"), ("::1", "[::1]"),
])
def test_the_jupyter_server_is_reached_on_an_address_it_listens_on(outside_jupyter, hostname,
                                                                    address):
    """A server listening on every address (0.0.0.0, ::) is reached on the loopback."""
    server = {"port": 8888, "hostname": hostname, "secure": False}
    assert preflight.jupyter_address(server).startswith(f"http://{address}:8888")
