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
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import graphene
from aiodataloader import DataLoader
from flask import Flask, Response, request
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    ValidationRule,
    execute,
    get_operation_ast,
    parse,
    specified_rules,
    subscribe,
    validate,
)
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from . import database
from .api_errors import CODES
from .database import Comment, Order, Post, User, db
from .harness import ServerHandle, serve_wsgi
from .rest import validate_user
from .subscriptions import PostBus, is_request_error, serve_graphql_ws

__all__ = [
    "schema", "start", "create_app", "execute_query", "run_query", "new_context",
    "selection_depth", "depth_limit_rule", "posts_by_author", "users_by_id", "comments_by_post",
    "apply_user_update", "posts_bus", "MAX_DEPTH", "MAX_LIMIT",
]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())
log.propagate = False  # resolver failures never print into cells; servers log to their handle

MAX_LIMIT = 100
DEFAULT_LIMIT = 10
MAX_DEPTH = 6
MAX_BODY_BYTES = 100_000
#: ``extensions.code`` of errors answered before GraphQL runs (GraphQL's name for a 500).
HTTP_CODES = {**CODES, 500: "INTERNAL_SERVER_ERROR"}

#: Every post created is announced here; ``postAdded`` subscribers listen.
posts_bus = PostBus()


def user_error(message: str, code: str = "BAD_USER_INPUT", **extensions: Any) -> GraphQLError:
    """A GraphQL error about the client's input, with ``extensions.code``."""
    return GraphQLError(message, extensions={"code": code, **extensions})


def bounded_limit(limit: int | None, default: int = DEFAULT_LIMIT) -> int:
    """``limit`` if it is within 1..MAX_LIMIT, else a BAD_USER_INPUT error."""
    if limit is None:
        return default
    if not 1 <= limit <= MAX_LIMIT:
        raise user_error(f"limit must be between 1 and {MAX_LIMIT}, got {limit}",
                         argument="limit")
    return limit


def parse_id(raw: str, what: str = "id") -> int:
    """A GraphQL ``ID`` as our integer key, or a BAD_USER_INPUT error."""
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and int(raw) < 2**63:
        return int(raw)
    raise user_error(f"{what} must be a positive whole number, got {raw!r}", argument=what)


# --- DataLoader batch functions ----------------------------------------------

async def users_by_id(user_ids):
    """Batch function: the users with these ids, in the same order (None if missing)."""
    users = db.session.scalars(select(User).where(User.id.in_(user_ids)))
    by_id = {user.id: user for user in users}
    return [by_id.get(user_id) for user_id in user_ids]


async def posts_by_author(author_ids):
    """Batch function: for each author id, that author's posts, newest first (one query)."""
    query = (select(Post).where(Post.author_id.in_(author_ids))
             .order_by(Post.created_at.desc(), Post.id.desc()))
    grouped = {author_id: [] for author_id in author_ids}
    for post in db.session.scalars(query):
        grouped[post.author_id].append(post)
    return [grouped[author_id] for author_id in author_ids]


async def comments_by_post(post_ids):
    """Batch function: for each post id, its comments in id order (one query)."""
    query = select(Comment).where(Comment.post_id.in_(post_ids)).order_by(Comment.id)
    grouped = {post_id: [] for post_id in post_ids}
    for comment in db.session.scalars(query):
        grouped[comment.post_id].append(comment)
    return [grouped[post_id] for post_id in post_ids]


def new_context(*, dataloaders: bool = True, posts_loader=posts_by_author, **extra: Any) -> dict:
    """A fresh per-request context; make it inside the running event loop.

    DataLoaders cache per request, so each request needs its own. With
    ``dataloaders=False`` resolvers fall back to one query per parent (N+1).
    """
    context: dict[str, Any] = {"bus": posts_bus, **extra}
    if dataloaders:
        context["user_loader"] = DataLoader(users_by_id)
        context["post_loader"] = DataLoader(posts_loader)
        context["comment_loader"] = DataLoader(comments_by_post)
    return context


