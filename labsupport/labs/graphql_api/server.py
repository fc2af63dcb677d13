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
from collections.abc import Callable, Mapping
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
from .subscriptions import is_request_error, serve_graphql_ws

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

class RequestError(Exception):
    """A request that is not a GraphQL request at all: answered with ``status``."""

    def __init__(self, status: int, message: str, code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def graphql_response(payload: Mapping[str, object], status: int = 200,
                     **headers: str) -> Response:
    """A GraphQL response body, compact JSON."""
    return Response(json.dumps(payload, separators=(",", ":")), status, headers,
                    mimetype="application/json")


def _params() -> tuple[str, dict | None, str | None]:
    """``query``, ``variables`` and ``operationName`` from a GET or a JSON POST."""
    if request.method == "GET":
        raw = dict(request.args)
        if isinstance(raw.get("variables"), str):
            try:
                raw["variables"] = json.loads(raw["variables"])
            except ValueError:
                raise RequestError(400, "variables must be a JSON object") from None
    else:
        if request.mimetype != "application/json":
            raise RequestError(415, "POST a JSON body with Content-Type: application/json",
                               "UNSUPPORTED_MEDIA_TYPE")
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
    try:
        query, variables, operation = _params()
    except RequestError as error:
        return graphql_response(
            {"errors": [{"message": error.message, "extensions": {"code": error.code}}]},
            error.status)
    if request.method == "GET":
        document = prepare(query, served_schema=lab.served_schema, max_depth=lab.max_depth,
                           measure=lab.depth_measure)
        if not isinstance(document, list):
            chosen = get_operation_ast(document, operation)
            if chosen is not None and chosen.operation != OperationType.QUERY:
                return graphql_response({"errors": [{
                    "message": "Only queries may be sent with GET; POST mutations",
                    "extensions": {"code": "METHOD_NOT_ALLOWED"}}]}, 405, Allow="POST")
    logger = current_app.logger

    async def run() -> ExecutionResult:
        context = new_context(dataloaders=lab.dataloaders, posts_loader=lab.posts_loader,
                              apply_user_update=lab.user_update, logger=logger)
        return await execute_query(query, variables, operation, context=context,
                                   served_schema=lab.served_schema, max_depth=lab.max_depth,
                                   depth_measure=lab.depth_measure)

    result = asyncio.run(run())
    if is_request_error(result):  # nothing ran: no "data" entry, 400
        return graphql_response({"errors": result.formatted["errors"]}, 400)
    return graphql_response(result.formatted)


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
    code = HTTP_CODES.get(status, "ERROR")
    allow = getattr(error, "valid_methods", None)
    return graphql_response({"errors": [{"message": message, "extensions": {"code": code}}]},
                            status, **({"Allow": ", ".join(allow)} if allow else {}))


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
    **app_options: Any,
) -> GraphQLHandle:
    """Serve the GraphQL lab on 127.0.0.1 (free ports), replacing any earlier one.

    ``server.url`` takes GraphQL over HTTP at ``/graphql``; ``server.ws_url``
    takes subscriptions over WebSocket (the ``graphql-transport-ws`` protocol).
    ``app_options`` go to :func:`create_app`.
    """
    database.ready(fresh_data)
    ws = serve_graphql_ws(f"{name}-ws", subscribe_query)
    return serve_wsgi(name, create_app(**app_options), on_stop=ws.stop, handle=GraphQLHandle,
                      ws=ws)
