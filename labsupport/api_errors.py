"""The document's error envelope for HTTP APIs, and JSON bodies read safely.

Every error a lab's HTTP API returns has the same shape::

    {"error": {"message": "Validation failed", "code": "VALIDATION_ERROR",
               "details": {"email": ["Email is required"]},
               "timestamp": "2024-01-01T12:00:00Z"}}
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Flask, Response, current_app, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest, HTTPException

from .database import db, isoformat, utcnow

CODES = {
    400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 406: "NOT_ACCEPTABLE", 409: "CONFLICT", 410: "GONE",
    413: "PAYLOAD_TOO_LARGE", 414: "URI_TOO_LONG", 415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR", 429: "RATE_LIMITED", 431: "REQUEST_HEADER_FIELDS_TOO_LARGE",
    500: "INTERNAL_ERROR", 501: "NOT_IMPLEMENTED", 505: "HTTP_VERSION_NOT_SUPPORTED",
}


def envelope(
    status: int, message: str, code: str | None = None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The document's error body for ``status``."""
    return {
        "error": {
            "message": message,
            "code": code or CODES.get(status, "ERROR"),
            "details": details or {},
            "timestamp": isoformat(utcnow()),
        }
    }


class OrderedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, keeping keys in the order the lab wrote them, as the document shows."""

    sort_keys = False


class APIError(HTTPException):
    """An HTTP error answered with the document's error envelope.

    It is a Werkzeug ``HTTPException``, so raising it from any Flask view gives
    the envelope, with or without :func:`install_error_handlers`.
    """

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description=message)
        self.code = status
        self.message = message
        self.error_code = code or CODES.get(status, "ERROR")
        self.details = details or {}
        self.extra_headers = headers or {}

    @property
    def status(self) -> int:
        """The HTTP status (Werkzeug calls it ``code``)."""
        return self.code if self.code is not None else 500

    def to_dict(self) -> dict[str, Any]:
        return envelope(self.status, self.message, self.error_code, self.details)

    def get_response(self, environ: Any = None, scope: Any = None) -> Response:
        body = json.dumps(self.to_dict(), ensure_ascii=False)
        response = Response(body, self.code, mimetype="application/json")
        response.headers.update(self.extra_headers)
        return response


def install_error_handlers(app: Flask) -> None:
    """Answer every error of ``app`` with the envelope; never leak a traceback."""

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> HTTPException:
        if isinstance(error, APIError):
            return error
        converted = APIError(error.code or 500, error.description or error.name)
        allowed = getattr(error, "valid_methods", None)
        if allowed:
            converted.extra_headers["Allow"] = ", ".join(allowed)
        return converted

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> APIError:
        current_app.logger.exception("unhandled error")
        db.session.rollback()
        return APIError(500, "Internal server error")


def json_object() -> dict[str, Any]:
    """The request body as a JSON object, or a 415/400 in the envelope."""
    if not request.is_json:
        raise APIError(415, "Send the body as JSON with Content-Type: application/json")
    try:
        body = request.get_json()
    except BadRequest:
        raise APIError(400, "The body is not valid JSON") from None
    if not isinstance(body, dict):
        raise APIError(400, f"The body must be a JSON object, not {type(body).__name__}")
    try:
        json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise APIError(400, "The body holds a lone surrogate escape (\\ud800-\\udfff), "
                            "which is not a character (RFC 7493, section 2.1)") from None
    return body


# --- parameters several labs share ------------------------------------------

EVENT_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}")
EVENT_TYPE_RULE = "must be 1-64 letters, digits or _.:- starting with a letter"


def is_event_type(value: object) -> bool:
    """Whether ``value`` may name an event (SSE's ``event:`` line, a notification's type)."""
    return isinstance(value, str) and EVENT_TYPE.fullmatch(value) is not None


def query_int(raw: str | None, name: str, default: int, low: int, high: int | None = None) -> int:
    """The whole-number query parameter ``name`` (``raw`` as sent), within ``low``..``high``.

    ``default`` when it is absent; a 400 in the envelope, saying what is allowed,
    when it is not plain ASCII digits or is out of range.
    """
    if raw is None:
        return default
    value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None
    if value is None or value < low or (high is not None and value > high):
        allowed = f" between {low} and {high}" if high is not None else f", {low} or more"
        raise APIError(400, f"Invalid query parameter {name!r}", "INVALID_PARAMETER",
                       {name: [f"must be a whole number{allowed}, got {raw[:40]!r}"]})
    return value