# --- the schema --------------------------------------------------------------

def _context(info) -> dict:
    """The request's context; empty when a caller passed none (``schema.execute(q)``)."""
    return info.context if info.context is not None else {}


def _recent(posts: list[Post], limit: int | None) -> list[Post]:
    return posts[:bounded_limit(limit)]


class DateTime(graphene.DateTime):
    """graphene's ``DateTime``, written the way every lab writes an instant (graphene's own
    prints our naive UTC datetimes with no offset at all)."""

    class Meta:
        description = "An instant in RFC 3339 form, in UTC with its offset: 2024-01-01T12:00:00Z"

    @staticmethod
    def serialize(moment: dt.datetime) -> str:
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
        return database.isoformat(moment)


class UserType(graphene.ObjectType):
    class Meta:
        name = "User"

    id = graphene.ID(required=True)
    name = graphene.String(required=True)
    email = graphene.String(required=True)
    posts = graphene.NonNull(graphene.List(graphene.NonNull(lambda: PostType)),
                             limit=graphene.Int())
    orders = graphene.NonNull(graphene.List(graphene.NonNull(lambda: OrderType)),
                              limit=graphene.Int())
    created_at = DateTime(required=True)

    def resolve_posts(self, info, limit=None):
        loader = _context(info).get("post_loader")
        if loader is None:  # one query per user: the N+1 problem
            query = (select(Post).where(Post.author_id == self.id)
                     .order_by(Post.created_at.desc(), Post.id.desc()))
            return _recent(list(db.session.scalars(query)), limit)
        bounded_limit(limit)

        async def recent():
            return _recent(await loader.load(self.id), limit)

        return recent()

    def resolve_orders(self, info, limit=None):
        query = (select(Order).where(Order.user_id == self.id)
                 .order_by(Order.created_at.desc(), Order.id.desc()).limit(bounded_limit(limit)))
        return list(db.session.scalars(query))


def _author(info, author_id: int, fallback: Callable[[], Any]) -> Any:
    loader = _context(info).get("user_loader")
    return loader.load(author_id) if loader is not None else fallback()


class OrderType(graphene.ObjectType):
    class Meta:
        name = "Order"

    id = graphene.ID(required=True)
    item = graphene.String(required=True)
    quantity = graphene.Int(required=True)
    total_cents = graphene.Int(required=True)
    status = graphene.String(required=True)
    created_at = DateTime(required=True)


class PostType(graphene.ObjectType):
    class Meta:
        name = "Post"

    id = graphene.ID(required=True)
    title = graphene.String(required=True)
    content = graphene.String(required=True)
    author = graphene.Field(UserType, required=True)
    comments = graphene.NonNull(graphene.List(graphene.NonNull(lambda: CommentType)))
    created_at = DateTime(required=True)

    def resolve_author(self, info):
        return _author(info, self.author_id, lambda: self.author)

    def resolve_comments(self, info):
        loader = _context(info).get("comment_loader")
        if loader is None:
            return sorted(self.comments, key=lambda comment: comment.id)
        return loader.load(self.id)


class CommentType(graphene.ObjectType):
    class Meta:
        name = "Comment"

    id = graphene.ID(required=True)
    content = graphene.String(required=True)
    author = graphene.Field(UserType, required=True)
    post = graphene.Field(PostType, required=True)
    created_at = DateTime(required=True)

    def resolve_author(self, info):
        return _author(info, self.author_id, lambda: self.author)


