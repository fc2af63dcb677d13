"""The pre-flight's check of this lab: ``python -m labsupport.preflight`` runs :func:`probe`."""

from __future__ import annotations

import json

from websockets.sync.client import connect

from . import server as chat

TIMEOUT = 5


def probe() -> str:
    """Start the chat server, open a WebSocket, say what the first message was."""
    with chat.start(name="preflight-websockets", fresh_data=False) as server, connect(
            f"{server.ws_url}?token={server.token_for(101)}", open_timeout=TIMEOUT) as ws:
        return f"WebSocket -> {json.loads(ws.recv(TIMEOUT))['type']}"
