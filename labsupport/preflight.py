"""Pre-flight check: is this environment ready for the labs? Says exactly what to fix.

    python -m labsupport.preflight      # or: make check-env; or the first cell of 00-start-here

It checks that the packages the labs import are there, that every lab server starts on
127.0.0.1 and answers, that the pages reach a lab server through Jupyter's proxy (when
run in a notebook), and whether a Chromium is present (the browser tests need one).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import ipaddress
import os
import shutil
import sys
from collections.abc import Callable
from typing import Any

import requests

from . import harness, pages
from .labs import LABS, Lab

__all__ = ["Result", "preflight", "run"]

TIMEOUT = 5
VENV_FIX = "run `make lab` (it installs them), or `pip install -e .` in this repo"
# The import name of each package the labs need (pyproject.toml's dependencies).
PACKAGES = {
    "jupyterlab": "jupyterlab", "ipykernel": "ipykernel", "jupyter-server-proxy":
    "jupyter_server_proxy", "flask": "flask", "sqlalchemy": "sqlalchemy", "graphene": "graphene",
    "aiodataloader": "aiodataloader", "grpcio": "grpc", "grpcio-tools": "grpc_tools",
    "grpcio-health-checking": "grpc_health", "grpcio-reflection": "grpc_reflection",
    "grpcio-status": "grpc_status", "protobuf": "google.protobuf", "websockets": "websockets",
    "requests": "requests", "sseclient-py": "sseclient", "flask-socketio": "flask_socketio",
    "python-socketio": "socketio", "simple-websocket": "simple_websocket",
    "matplotlib": "matplotlib", "h11": "h11", "h2": "h2", "wsproto": "wsproto",
    "CacheControl": "cachecontrol", "psutil": "psutil", "marshmallow": "marshmallow",
    "apispec": "apispec", "swagger-ui-bundle-v2": "swagger_ui_bundle",
    "openapi-core": "openapi_core", "nats-py": "nats", "hypercorn": "hypercorn",
    "aioquic": "aioquic", "httpx": "httpx", "trustme": "trustme", "pywebpush": "pywebpush",
    "numpy": "numpy",
}

#: Packages that ship a program rather than a module (declared by the labs that run them).
PROGRAMS_OF_LABS = [(lab, program) for lab in LABS for program in lab.programs]
PROGRAMS = {program.package: program.name for _, program in PROGRAMS_OF_LABS}


@dataclasses.dataclass
class Result:
    """One check: ``ok`` True (passed), False (fix it) or None (not applicable here)."""

    what: str
    ok: bool | None
    detail: str = ""
    fix: str = ""

    def __str__(self) -> str:
        mark = {True: "ok  ", False: "FIX ", None: "--  "}[self.ok]
        line = f"{mark} {self.what}" + (f": {self.detail}" if self.detail else "")
        return line + (f"\n       -> {self.fix}" if self.fix else "")


# Run by the notebook server, not imported by the labs: found is enough (and much quicker).
SERVER_SIDE = {"jupyterlab", "jupyter_server_proxy"}


def check_packages() -> Result:
    missing = []
    for package, module in PACKAGES.items():
        try:
            if module in SERVER_SIDE:
                if importlib.util.find_spec(module) is None:
                    raise ImportError(module)
            else:
                importlib.import_module(module)
        except Exception as error:  # ImportError, or a broken install
            missing.append(f"{package} ({type(error).__name__})")
    for lab, program in PROGRAMS_OF_LABS:
        try:
            lab.load(program.find)()
        except Exception:  # the lab's own error says how to install it
            missing.append(f"{program.package} (no {program.name} program)")
    if missing:
        return Result("packages", False, "missing: " + ", ".join(missing),
                      f"{VENV_FIX}; is this notebook's kernel the repo's .venv / conda env?")
    return Result("packages", True, f"all {len(PACKAGES) + len(PROGRAMS)} installed")


# --- each lab server: start it, ask it one thing (the lab's preflight.probe) ----------

def _probe_of(lab: Lab) -> Callable[[], str]:
    return lambda: lab.load("preflight:probe")()


#: Each lab server's label, and its lab's probe, from the registry of labs.
SERVERS: dict[str, Callable[[], str]] = {
    f"{lab.probe} ({lab.notebook[:2]})": _probe_of(lab) for lab in LABS if lab.probe
}


def check_server(label: str, probe: Callable[[], str]) -> Result:
    try:
        return Result(f"{label} server", True, probe())
    except Exception as error:
        return Result(f"{label} server", False, f"{type(error).__name__}: {error}",
                      "re-run this check; if it fails again, restart the kernel "
                      f"(Kernel -> Restart) and {VENV_FIX}")


# --- the proxy the pages of 04-06 go through -------------------------------------

def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def jupyter_address(server: dict[str, Any]) -> str:
    """The Jupyter server as seen from this kernel (its own machine)."""
    scheme = "https" if server.get("secure") else "http"
    host = server.get("hostname") or "localhost"
    if host == "localhost" or _is_unspecified(host):  # listening on every address
        host = "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{server['port']}{pages.base_url()}"


PROXY_MARK = "protocol-lab-preflight"


def _proxy_page(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """A page served like a lab's (a WSGI server on 127.0.0.1), to be fetched through the proxy."""
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [f"<!doctype html><p id={PROXY_MARK}>reached</p>".encode()]


