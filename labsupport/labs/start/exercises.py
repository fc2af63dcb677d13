"""Exercises of notebooks/00-start-here.ipynb: the warm-up."""

from __future__ import annotations

import requests

from ...engine import NotAttempted, Unmet, exercise, expect
from ..rest import server as rest


def user_name(base_url: str, user_id: int) -> str | None:
    """The name of user ``user_id`` from the REST API, or None if there is no such user."""
    response = requests.get(f"{base_url}/api/v1/users/{user_id}", timeout=5)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()["name"]


@exercise(
    "start.first-request",
    title="Read one user over HTTP; None when the API answers 404",
    notebook="00-start-here",
    hints=[
        "requests.get(f\"{base_url}/api/v1/users/{user_id}\", timeout=5) makes the call.",
        "A user that does not exist comes back as status 404: look at response.status_code "
        "before reading the body.",
        "The body is JSON: response.json()[\"name\"].",
    ],
    reference=user_name,
)
def check_first_request(user_name):
    with rest.start(name="rest-check", fresh_data=False) as server:
        name = user_name(server.url, 101)
        if name is None and user_name(server.url, 999_999) is None:
            raise NotAttempted("user_name still returns None for every user")
        expect(name == "Ada Lovelace",
               f"user_name(url, 101) should be 'Ada Lovelace', got {name!r}")
        try:
            missing = user_name(server.url, 999_999)
        except Exception as exc:
            raise Unmet(f"user_name(url, 999999) raised {type(exc).__name__}: {exc}; the API "
                        "answers 404 for a user that does not exist: return None") from None
        expect(missing is None,
               f"user 999999 does not exist (the API answers 404); expected None, got {missing!r}")
    return "200 read, 404 handled"
