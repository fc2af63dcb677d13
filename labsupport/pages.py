"""The pages labs show in a browser: each lab's ``static/`` folder, read one way, and
where the learner's browser finds them: through Jupyter's own origin when it can.

A lab server listens on the kernel's ``127.0.0.1``. The learner's browser reaches that
address only when it runs on the same machine; on a JupyterHub or Binder it cannot. With
``jupyter-server-proxy`` the notebook server forwards ``<base_url>proxy/<port>/...`` (HTTP,
WebSocket and EventSource alike) to ``127.0.0.1:<port>``, on the origin the browser already
uses for the notebook, behind the same login. So a notebook shows::

    IFrame(pages.url(server, "/?client_id=notebook"), ...)

which is ``/user/ada/proxy/41235/?client_id=notebook`` under Jupyter (a path: the browser
keeps the notebook page's scheme and host) and ``http://127.0.0.1:41235/?client_id=notebook``
in plain Python. The pages use relative URLs only, so the same page works both ways.

Finding the server's ``base_url`` from the kernel: the server that started this kernel wrote
``jpserver-<its pid>.json`` into the runtime directory, the directory of the kernel's own
connection file, and it is this kernel's parent process; its ``base_url`` is exact on a
laptop, a JupyterHub and Binder alike. ``JUPYTERHUB_SERVICE_PREFIX`` (set by JupyterHub for
the single-user server and the kernels it starts) is the fallback when no such file is found
(e.g. a kernel started through a wrapper). Deriving the base in the page's own script was
rejected: JupyterLab does not run scripts in untrusted outputs, so a stored page would stay
blank until re-run.

An address may carry a token (the chat's ``?token=``), and it is stored in the notebook's
outputs. That gives nothing away: the token is signed with a secret made at each server start,
and the server serves only its owner's connections (:mod:`labsupport.owner`), so another user
of a shared machine holding it is refused all the same. The learner's own proxy runs as the
learner, so the page works.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

from flask import Response

__all__ = ["static_file", "static_response", "url", "base_url", "jupyter_server", "proxy_installed"]

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


def static_file(package: str, name: str) -> tuple[bytes, str]:
    """The bytes and content type of ``static/<name>`` in the lab package ``package``."""
    body = resources.files(package).joinpath("static", name).read_bytes()
    return body, CONTENT_TYPES["." + name.rpartition(".")[2]]


def static_response(package: str, name: str) -> Response:
    """``static/<name>`` of the lab package ``package`` as a Flask response."""
    body, content_type = static_file(package, name)
    return Response(body, content_type=content_type)  # positionally, the 2nd is the status


def _runtime_dirs() -> list[Path]:
    dirs = []
    try:
        from ipykernel.connect import get_connection_file

        dirs.append(Path(get_connection_file()).parent)
    except Exception:  # not in a kernel, or no connection file
        pass
    try:
        from jupyter_core.paths import jupyter_runtime_dir

        dirs.append(Path(jupyter_runtime_dir()))
    except ImportError:
        pass
    return dirs


@functools.cache
def jupyter_server() -> dict[str, Any] | None:
    """The runtime info (``base_url``, ``port``, ``token``, ...) of the Jupyter server
    that started this kernel, or ``None`` outside Jupyter."""
    parent = os.getppid()
    for directory in _runtime_dirs():
        for name in (f"jpserver-{parent}.json", f"nbserver-{parent}.json"):
            try:
                info = json.loads((directory / name).read_text())
            except (OSError, ValueError):
                continue
            if isinstance(info, dict) and info.get("pid") == parent:
                return info
    return None


def base_url() -> str | None:
    """The notebook server's base URL as the browser sees it (``/`` or ``/user/ada/``),
    or ``None`` outside Jupyter."""
    server = jupyter_server()
    base = server.get("base_url") if server else os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if not base:
        return None
    return "/" + base.strip("/") + "/" if base.strip("/") else "/"


def proxy_installed() -> bool:
    """Whether ``jupyter-server-proxy`` is installed beside this kernel."""
    return importlib.util.find_spec("jupyter_server_proxy") is not None


def url(server: Any, path: str = "/") -> str:
    """The address of ``path`` on a lab ``server`` for the learner's browser.

    ``<base_url>proxy/<port><path>`` under Jupyter with ``jupyter-server-proxy``,
    else ``http://127.0.0.1:<port><path>``.
    """
    if not path.startswith("/"):
        path = "/" + path
    base = base_url() if proxy_installed() else None
    if base is None:
        return f"{server.url}{path}"
    return f"{base}proxy/{server.port}{path}"