def check_proxy() -> Result:
    what = "pages through Jupyter (jupyter-server-proxy)"
    server = pages.jupyter_server()
    if pages.base_url() is None:
        return Result(what, None, "not under a Jupyter server here; pages use 127.0.0.1 directly")
    if not pages.proxy_installed():
        return Result(what, False, "jupyter-server-proxy is not installed beside this kernel",
                      f"{VENV_FIX}, then restart JupyterLab")
    if server is None:
        return Result(what, None, f"on a hub ({pages.base_url()}); the pages go through "
                      "its proxy, which this kernel cannot log in to and test")
    token = server.get("token") or os.environ.get("JUPYTERHUB_API_TOKEN", "")
    with harness.serve_wsgi("preflight-proxy", _proxy_page) as page:
        address = f"{jupyter_address(server)}proxy/{page.port}/"
        try:
            reply = requests.get(address, headers={"Authorization": f"token {token}"},
                                 timeout=TIMEOUT, allow_redirects=False)
        except requests.RequestException as error:
            return Result(what, False, f"{address}: {type(error).__name__}",
                          "restart JupyterLab from this environment (`make lab`)")
    if reply.status_code == 200 and PROXY_MARK in reply.text:
        return Result(what, True, f"{pages.base_url()}proxy/<port>/ reaches the lab servers")
    if reply.status_code == 404:
        return Result(what, False, f"{address} -> 404: the server has no proxy extension",
                      "install jupyter-server-proxy where JupyterLab runs "
                      "(`pip install jupyter-server-proxy`) and restart JupyterLab")
    return Result(what, False, f"{address} -> {reply.status_code}",
                  "restart JupyterLab from this environment (`make lab`)")


def check_machine() -> Result:
    """Which set-up this is (own container, shared machine, laptop) and the owner check."""
    from . import owner

    sentence, safe = owner.setup()
    return Result("machine", safe, sentence, "" if safe else
                  "other learners can reach these lab servers: give each learner a container "
                  "(DockerSpawner, KubeSpawner); see INSTRUCTORS.md")


def check_chromium() -> Result:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        return Result("Chromium (for instructors: the browser tests)", None, "not found",
                      "only `make test` needs it: apt-get install chromium (it skips without)")
    return Result("Chromium (for instructors: the browser tests)", True, "found")


def run() -> list[Result]:
    """Every check, in order."""
    results = [check_packages()]
    if results[0].ok:
        results += [check_server(label, probe) for label, probe in SERVERS.items()]
        results.append(check_proxy())
    results.append(check_machine())
    results.append(check_chromium())
    return results


def report(results: list[Result]) -> int:
    """Print one line per check and a verdict; the number of things to fix."""
    for result in results:
        print(result)
    problems = sum(result.ok is False for result in results)
    print("All set." if not problems else f"{problems} to fix (see -> above).")
    return problems


def preflight() -> None:
    """Run every check and say what to fix (the first cell of 00-start-here)."""
    report(run())


if __name__ == "__main__":
    sys.exit(1 if report(run()) else 0)
