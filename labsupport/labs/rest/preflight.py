"""The pre-flight's check of this lab: ``python -m labsupport.preflight`` runs :func:`probe`."""

from __future__ import annotations

import requests

from . import server as rest

TIMEOUT = 5


def probe() -> str:
    """Start the REST lab's server, read one user, say what came back."""
    with rest.start(name="preflight-rest") as server:
        reply = requests.get(f"{server.url}/api/v1/users/101", timeout=TIMEOUT)
        reply.raise_for_status()
        return f"GET /api/v1/users/101 -> {reply.status_code}"