class Query(graphene.ObjectType):
    user = graphene.Field(UserType, id=graphene.ID(required=True))
    users = graphene.NonNull(graphene.List(graphene.NonNull(UserType)),
                             limit=graphene.Int(), offset=graphene.Int())
    post = graphene.Field(PostType, id=graphene.ID(required=True))
    posts = graphene.NonNull(graphene.List(graphene.NonNull(PostType)),
                             author_id=graphene.ID(), limit=graphene.Int())

    def resolve_user(self, info, id):
        return db.session.get(User, parse_id(id))

    def resolve_users(self, info, limit=None, offset=None):
        offset = 0 if offset is None else offset  # an explicit null means the default
        if offset < 0:
            raise user_error(f"offset must not be negative, got {offset}", argument="offset")
        query = select(User).order_by(User.id).offset(offset).limit(bounded_limit(limit))
        return list(db.session.scalars(query))

    def resolve_post(self, info, id):
        return db.session.get(Post, parse_id(id))

    def resolve_posts(self, info, author_id=None, limit=None):
        query = select(Post).order_by(Post.created_at.desc(), Post.id.desc())
        if author_id is not None:
            query = query.where(Post.author_id == parse_id(author_id, "authorId"))
        return list(db.session.scalars(query.limit(bounded_limit(limit))))


# --- mutations ---------------------------------------------------------------

class CreateUserInput(graphene.InputObjectType):
    name = graphene.String(required=True)
    email = graphene.String(required=True)


class UpdateUserInput(graphene.InputObjectType):
    name = graphene.String()
    email = graphene.String()


class CreatePostInput(graphene.InputObjectType):
    title = graphene.String(required=True)
    content = graphene.String(required=True)
    author_id = graphene.ID(required=True)


def _invalid(errors: Mapping[str, list[str]]) -> GraphQLError:
    """One BAD_USER_INPUT error naming every invalid field (``extensions.fields``)."""
    problems = "; ".join(f"{field}: {' '.join(why)}" for field, why in errors.items())
    return user_error(f"Invalid input: {problems}", fields=dict(errors))


