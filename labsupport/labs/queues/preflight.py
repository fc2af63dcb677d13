"""The pre-flight's check of this lab: ``python -m labsupport.preflight`` runs :func:`probe`."""

from __future__ import annotations

from .broker import start
from .bus import Bus


def probe() -> str:
    """Start a NATS broker, connect to it and publish once, say where it runs."""
    with start(name="preflight-queues") as broker, Bus(broker.servers) as bus:
        bus.publish_core("preflight", {"ok": True})
        return f"NATS at {broker.address} -> connected, published"
