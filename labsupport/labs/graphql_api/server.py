"""The GraphQL lab: the document's schema in graphene 3, on the shared database.

``start()`` serves it in the background of the kernel::

    from labsupport import graphql_api
    server = graphql_api.start()
    requests.post(f"{server.url}/graphql", json={"query": '{ user(id: "123") { name } }'})
    server.ws_url      # graphql-transport-ws subscriptions

What it adds to the document's code: plain graphene 3 types (``flask_graphql``
and graphene-sqlalchemy 2 do not run on graphene 3), a hand-written GraphQL over
HTTP view with the standard ``{"errors": [...]}`` shape and ``extensions.code``,
a depth limit and capped ``limit`` arguments, mutations that validate before
they write, aiodataloader DataLoaders on an async execution path, and
``postAdded`` subscriptions that really stream over WebSocket.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import graphene
from flask import Blueprint, Flask, Response, current_app, request
from graphql import (
    ExecutionResult,
    OperationType,
    get_operation_ast,
)
from werkzeug.exceptions import HTTPException

from ... import database
from ...api_errors import CODES
from ...database import db
from ...harness import ServerHandle, serve_wsgi
from .execution import (
    MAX_DEPTH,
    depth_limit_rule,
    execute_query,
    prepare,
    run_query,
    selection_depth,
    subscribe_query,
)
from .loaders import comments_by_post, new_context, posts_by_author, users_by_id
from .schema import MAX_LIMIT, Subscription, _new_posts, apply_user_update, posts_bus, schema
from .subscriptions import Subscriber, is_request_error, serve_graphql_ws

# The lab's public names, wherever they live in this package (notebooks use them from here).
__all__ = [
    "schema", "start", "create_app", "execute_query", "run_query", "new_context",
    "selection_depth", "depth_limit_rule", "posts_by_author", "users_by_id", "comments_by_post",
    "apply_user_update", "posts_bus", "MAX_DEPTH", "MAX_LIMIT", "Subscription", "_new_posts",
]

MAX_BODY_BYTES = 100_000

#: ``extensions.code`` of errors answered before GraphQL runs (GraphQL's name for a 500).
HTTP_CODES = {**CODES, 500: "INTERNAL_SERVER_ERROR"}


# --- GraphQL over HTTP --------------------------------------------------------
# Per the GraphQL-over-HTTP specification (graphql.github.io/graphql-over-http).

#: The spec's media type for responses: its status codes say what happened.
GRAPHQL_RESPONSE = "application/graphql-response+json"
#: The legacy media type: a well-formed request is answered 200 even when nothing could run.
JSON = "application/json"


class RequestError(Exception):
    """A request that is not a well-formed GraphQL-over-HTTP request: answered with ``status``."""

    def __init__(self, status: int, message: str, code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def _accept_ranges(header: str) -> Iterator[tuple[str, float]]:
    """``(media range, quality)`` of each entry of an Accept header, in the client's order."""
    for entry in header.split(","):
        media_range, *parameters = (piece.strip() for piece in entry.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media_range:
            yield media_range.lower(), quality


def _specificity(media_range: str, offered: str) -> int:
    """How closely ``media_range`` names ``offered``: 2 by name, 1 or 0 by wildcard, -1 not."""
    return {offered: 2, "application/*": 1, "*/*": 0}.get(media_range, -1)


def response_media_type(accept: str | None) -> str | None:
    """The media type to answer in for this ``Accept`` header, or None if it takes neither.

    The higher quality wins; on a tie, the type the client names itself, then the one it
    names first. No header, or only wildcards, gets ``application/json``: what the spec's audit
    (graphql-http 1.23) checks for, and what clients older than the spec understand.
    """
    if not accept:
        return JSON
    ranges = list(_accept_ranges(accept))
    ranked = []
    for offered in (GRAPHQL_RESPONSE, JSON):
        # The most specific range that matches decides the quality (RFC 9110, 12.5.1).
        specificity, earliest, quality = max(
            ((_specificity(media_range, offered), -position, quality)
             for position, (media_range, quality) in enumerate(ranges)), default=(-1, 0, 0.0))
        if specificity >= 0 and quality > 0:
            ranked.append((quality, specificity == 2, earliest, offered == JSON, offered))
    return max(ranked)[-1] if ranked else None


def graphql_response(payload: Mapping[str, object], status: int = 200, media_type: str = JSON,
                     **headers: str) -> Response:
    """A GraphQL response body, compact JSON in UTF-8, labelled with its media type."""
    return Response(json.dumps(payload, separators=(",", ":")), status, headers,
                    content_type=f"{media_type}; charset=utf-8")


def _errors(message: str, code: str) -> dict[str, Any]:
    """A response that is one error and no ``data``."""
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def _json_param(raw: dict[str, Any], name: str) -> None:
    """Decode a GET parameter that carries JSON (``variables``, ``extensions``) in place."""
    if isinstance(raw.get(name), str):
        try:
            raw[name] = json.loads(raw[name])
        except ValueError:
            raise RequestError(400, f"{name} must be a JSON object") from None


def _params() -> tuple[str, dict | None, str | None]:
    """``query``, ``variables`` and ``operationName`` from a GET or a JSON POST."""
    if request.method == "GET":
        raw: Any = dict(request.args)
        _json_param(raw, "variables")
        _json_param(raw, "extensions")
        if raw.get("operationName") == "":
            raw["operationName"] = None  # the spec: the same as leaving it out
    else:
        charset = request.mimetype_params.get("charset", "utf-8").lower()
        if request.mimetype != JSON or charset not in ("utf-8", "utf8"):
            raise RequestError(415, "POST a JSON body with Content-Type: application/json "
                               "(UTF-8)", "UNSUPPORTED_MEDIA_TYPE")
        try:
            raw = json.loads(request.get_data())
        except ValueError:
            raise RequestError(400, "The body is not valid JSON") from None
        if not isinstance(raw, dict):
            raise RequestError(400, f"The body must be a JSON object, not {type(raw).__name__}")
    query, variables, operation = raw.get("query"), raw.get("variables"), raw.get("operationName")
    if not isinstance(query, str) or not query.strip():
        raise RequestError(400, "Send the GraphQL document as a non-empty string in 'query'")
    if variables is not None and not isinstance(variables, dict):
        raise RequestError(400, "variables must be a JSON object")
    if operation is not None and not isinstance(operation, str):
        raise RequestError(400, "operationName must be a string")
    extensions = raw.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise RequestError(400, "extensions must be a JSON object")
    return query, variables, operation


@dataclass
class _GraphQLLab:
    """How the ``/graphql`` route serves, kept in ``app.extensions["graphql"]``."""

    served_schema: graphene.Schema
    dataloaders: bool
    max_depth: int | None
    depth_measure: Callable[..., int]
    posts_loader: Callable[..., Any]
    user_update: Callable[..., Any]


routes = Blueprint("graphql", __name__)


def create_app(
    *,
    served_schema: graphene.Schema = schema,
    dataloaders: bool = True,
    max_depth: int | None = MAX_DEPTH,
    depth_measure: Callable[..., int] = selection_depth,
    posts_loader: Callable[..., Any] = posts_by_author,
    user_update: Callable[..., Any] = apply_user_update,
) -> Flask:
    """Build the GraphQL lab's Flask app: one endpoint, ``/graphql``.

    The keyword arguments let the notebook serve another schema (the
    document's) or switch the DataLoaders and the depth limit off, and let the
    exercises plug a learner's code into the live server.
    """
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["graphql"] = _GraphQLLab(served_schema, dataloaders, max_depth,
                                            depth_measure, posts_loader, user_update)
    app.teardown_appcontext(_remove_session)
    app.register_blueprint(routes)
    return app


def _remove_session(_exc: BaseException | None) -> None:
    db.session.remove()


@routes.route("/graphql", methods=["GET", "POST"])
def graphql_view() -> Response:
    lab: _GraphQLLab = current_app.extensions["graphql"]
    media_type = response_media_type(request.headers.get("Accept"))
    if media_type is None:
        return graphql_response(_errors(f"Accept {GRAPHQL_RESPONSE} or {JSON}",
                                        "NOT_ACCEPTABLE"), 406)
    try:
        query, variables, operation = _params()
    except RequestError as error:
        return graphql_response(_errors(error.message, error.code), error.status, media_type)
    if request.method == "GET":
        document = prepare(query, served_schema=lab.served_schema, max_depth=lab.max_depth,
                           measure=lab.depth_measure)
        if not isinstance(document, list):
            chosen = get_operation_ast(document, operation)
            if chosen is not None and chosen.operation != OperationType.QUERY:
                return graphql_response(
                    _errors("Only queries may be sent with GET; POST mutations",
                            "METHOD_NOT_ALLOWED"), 405, media_type, Allow="POST")
    logger = current_app.logger

    async def run() -> ExecutionResult:
        context = new_context(dataloaders=lab.dataloaders, posts_loader=lab.posts_loader,
                              apply_user_update=lab.user_update, logger=logger)
        return await execute_query(query, variables, operation, context=context,
                                   served_schema=lab.served_schema, max_depth=lab.max_depth,
                                   depth_measure=lab.depth_measure)

    result = asyncio.run(run())
    if is_request_error(result):
        # Nothing ran (parse, validation, operation or variables): no "data" entry.
        # application/graphql-response+json says so with 400; application/json answers
        # 200, the one status a client can trust did not come from a proxy.
        status = 400 if media_type == GRAPHQL_RESPONSE else 200
        return graphql_response({"errors": result.formatted["errors"]}, status, media_type)
    return graphql_response(result.formatted, 200, media_type)


@routes.app_errorhandler(Exception)
def any_error(error: Exception) -> Response:
    """Every other failure, in the GraphQL error shape; never a traceback."""
    if isinstance(error, HTTPException):
        status, message = error.code or 500, error.description or error.name
    else:
        current_app.logger.exception("unhandled error")
        db.session.rollback()
        status, message = 500, "Internal server error"
    if status == 413:
        message = f"The request body is too large: the limit is {MAX_BODY_BYTES} bytes"
    allow = getattr(error, "valid_methods", None)
    return graphql_response(_errors(message, HTTP_CODES.get(status, "ERROR")), status,
                            response_media_type(request.headers.get("Accept")) or JSON,
                            **({"Allow": ", ".join(allow)} if allow else {}))


class GraphQLHandle(ServerHandle):
    """The GraphQL lab's HTTP server, with its subscription server ``ws`` beside it."""

    ws: ServerHandle

    @property
    def ws_url(self) -> str:
        """Where subscriptions are served (``graphql-transport-ws``)."""
        return f"ws://{self.ws.host}:{self.ws.port}/graphql"


def start(
    *,
    fresh_data: bool = True,
    name: str = "graphql",
    subscriber: Subscriber = subscribe_query,
    **app_options: Any,
) -> GraphQLHandle:
    """Serve the GraphQL lab on 127.0.0.1 (free ports), replacing any earlier one.

    ``server.url`` takes GraphQL over HTTP at ``/graphql``; ``server.ws_url``
    takes subscriptions over WebSocket (the ``graphql-transport-ws`` protocol),
    run by ``subscriber`` (a check may wrap it to see what is sent).
    ``app_options`` go to :func:`create_app`.
    """
    database.ready(fresh_data)
    ws = serve_graphql_ws(f"{name}-ws", subscriber)
    return serve_wsgi(name, create_app(**app_options), on_stop=ws.stop, handle=GraphQLHandle,
                      ws=ws)
