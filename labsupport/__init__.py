"""Protocol Lab's support library: lab servers, shared data and exercises.

In a notebook::

    from labsupport import rest, check, hint, solution, progress
    server = rest.start()

Each lab lives in its own package, ``labsupport.labs.<lab>``. The names the
notebooks import (``labsupport.rest``, ``labsupport.chat``, ...) stay short:
they are the same module objects as the labs' servers, imported on first use.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

from .display import show
from .engine import check, hint, progress, reveal, solution
from .harness import running, stop_all

__all__ = ["check", "hint", "solution", "progress", "reveal", "running", "stop_all", "show"]

#: Short names kept for the notebooks, and the modules they stand for.
SHORT_NAMES = {
    "rest": "labs.rest.server",
    "graphql_api": "labs.graphql_api.server",
    "subscriptions": "labs.graphql_api.subscriptions",
    "grpc_service": "labs.grpc_service.server",
    "chat": "labs.websocket_chat.server",
    "socketio_chat": "labs.websocket_chat.socketio_server",
    "sse": "labs.sse.server",
    "long_polling": "labs.long_polling.server",
}


class _ShortNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``labsupport.<short name>`` as the lab module it stands for."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, short = fullname.rpartition(".")
        if package != __name__ or short not in SHORT_NAMES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        short = spec.name.rpartition(".")[2]
        module = importlib.import_module(f"{__name__}.{SHORT_NAMES[short]}")
        spec.loader_state = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Give back the module's own spec, which the import system replaced with ours."""
        ours = module.__spec__
        assert ours is not None
        module.__spec__ = ours.loader_state


sys.meta_path.append(_ShortNames())
