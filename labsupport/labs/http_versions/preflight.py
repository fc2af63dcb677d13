"""The pre-flight's check of this lab: ``python -m labsupport.preflight`` runs :func:`probe`."""

from __future__ import annotations

from . import start
from .h3client import H3Client

TIMEOUT = 10


def probe() -> str:
    """Start the hypercorn server, fetch ``/`` over HTTP/3 (QUIC) and say what came back."""
    with start(name="preflight-http-versions") as server, H3Client(server.port) as client:
        return f"GET / over HTTP/3 (QUIC) -> {client.fetch('/', timeout=TIMEOUT).status}"
