"""One package per lab: its server, its typed handle, its exercises and its pages.

``LABS`` lists the packages, in notebook order. A new lab adds its package name
here; its ``exercises`` module is then imported (registering its exercises)
the first time ``check``, ``hint``, ``solution`` or ``progress`` needs them.
"""

from __future__ import annotations

import importlib

LABS = [
    "start",
    "rest",
    "graphql_api",
    "grpc_service",
    "websocket_chat",
    "sse",
    "long_polling",
    "queues",
    "choosing",
    "interview",
    "http_versions",
]


def load_exercises() -> None:
    """Import every lab's ``exercises`` module, registering its exercises."""
    for lab in LABS:
        importlib.import_module(f"{__name__}.{lab}.exercises")
