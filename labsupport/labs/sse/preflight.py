"""The pre-flight's check of this lab: ``python -m labsupport.preflight`` runs :func:`probe`."""

from __future__ import annotations

import requests

from . import server as sse

TIMEOUT = 5


def probe() -> str:
    """Start the SSE lab's server, open its stream, say what its first line was."""
    with sse.start(name="preflight-sse") as server, requests.get(
            f"{server.url}/events?client_id=preflight", stream=True, timeout=TIMEOUT) as reply:
        first = next(reply.iter_lines(decode_unicode=True))
        return f"GET /events -> {reply.status_code}, {first}"
