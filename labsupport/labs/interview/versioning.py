"""Q7's REST versions: ``/api/v1`` and ``/api/v2`` side by side, v1 on its way out.

v1 answers with the ``Deprecation`` header (RFC 9745: a structured-field date,
``@`` and Unix seconds), the ``Sunset`` header (RFC 8594: an HTTP-date), and a
``Link`` to its successor; after its sunset it answers ``410 Gone`` in the
document's error envelope, naming the version to move to. The server's clock
is a :class:`Clock` the notebook can move, so a year of deprecation runs in a
cell.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify

from ... import database
from ...api_errors import APIError, OrderedJSONProvider, install_error_handlers
from ...database import User, db
from ...harness import ServerHandle, serve_wsgi

__all__ = ["Clock", "Lifecycle", "lifecycle_headers", "parse_deprecation", "parse_sunset",
           "successor_link",
           "create_app", "start", "VersionsHandle", "describe"]

HeaderMaker = Callable[[dt.datetime, dt.datetime, str], dict[str, str]]


@dataclass
class Clock:
    """The server's idea of now, which a notebook may set."""

    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class Lifecycle:
    """When v1 is deprecated and when it stops answering."""

    deprecated_at: dt.datetime
    sunset_at: dt.datetime
    successor: str = "/api/v2/users"


def lifecycle_headers(deprecated_at: dt.datetime, sunset_at: dt.datetime,
                      successor: str) -> dict[str, str]:
    """The headers a deprecated version sends: RFC 9745 ``Deprecation``, RFC 8594 ``Sunset``.

    ``Deprecation`` is a structured-field Date (``@`` + Unix seconds);
    ``Sunset`` is an HTTP-date; ``Link`` points at the successor version.
    """
    return {
        "Deprecation": f"@{int(deprecated_at.timestamp())}",
        "Sunset": format_datetime(sunset_at.astimezone(dt.UTC), usegmt=True),
        "Link": f'<{successor}>; rel="successor-version"',
    }


def parse_deprecation(value: str | None) -> dt.datetime | None:
    """The date of an RFC 9745 ``Deprecation`` header, or None if it is not one."""
    if not value or not value.startswith("@"):
        return None
    digits = value[1:]
    if not digits.lstrip("-").isdigit():
        return None
    return dt.datetime.fromtimestamp(int(digits), dt.UTC)


def parse_sunset(value: str | None) -> dt.datetime | None:
    """The date of an RFC 8594 ``Sunset`` header (an HTTP-date), or None if it is not one."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if parsed is None or parsed.tzinfo is None or not value.rstrip().endswith("GMT"):
        return None
    return parsed


def successor_link(value: str | None) -> str | None:
    """The target of a ``Link`` header's ``rel="successor-version"`` (RFC 5829), or None."""
    for part in (value or "").split(","):
        target, _, params = part.strip().partition(";")
        rels = {p.strip().removeprefix("rel=").strip('"') for p in params.split(";")
                if p.strip().startswith("rel=")}
        if target.startswith("<") and target.endswith(">") and any(
                "successor-version" in rel.split() for rel in rels):
            return target[1:-1]
    return None


@dataclass
class _VersionsLab:
    """What the routes serve from, kept in ``app.extensions["interview-versions"]``."""

    lifecycle: Lifecycle
    clock: Clock
    headers: HeaderMaker


routes = Blueprint("interview-versions", __name__)


def _lab() -> _VersionsLab:
    lab: _VersionsLab = current_app.extensions["interview-versions"]
    return lab


def create_app(lifecycle: Lifecycle, clock: Clock,
               headers: HeaderMaker = lifecycle_headers) -> Flask:
    """v1 and v2 of ``GET /api/vN/users/<id>``; v1 deprecated and sunset per ``lifecycle``."""
    app = Flask(__name__)
    app.json = OrderedJSONProvider(app)
    install_error_handlers(app)
    app.extensions["interview-versions"] = _VersionsLab(lifecycle, clock, headers)
    app.register_blueprint(routes)
    return app


@routes.teardown_app_request
def _remove_session(_exc: BaseException | None) -> None:
    db.session.remove()


def _user(user_id: int) -> User:
    found = db.session.get(User, user_id)
    if found is None:
        raise APIError(404, f"User {user_id} not found")
    return found


@routes.get("/api/v1/users/<int:user_id>")
def get_user_v1(user_id: int) -> Response:
    lab = _lab()
    now = lab.clock()
    successor = f"{lab.lifecycle.successor}/{user_id}"
    if now >= lab.lifecycle.sunset_at:
        raise APIError(410, "API v1 was retired; use v2", details={"successor": [successor]})
    response = jsonify(_user(user_id).to_dict_v1())
    if now >= lab.lifecycle.deprecated_at:
        response.headers.update(lab.headers(lab.lifecycle.deprecated_at,
                                            lab.lifecycle.sunset_at, successor))
    return response


@routes.get("/api/v2/users/<int:user_id>")
def get_user_v2(user_id: int) -> Response:
    return jsonify(_user(user_id).to_dict_v2())


class VersionsHandle(ServerHandle):
    """The versions server: set ``clock.now`` to travel in time."""

    clock: Clock
    lifecycle: Lifecycle


def start(lifecycle: Lifecycle, *, clock: Clock | None = None, name: str = "versions",
          headers: HeaderMaker = lifecycle_headers, fresh_data: bool = False) -> VersionsHandle:
    """Serve v1 and v2; ``handle.clock.now`` is the server's time (set it to travel)."""
    database.ready(fresh_data)
    clock = clock or Clock()
    return serve_wsgi(name, create_app(lifecycle, clock, headers), handle=VersionsHandle,
                      clock=clock, lifecycle=lifecycle)


def describe(response: Any) -> dict[str, Any]:
    """What a client learns from a v1 response: status, and the dates its headers give."""
    return {
        "status": response.status_code,
        "deprecated": parse_deprecation(response.headers.get("Deprecation")),
        "sunset": parse_sunset(response.headers.get("Sunset")),
        "link": response.headers.get("Link"),
    }
