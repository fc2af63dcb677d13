"""The document's error envelope for HTTP APIs, and JSON bodies read safely.

Every error a lab's HTTP API returns has the same shape::

    {"error": {"message": "Validation failed", "code": "VALIDATION_ERROR",
               "details": {"email": ["Email is required"]},
               "timestamp": "2024-01-01T12:00:00Z"}}
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import BadRequest, HTTPException

from .database import db, isoformat, utcnow

log = logging.getLogger(__name__)

CODES = {
    400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 406: "NOT_ACCEPTABLE", 409: "CONFLICT", 410: "GONE",
    413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 422: "VALIDATION_ERROR",
    429: "RATE_LIMITED", 500: "INTERNAL_ERROR",
}


class APIError(Exception):
    """An error answered with ``status`` and the document's error envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or CODES.get(status, "ERROR")
        self.details = details or {}
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "code": self.code,
                "details": self.details,
                "timestamp": isoformat(utcnow()),
            }
        }

    def response(self) -> Response:
        resp = jsonify(self.to_dict())
        resp.status_code = self.status
        resp.headers.update(self.headers)
        return resp


def install_error_handlers(app: Flask) -> None:
    """Answer every error of ``app`` with the envelope; never leak a traceback."""

    @app.errorhandler(APIError)
    def api_error(error: APIError) -> Response:
        return error.response()

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        message = error.description or error.name
        resp = APIError(status, message).response()
        allow = getattr(error, "valid_methods", None)
        if allow:
            resp.headers["Allow"] = ", ".join(allow)
        return resp

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        db.session.rollback()
        return APIError(500, "Internal server error").response()


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
    return body
