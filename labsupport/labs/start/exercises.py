"""Exercises of notebooks/00-start-here.ipynb: the warm-up."""

from __future__ import annotations

import requests
from flask import request as incoming
from sqlalchemy import select

from ... import database
from ...api_errors import APIError
from ...database import User, db
from ...engine import NotAttempted, Unmet, cases, closed_port, exercise, expect
from ...harness import serve_wsgi
from ..rest import server as rest


def user_name(base_url: str, user_id: int) -> str | None:
    """The name of user ``user_id`` from the REST API, or None if there is no such user."""
    response = requests.get(f"{base_url}/api/v1/users/{user_id}", timeout=5)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()["name"]


def _raises(user_name, base_url: str, user_id: int) -> str | None:
    """What ``user_name`` did on a failure: None if it raised (right), else what it returned."""
    try:
        returned = user_name(base_url, user_id)
    except Exception:
        return None
    return repr(returned)


@exercise(
    "start.first-request",
    title="Read one user over HTTP; None when the API answers 404",
    notebook="00-start-here",
    hints=[
        "requests.get(f\"{base_url}/api/v1/users/{user_id}\", timeout=5) makes the call.",
        "A user that does not exist comes back as status 404: look at response.status_code "
        "before reading the body. Only a 404 means \"no such user\": any other error (a 500, "
        "a refused connection) is not an answer, so let it raise (response.raise_for_status()).",
        "The body is JSON: response.json()[\"name\"].",
    ],
    reference=user_name,
)
def check_first_request(user_name):
    database.ready(False)
    names = {user.id: user.name for user in db.session.scalars(select(User))}
    db.session.remove()
    draw = cases()
    present = draw.sample(sorted(names), 2)
    missing_id = max(names) + draw.randrange(1000, 900_000)
    broken = {draw.randrange(1_000, 9_000): 500, draw.randrange(10_000, 90_000): 503}
    app = rest.create_app(rate_limit=None)

    def fail_some() -> None:
        for user_id, status in broken.items():
            if incoming.path == f"/api/v1/users/{user_id}":
                raise APIError(status, "the server failed (the check made it fail)")

    app.before_request(fail_some)
    with serve_wsgi("rest-check", app) as server:
        got = {user_id: user_name(server.url, user_id) for user_id in present}
        if all(name is None for name in got.values()) \
                and user_name(server.url, missing_id) is None:
            raise NotAttempted("user_name still returns None for every user")
        for user_id, name in got.items():
            expect(name == names[user_id],
                   f"user_name(url, {user_id}) should be {names[user_id]!r}, got {name!r}")
        try:
            missing = user_name(server.url, missing_id)
        except Exception as exc:
            raise Unmet(f"user_name(url, {missing_id}) raised {type(exc).__name__}: {exc}; the "
                        "API answers 404 for a user that does not exist: return None") from None
        expect(missing is None, f"user {missing_id} does not exist (the API answers 404); "
                                f"expected None, got {missing!r}")
        for user_id, status in broken.items():
            returned = _raises(user_name, server.url, user_id)
            expect(returned is None,
                   f"for user {user_id} the server answered {status} (it failed; the user may "
                   f"well exist) and you returned {returned}: only a 404 means no such user; "
                   "let any other error raise (response.raise_for_status())")
    nobody = f"http://127.0.0.1:{closed_port()}"
    returned = _raises(user_name, nobody, present[0])
    expect(returned is None,
           f"with no server at {nobody} the connection is refused and you returned {returned}: "
           "a network error is not \"no such user\"; let it raise")
    return "names read, 404 as None, 500, 503 and a refused connection raised"
