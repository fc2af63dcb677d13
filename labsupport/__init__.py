"""Protocol Lab's support library: lab servers, shared data and exercises.

In a notebook::

    from labsupport import rest, check, hint, solution, progress
    server = rest.start()

Each lab lives in its own package, ``labsupport.labs.<lab>``. A notebook
imports a lab by its short name from ``labsupport`` (``rest``, ``chat``,
``queues``, ...: :data:`SHORT_NAMES`, declared by each lab's entry in
:data:`labs.LABS`), and anything inside a lab by its real module path
(``from labsupport.labs.websocket_chat.server import TokenSigner``).
A short name is the lab module itself, imported on first use (PEP 562), so
``import labsupport`` stays quick; the imports under ``TYPE_CHECKING`` let a
type checker see every short name.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from .display import show
from .engine import check, hint, progress, reveal, solution
from .harness import running, stop_all
from .labs import LABS

if TYPE_CHECKING:
    from .labs import choosing, http_versions, interview, queues
    from .labs.graphql_api import server as graphql_api
    from .labs.graphql_api import subscriptions
    from .labs.grpc_service import server as grpc_service
    from .labs.long_polling import server as long_polling
    from .labs.rest import server as rest
    from .labs.sse import server as sse
    from .labs.websocket_chat import server as chat
    from .labs.websocket_chat import socketio_server as socketio_chat


#: Each lab's short name and the module it stands for, from the registry of labs. The
#: imports under ``TYPE_CHECKING`` above name the same modules (ruff's F401
#: is off for this file for them; tests/test_imports.py checks that the two agree).
SHORT_NAMES = {short: ".".join(filter(None, ("labs", lab.slug, module)))
               for lab in LABS for short, module in lab.short_names.items()}

__all__ = ["check", "hint", "solution", "progress", "reveal", "running", "stop_all", "show",
           *SHORT_NAMES]


def __getattr__(name: str) -> ModuleType:
    """Import a lab's short name on first use (``labsupport.rest`` and the like)."""
    if name not in SHORT_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{SHORT_NAMES[name]}")
    globals()[name] = module
    return module


def __dir__() -> list[str]:
    return sorted([*globals(), *SHORT_NAMES])