def _commit(what: str) -> None:
    """Commit, or roll back and report a duplicate email as a client error."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise user_error(f"{what} already exists", "CONFLICT", fields={
            "email": ["Email already exists"]}) from None


def apply_user_update(user, changes):
    """Apply a partial update: fields absent from ``changes`` stay as they are.

    A field sent as "" or null is not absent: it is validated like any value
    and refused with a BAD_USER_INPUT error (the document's ``if name:``
    silently drops it). Nothing changes unless every field is valid.
    """
    errors = validate_user(changes, partial=True)
    if errors:
        problems = "; ".join(f"{field}: {' '.join(why)}" for field, why in errors.items())
        raise GraphQLError(f"Invalid input: {problems}",
                           extensions={"code": "BAD_USER_INPUT", "fields": errors})
    if "name" in changes:
        user.name = changes["name"]
    if "email" in changes:
        user.email = changes["email"]
    return user


class CreateUser(graphene.Mutation):
    class Arguments:
        input = CreateUserInput(required=True)

    Output = graphene.NonNull(UserType)

    def mutate(self, info, input):
        data = dict(input)  # graphene leaves out the fields a client did not send
        errors = validate_user(data)
        if errors:
            raise _invalid(errors)
        user = User(name=data["name"], email=data["email"])
        db.session.add(user)
        _commit("A user with this email")
        return user


class UpdateUser(graphene.Mutation):
    class Arguments:
        id = graphene.ID(required=True)
        input = UpdateUserInput(required=True)

    Output = graphene.NonNull(UserType)

    def mutate(self, info, id, input):
        user = db.session.get(User, parse_id(id))
        if user is None:
            raise user_error(f"User {id} not found", "NOT_FOUND")
        update = _context(info).get("apply_user_update", apply_user_update)
        try:
            update(user, dict(input))
        except BaseException:
            db.session.rollback()
            raise
        _commit("A user with this email")
        return user


class DeleteUser(graphene.Mutation):
    class Arguments:
        id = graphene.ID(required=True)

    Output = graphene.NonNull(graphene.Boolean)

    def mutate(self, info, id):
        user = db.session.get(User, parse_id(id))
        if user is None:
            return False
        db.session.delete(user)
        db.session.commit()
        return True


class CreatePost(graphene.Mutation):
    class Arguments:
        input = CreatePostInput(required=True)

    Output = graphene.NonNull(PostType)

    def mutate(self, info, input):
        author_id = parse_id(input["author_id"], "authorId")
        errors = {field: [f"{field} must not be empty"]
                  for field in ("title", "content") if not input[field].strip()}
        if len(input["title"]) > 200:
            errors["title"] = ["title must be at most 200 characters"]
        if db.session.get(User, author_id) is None:
            errors["authorId"] = [f"no user has id {author_id}"]
        if errors:
            raise _invalid(errors)
        post = Post(title=input["title"].strip(), content=input["content"], author_id=author_id)
        db.session.add(post)
        db.session.commit()
        _context(info).get("bus", posts_bus).publish(post.id)
        return post


class Mutation(graphene.ObjectType):
    create_user = CreateUser.Field()
    update_user = UpdateUser.Field()
    delete_user = DeleteUser.Field()
    create_post = CreatePost.Field()


# --- subscriptions -----------------------------------------------------------

class Subscription(graphene.ObjectType):
    post_added = graphene.Field(PostType, author_id=graphene.ID())

    def subscribe_post_added(root, info, author_id=None) -> AsyncIterator[Post]:
        wanted = parse_id(author_id, "authorId") if author_id is not None else None
        # Listening starts now, when the client subscribes, not at the first event.
        return _new_posts(_context(info).get("bus", posts_bus).listen(), wanted)

    def resolve_post_added(post, info, author_id=None):
        return post


async def _new_posts(post_ids, author_id: int | None) -> AsyncIterator[Post]:
    try:
        async for post_id in post_ids:
            post = db.session.get(Post, post_id)  # in the event's own session: never stale
            if post is not None and author_id in (None, post.author_id):
                yield post
    finally:
        post_ids.close()


schema = graphene.Schema(query=Query, mutation=Mutation, subscription=Subscription)


# --- validation: the depth limit ---------------------------------------------

def selection_depth(selection_set, fragments, seen=frozenset()):
    """How deep a selection set nests fields, following fragments.

    Each field adds one level; inline fragments and fragment spreads add
    none but are looked into. Introspection fields (``__schema``...) are not
    counted, and a fragment already being expanded is not expanded again.
    """
    if selection_set is None:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if selection.kind == "field":
            if selection.name.value.startswith("__"):
                continue
            depth = 1 + selection_depth(selection.selection_set, fragments, seen)
        elif selection.kind == "inline_fragment":
            depth = selection_depth(selection.selection_set, fragments, seen)
        else:
            name = selection.name.value
            if name in seen or name not in fragments:
                continue
            depth = selection_depth(fragments[name].selection_set, fragments, seen | {name})
        deepest = max(deepest, depth)
    return deepest


def depth_limit_rule(max_depth: int = MAX_DEPTH, measure=selection_depth) -> type[ValidationRule]:
    """A validation rule refusing operations that nest deeper than ``max_depth``."""

    class DepthLimitRule(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
            fragments = {definition.name.value: definition
                         for definition in self.context.document.definitions
                         if definition.kind == "fragment_definition"}
            depth = measure(node.selection_set, fragments)
            if depth > max_depth:
                name = f"Operation '{node.name.value}'" if node.name else "The operation"
                self.report_error(GraphQLError(
                    f"{name} nests {depth} levels deep; the limit is {max_depth}", node))

    return DepthLimitRule


# --- executing a request ------------------------------------------------------

def _with_code(error: GraphQLError, code: str) -> GraphQLError:
    if not (error.extensions or {}).get("code"):
        error.extensions = {**(error.extensions or {}), "code": code}
    return error


def _coded(errors: list[GraphQLError], code: str) -> list[GraphQLError]:
    return [_with_code(error, code) for error in errors]


def _mask_unexpected(result: ExecutionResult, logger: logging.Logger = log) -> ExecutionResult:
    """Give every error a code; hide what a server bug says behind a generic message."""
    if not result.errors:
        return result
    errors = []
    for error in result.errors:
        original = error.original_error
        if original is not None and not isinstance(original, GraphQLError):
            logger.error("resolver failed at %s", ".".join(map(str, error.path or [])),
                         exc_info=original)
            db.session.rollback()
            error = GraphQLError("Internal server error", error.nodes, path=error.path,
                                 extensions={"code": "INTERNAL_SERVER_ERROR"})
        errors.append(_with_code(error, "BAD_USER_INPUT"))
    return ExecutionResult(result.data, errors)


def prepare(query: str, *, served_schema: graphene.Schema = schema,
            max_depth: int | None = MAX_DEPTH,
            measure=selection_depth) -> DocumentNode | list[GraphQLError]:
    """Parse and validate ``query``: its document, or the errors that refuse it.

    ``max_depth=None`` validates with the standard rules only (no depth limit).
    """
    try:
        document = parse(query)
    except GraphQLError as error:
        return _coded([error], "GRAPHQL_PARSE_FAILED")
    rules = list(specified_rules)
    if max_depth is not None:
        rules.append(depth_limit_rule(max_depth, measure))
    errors = validate(served_schema.graphql_schema, document, rules)
    return _coded(errors, "GRAPHQL_VALIDATION_FAILED") if errors else document


async def execute_query(
    query: str,
    variables: Mapping[str, Any] | None = None,
    operation_name: str | None = None,
    *,
    context: dict | None = None,
    served_schema: graphene.Schema = schema,
    max_depth: int | None = MAX_DEPTH,
    depth_measure=selection_depth,
) -> ExecutionResult:
    """Parse, validate (standard rules plus the depth limit) and execute, awaiting
    async resolvers: this is the path on which DataLoaders batch."""
    document = prepare(query, served_schema=served_schema, max_depth=max_depth,
                       measure=depth_measure)
    if isinstance(document, list):
        return ExecutionResult(None, document)
    operation = get_operation_ast(document, operation_name)
    if operation is not None and operation.operation == OperationType.SUBSCRIPTION:
        return ExecutionResult(None, [user_error(
            "Subscriptions stream over the WebSocket (graphql-transport-ws), not over HTTP",
            "BAD_REQUEST")])
    result = execute(served_schema.graphql_schema, document, variable_values=variables,
                     operation_name=operation_name,
                     context_value=context if context is not None else new_context())
    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
        result = await result
    return _mask_unexpected(result, (context or {}).get("logger", log))


def run_query(query: str, variables: Mapping[str, Any] | None = None,
              operation_name: str | None = None, **context_options: Any) -> ExecutionResult:
    """:func:`execute_query` from synchronous code (a thread with no running loop)."""

    async def main() -> ExecutionResult:
        try:
            return await execute_query(query, variables, operation_name,
                                       context=new_context(**context_options))
        finally:
            db.session.remove()

    return asyncio.run(main())


async def subscribe_query(query: str, variables: Mapping[str, Any] | None = None,
                          operation_name: str | None = None, *, context: dict | None = None
                          ) -> AsyncIterator[ExecutionResult] | ExecutionResult:
    """Like :func:`execute_query` for a ``subscription``: an async iterator of results."""
    document = prepare(query)
    if isinstance(document, list):
        return ExecutionResult(None, document)
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation != OperationType.SUBSCRIPTION:
        with database.own_session():  # other operations run on this loop's thread meanwhile
            return await execute_query(query, variables, operation_name, context=context)
    stream = await subscribe(schema.graphql_schema, document, variable_values=variables,
                             operation_name=operation_name,
                             context_value=context if context is not None else {"bus": posts_bus})
    if isinstance(stream, ExecutionResult):
        return _mask_unexpected(stream)
    return _masked_stream(stream)


async def _masked_stream(stream: AsyncIterator[ExecutionResult]) -> AsyncIterator[ExecutionResult]:
    """Each event read and resolved in a database session of its own, then masked."""
    try:
        while True:
            with database.own_session():
                try:
                    result = _mask_unexpected(await anext(stream))
                except StopAsyncIteration:
                    return
            yield result
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


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


def graphql_response(payload: dict[str, Any], status: int = 200, media_type: str = JSON,
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


def create_app(
    *,
    served_schema: graphene.Schema = schema,
    dataloaders: bool = True,
    max_depth: int | None = MAX_DEPTH,
    depth_measure=selection_depth,
    posts_loader=posts_by_author,
    user_update=apply_user_update,
) -> Flask:
    """Build the GraphQL lab's Flask app: one endpoint, ``/graphql``.

    The keyword arguments let the notebook serve another schema (the
    document's) or switch the DataLoaders and the depth limit off, and let the
    exercises plug a learner's code into the live server.
    """
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    @app.teardown_appcontext
    def remove_session(_exc: BaseException | None) -> None:
        db.session.remove()

    @app.route("/graphql", methods=["GET", "POST"])
    def graphql_view() -> Response:
        media_type = response_media_type(request.headers.get("Accept"))
        if media_type is None:
            return graphql_response(_errors(f"Accept {GRAPHQL_RESPONSE} or {JSON}",
                                            "NOT_ACCEPTABLE"), 406)
        try:
            query, variables, operation = _params()
        except RequestError as error:
            return graphql_response(_errors(error.message, error.code), error.status, media_type)
        if request.method == "GET":
            document = prepare(query, served_schema=served_schema, max_depth=max_depth,
                               measure=depth_measure)
            if not isinstance(document, list):
                chosen = get_operation_ast(document, operation)
                if chosen is not None and chosen.operation != OperationType.QUERY:
                    return graphql_response(
                        _errors("Only queries may be sent with GET; POST mutations",
                                "METHOD_NOT_ALLOWED"), 405, media_type, Allow="POST")

        async def run() -> ExecutionResult:
            context = new_context(dataloaders=dataloaders, posts_loader=posts_loader,
                                  apply_user_update=user_update, logger=app.logger)
            return await execute_query(query, variables, operation, context=context,
                                       served_schema=served_schema, max_depth=max_depth,
                                       depth_measure=depth_measure)

        result = asyncio.run(run())
        if is_request_error(result):
            # Nothing ran (parse, validation, operation or variables): no "data" entry.
            # application/graphql-response+json says so with 400; application/json answers
            # 200, the one status a client can trust did not come from a proxy.
            status = 400 if media_type == GRAPHQL_RESPONSE else 200
            return graphql_response({"errors": result.formatted["errors"]}, status, media_type)
        return graphql_response(result.formatted, 200, media_type)

    @app.errorhandler(Exception)
    def any_error(error: Exception) -> Response:
        """Every other failure, in the GraphQL error shape; never a traceback."""
        if isinstance(error, HTTPException):
            status, message = error.code or 500, error.description or error.name
        else:
            app.logger.exception("unhandled error")
            db.session.rollback()
            status, message = 500, "Internal server error"
        if status == 413:
            message = f"The request body is too large: the limit is {MAX_BODY_BYTES} bytes"
        allow = getattr(error, "valid_methods", None)
        return graphql_response(_errors(message, HTTP_CODES.get(status, "ERROR")), status,
                                response_media_type(request.headers.get("Accept")) or JSON,
                                **({"Allow": ", ".join(allow)} if allow else {}))

    return app


def start(
    *,
    fresh_data: bool = True,
    name: str = "graphql",
    **app_options: Any,
) -> ServerHandle:
    """Serve the GraphQL lab on 127.0.0.1 (free ports), replacing any earlier one.

    ``server.url`` takes GraphQL over HTTP at ``/graphql``; ``server.ws_url``
    takes subscriptions over WebSocket (the ``graphql-transport-ws`` protocol).
    ``app_options`` go to :func:`create_app`.
    """
    if fresh_data:
        database.reset()
    else:
        database.current_engine()
    ws = serve_graphql_ws(f"{name}-ws", subscribe_query)
    handle = serve_wsgi(name, create_app(**app_options), on_stop=ws.stop)
    handle.ws_url = f"ws://{ws.host}:{ws.port}/graphql"  # type: ignore[attr-defined]
    handle.ws = ws  # type: ignore[attr-defined]
    return handle
