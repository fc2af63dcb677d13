"""An OpenAPI 3.1 contract built from a Flask app itself, so it cannot drift from the code.

Routes come from the app's ``url_map``; each view describes itself with
:func:`operation`, naming the marshmallow schemas that validate its query
string and body; apispec's marshmallow plugin turns those same schemas into the
document's JSON Schemas::

    @bp.get("/users")
    @operation("List users", query=UsersQuery, responses={200: UsersPage, 400: None})
    def list_users(args): ...

A route without a description is left out of the document (the tests look for
such routes). :func:`contract_blueprint` serves ``/openapi.json`` and Swagger UI
at ``/docs/`` from the assets the ``swagger-ui-bundle-v2`` package ships (no CDN).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask import Blueprint, Flask, Response, current_app, jsonify, request, send_from_directory
from marshmallow import Schema, ValidationError, fields, validate
from swagger_ui_bundle import swagger_ui_path

from .api_errors import APIError

__all__ = ["operation", "build_spec", "contract_blueprint", "Pattern", "QueryInteger",
           "JsonInteger",
           "ErrorEnvelope", "documented_routes"]

OPENAPI_VERSION = "3.1.0"
#: A relative server URL is resolved against the document's own URL (OpenAPI 3.1, 4.8.5):
#: behind a path prefix (``<base_url>proxy/<port>/openapi.json`` on a JupyterHub) Swagger UI's
#: "Try it out" then stays under the prefix instead of going to the origin's root.
SERVED_BESIDE_THE_DOCUMENT = {"url": ".", "description": "the server that serves this document"}
_CONVERTER = re.compile(r"<(?:(?P<converter>\w+)(?:\((?P<arguments>[^)]*)\))?:)?(?P<name>\w+)>")


# --- fields and validators whose JSON Schema says exactly what they accept ----

class Pattern(validate.Regexp):
    """A regular expression with JSON Schema's meaning: found anywhere unless
    anchored, and a final ``$`` is the very end (Python's ``$`` also matches
    before a last newline). Write character classes explicitly: ``\\s`` and
    ``.`` differ between Python and the ECMA-262 regexes of JSON Schema."""

    def __init__(self, regex: str, *, error: str) -> None:
        super().__init__(regex, error=error)
        self._python = re.compile(regex[:-1] + r"\Z" if regex.endswith("$") else regex)

    def __call__(self, value: Any) -> Any:
        if self._python.search(value) is None:
            raise ValidationError(self._format_error(value))
        return value


class QueryInteger(fields.Integer):
    """An integer in a query string: ASCII digits and an optional minus, nothing else
    (``int()`` would also take ``" 5"``, ``"1_0"`` and Arabic-Indic digits)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str) or not re.fullmatch(r"-?[0-9]{1,30}", value):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class JsonInteger(fields.Integer):
    """An integer in a JSON body, as JSON Schema counts them: ``2`` and ``2.0`` are
    integers; ``true``, ``2.5`` and the string ``"2"`` are not."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid")
        return super()._deserialize(int(value), attr, data, **kwargs)


class ErrorBody(Schema):
    message = fields.String(required=True)
    code = fields.String(required=True, metadata={"examples": ["VALIDATION_ERROR"]})
    details = fields.Dict(
        required=True, metadata={"description": "Per field, a list of messages (or facts "
                                 "such as retry_after_seconds)."})
    timestamp = fields.String(required=True, metadata={"format": "date-time"})


class ErrorEnvelope(Schema):
    """The document's error envelope: every error of a lab (labsupport/api_errors.py)."""

    error = fields.Nested(ErrorBody, required=True)


# --- describing views ---------------------------------------------------------

