"""Subjects built from user input: one safe token per piece, or a clear error.

A NATS subject is dot-separated tokens; ``*`` and ``>`` are wildcards, and
spaces or empty tokens make it invalid. A user id of ``"*"`` must never turn
``orders.created.<user>`` into a subscription-style pattern, so each piece
that comes from outside goes through :func:`token` first.
"""

from __future__ import annotations

import re

__all__ = ["InvalidSubject", "token", "subject"]

TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


class InvalidSubject(ValueError):
    """A piece of a subject that would change its meaning; never published."""


def token(text: object) -> str:
    """``text`` as one subject token: 1-64 letters, digits, ``_`` or ``-``."""
    value = str(text)
    if not TOKEN.fullmatch(value):
        problem = ("is empty" if not value else
                   "is a wildcard" if value in ("*", ">") or "*" in value or ">" in value else
                   "contains a dot (it would add tokens)" if "." in value else
                   "contains whitespace" if any(c.isspace() for c in value) else
                   "is longer than 64 characters" if len(value) > 64 else
                   "may hold only letters, digits, _ and -")
        raise InvalidSubject(f"subject token {value[:40]!r} {problem}")
    return value


def subject(prefix: str, *pieces: object) -> str:
    """``prefix`` (trusted, e.g. ``"orders.created"``) followed by validated pieces."""
    return ".".join([prefix, *(token(piece) for piece in pieces)])
