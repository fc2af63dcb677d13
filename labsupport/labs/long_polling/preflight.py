"""The pre-flight's check of this lab: ``python -m labsupport.preflight`` runs :func:`probe`."""

from __future__ import annotations

import requests

from . import server as long_polling

TIMEOUT = 5


def probe() -> str:
    """Start the long-polling lab's server, poll once without waiting, say what came back."""
    with long_polling.start(name="preflight-long-polling") as server:
        reply = requests.get(f"{server.url}/api/notifications/ada/poll?timeout=0",
                             timeout=TIMEOUT)
        reply.raise_for_status()
        return f"GET /api/notifications/ada/poll -> {reply.status_code}"