def operation(
    summary: str,
    *,
    responses: dict[int, Any],
    query: type[Schema] | None = None,
    body: Schema | type[Schema] | None = None,
    links: dict[int, dict[str, tuple[str, dict[str, str]]]] | None = None,
    etag: bool = False,
    description: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Describe a view in the contract, and parse its query string with ``query``.

    ``query``'s values reach the view as the keyword ``args``; a value the schema
    refuses is a 400 ``INVALID_PARAMETER`` naming each parameter. ``body`` is the
    schema the view validates its JSON body with (422 on failure). ``responses``
    maps each status the view can answer to a schema (JSON body), a
    ``{media_type: schema}`` dict, or ``None`` (no body, or for 4xx the error
    envelope). ``links`` name operations a response leads to (``{201: {"GetUser":
    ("users.get_user", {"user_id": "$response.body#/id"})}}``). ``etag`` says
    the 200 carries an ``ETag`` and ``If-None-Match`` can give a 304.
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def parsed(*args: Any, **kwargs: Any) -> Any:
            if query is not None:
                kwargs["args"] = load_query(query)
            return view(*args, **kwargs)

        # Read back by build_spec as the view's ``openapi`` attribute.
        vars(parsed)["openapi"] = {
            "summary": summary, "description": description, "query": query, "body": body,
            "responses": responses, "links": links or {}, "etag": etag,
        }
        return parsed

    return decorate


def load_query(schema: type[Schema]) -> dict[str, Any]:
    """The query string loaded with ``schema``, or a 400 naming every bad parameter."""
    try:
        return schema().load(request.args)
    except ValidationError as error:
        messages = error.normalized_messages()
        names = ", ".join(repr(name) for name in messages)
        plural = "s" if len(messages) > 1 else ""
        raise APIError(400, f"Invalid query parameter{plural} {names}", "INVALID_PARAMETER",
                       messages) from None


# --- building the document ------------------------------------------------------

def _schema_name(schema: Any) -> str:
    cls = resolve_schema_cls(schema)
    name = cls.__name__ if isinstance(cls, type) else "Schema"
    return name + "Changes" if getattr(schema, "partial", False) is True else name


def _content(value: Any) -> dict[str, Any]:
    media = value if isinstance(value, dict) else {"application/json": value}
    return {kind: ({"schema": schema} if schema is not None else {"schema": {"type": "string"}})
            for kind, schema in media.items()}


def _response(status: int, value: Any, described: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = {"description": HTTPStatus(status).phrase}
    headers: dict[str, Any] = {}
    if value is not None:
        response["content"] = _content(value)
    elif status >= 400:
        response["content"] = {"application/json": {"schema": ErrorEnvelope}}
    if described["etag"] and status in (200, 304):
        headers["ETag"] = {"description": "Send it back in If-None-Match to get a 304",
                           "schema": {"type": "string"}, "required": True}
    if status == 201:
        headers["Location"] = {"description": "Where the new resource lives",
                               "schema": {"type": "string"}, "required": True}
    if status == 429:
        headers["Retry-After"] = {"description": "Seconds to wait",
                                  "schema": {"type": "integer", "minimum": 1}, "required": True}
    if headers:
        response["headers"] = headers
    links = described["links"].get(status)
    if links:
        response["links"] = {
            name: {"operationId": target, "parameters": parameters}
            for name, (target, parameters) in links.items()
        }
    return response


def _path_schema(converter: str | None, arguments: str | None) -> dict[str, Any]:
    """What Werkzeug's converter accepts: ``int`` takes ASCII digits, ``any(a, b)`` its words."""
    if converter == "int":
        return {"type": "integer", "minimum": 0}
    if converter == "any":
        words = (arguments or "").split(",")
        return {"type": "string", "enum": [word.strip(" '\"") for word in words]}
    return {"type": "string", "pattern": "^[^/]+$"} if converter != "path" else {"type": "string"}


def _path_of(rule: str, examples: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """``/users/<int:user_id>`` as ``/users/{user_id}`` and its path parameters."""
    parameters = [
        {"in": "path", "name": match["name"], "required": True,
         "schema": _path_schema(match["converter"], match["arguments"]),
         **({"example": examples[match["name"]]} if match["name"] in examples else {})}
        for match in _CONVERTER.finditer(rule)
    ]
    return _CONVERTER.sub(r"{\g<name>}", rule), parameters


def documented_routes(app: Flask) -> set[tuple[str, str]]:
    """Every ``(METHOD, rule)`` the app routes, HEAD and OPTIONS aside (Flask adds those)."""
    return {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }


def build_spec(
    app: Flask,
    *,
    title: str,
    version: str,
    description: str = "",
    every_operation: dict[int, Any] | None = None,
    path_examples: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every described route of ``app``.

    ``every_operation`` adds responses any route can give (e.g. ``{429: None}``
    when a rate limiter runs in front of every view); ``path_examples`` gives an
    example value per path parameter name (``{"user_id": 101}``).
    """
    spec = APISpec(title, version, OPENAPI_VERSION, info={"description": description},
                   plugins=[MarshmallowPlugin(schema_name_resolver=_schema_name)],
                   servers=[SERVED_BESIDE_THE_DOCUMENT])
    spec.components.schema("ErrorEnvelope", schema=ErrorEnvelope)
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        described = getattr(app.view_functions[rule.endpoint], "openapi", None)
        if described is None:
            continue
        path, path_parameters = _path_of(rule.rule, path_examples or {})
        parameters = list(path_parameters)
        if described["query"] is not None:
            parameters.append({"in": "query", "schema": described["query"]})
        responses = {**described["responses"], **(every_operation or {})}
        operation_object: dict[str, Any] = {
            "operationId": rule.endpoint,
            "summary": described["summary"],
            "tags": [rule.endpoint.split(".")[0]],
            "parameters": parameters,
            "responses": {str(status): _response(status, value, described)
                          for status, value in sorted(responses.items())},
        }
        if described["description"]:
            operation_object["description"] = described["description"]
        if described["body"] is not None:
            operation_object["requestBody"] = {
                "required": True, "content": {"application/json": {"schema": described["body"]}}}
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = operation_object
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


# --- serving it -------------------------------------------------------------------

_SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
  <link rel="stylesheet" href="swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{url: "../openapi.json", dom_id: "#swagger-ui"}});
  </script>
</body>
</html>
"""


def contract_blueprint(
    spec_of: Callable[[Flask], dict[str, Any]], *, title: str = "API"
) -> Blueprint:
    """``/openapi.json`` (built once per app by ``spec_of``) and Swagger UI at ``/docs/``,
    its assets served from the installed package: it works offline."""
    bp = Blueprint("contract", __name__)

    @bp.get("/openapi.json")
    @operation("This document: the API's OpenAPI 3.1 contract", responses={
        200: {"application/json": {"type": "object"}}})
    def openapi_document() -> Response:
        built = current_app.extensions
        if "openapi_document" not in built:
            built["openapi_document"] = spec_of(current_app)
        return jsonify(built["openapi_document"])

    @bp.get("/docs/")
    @operation("Swagger UI for this document (assets shipped with the package, no CDN)",
               responses={200: {"text/html": None}})
    def swagger_ui() -> Response:
        return Response(_SWAGGER_PAGE.format(title=title), mimetype="text/html")

    @bp.get("/docs/<any('swagger-ui.css', 'swagger-ui-bundle.js'):filename>")
    @operation("Swagger UI's script and style sheet", responses={
        200: {"text/css": None, "text/javascript": None, "application/javascript": None},
        404: None})
    def swagger_asset(filename: str) -> Response:
        return send_from_directory(str(swagger_ui_path), filename, max_age=3600)

    return bp
