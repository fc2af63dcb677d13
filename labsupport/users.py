"""What a valid user is: the rules for a user's name and email, next to the model.

:class:`UserBody` is a user as a client writes it; :func:`validate_user` gives
its field errors in the document's ``details`` format
(``{"email": ["Email is required"]}``). The REST lab validates bodies and
publishes its contract with them; the GraphQL and gRPC labs validate their
mutations and RPCs with the same rules.
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from .openapi import Pattern

__all__ = ["UserBody", "validate_user"]

#: Every character ``str.strip()`` removes, spelled out: ``\s`` means something else in
#: Python than in the ECMA-262 regexes of JSON Schema.
WHITESPACE = (r"\u0009\u000a\u000b\u000c\u000d\u001c\u001d\u001e\u001f\u0020\u0085\u00a0"
              r"\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000")
NOT_BLANK = f"[^{WHITESPACE}]"
EMAIL = f"^[^@{WHITESPACE}]+@[^@{WHITESPACE}]+\\.[^@{WHITESPACE}]+$"


class UserBody(Schema):
    """A user as a client writes it: name and email, nothing else (no mass assignment)."""

    class Meta:
        unknown = RAISE

    error_messages = {"unknown": "Unknown field"}

    name = fields.String(
        required=True,
        validate=[Pattern(NOT_BLANK, error="Name must be a non-empty string"),
                  validate.Length(max=100, error="Name must be at most 100 characters")],
        error_messages={"required": "Name is required",
                        "invalid": "Name must be a non-empty string",
                        "null": "Name must be a non-empty string"})
    email = fields.String(
        required=True,
        validate=[Pattern(EMAIL, error="Email must look like name@example.com"),
                  validate.Length(max=255, error="Email must be at most 255 characters")],
        error_messages={"required": "Email is required",
                        "invalid": "Email must look like name@example.com",
                        "null": "Email must look like name@example.com"})


def validate_user(data: dict, partial: bool = False) -> dict[str, list[str]]:
    """Field errors of a user body, in the document's ``details`` format.

    The rules are :class:`UserBody`'s, the schema the REST contract publishes: a
    full body (POST, PUT) needs ``name`` and ``email``; a partial one (PATCH) may
    leave either out; any other field is refused, so a client cannot set ``id`` or
    ``role`` (mass assignment).
    """
    return UserBody().validate(data, partial=partial)
