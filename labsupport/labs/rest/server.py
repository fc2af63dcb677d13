"""The REST lab: the document's Flask user API, corrected, on the shared database.

``start()`` serves it in the background of the kernel::

    from labsupport import rest
    server = rest.start()
    requests.get(f"{server.url}/api/v1/users/123").json()


What it adds to the document's code: validation with 422 and the document's
error envelope (never a 500), no mass assignment, a unique constraint behind
409, ``Location`` on 201, ``ETag``/``If-None-Match`` and 304, a token-bucket
rate limiter with 429 and ``Retry-After``, bounded ``limit``, keyset cursors
that skip nothing on ties, PUT that replaces and PATCH that merges, and
versioning by URL, by ``Accept`` header and by query parameter, and its
contract: ``/openapi.json`` (OpenAPI 3.1), generated from the marshmallow
schemas that validate every request (``schemas.py`` beside this file), with
Swagger UI at ``/docs/``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from flask import Blueprint, Flask, Response, current_app, jsonify, request, url_for
from marshmallow import ValidationError
from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError

from ... import database
from ...api_errors import APIError, OrderedJSONProvider, install_error_handlers, json_object
from ...database import CATALOG, Comment, Order, Post, User, db
from ...harness import ServerHandle, serve_wsgi
from ...openapi import build_spec, contract_blueprint, operation
from ...pagination import PaginatedResponse, decode_cursor, encode_cursor, paginate
from ...ratelimit import RateLimiter, TokenBucket
from ...users import UserBody, validate_user
from . import schemas
from .schemas import MAX_LIMIT, SUPPORTED_VERSIONS, OrderBody

__all__ = ["create_app", "start", "validate_user", "newest_posts", "openapi_document",
           "UserBody", "MAX_LIMIT"]


USER_FIELDS = ("name", "email")
VENDOR_MEDIA_TYPE = re.compile(r"application/vnd\.myapi\.v(\d+)\+json")
#: The largest id SQLite stores; a bigger one in a URL names nothing (404), not a 500.
MAX_ID = 2**63 - 1


# --- request parsing --------------------------------------------------------

def sort_order(model: Any, sort: str) -> list[Any]:
    """``?sort=name,-created_at`` (checked by the query schema) as ORDER BY terms;
    the id breaks ties."""
    terms = [
        getattr(model, field.lstrip("-")).desc() if field.startswith("-")
        else getattr(model, field).asc()
        for field in filter(None, sort.split(","))
    ]
    return [*terms, model.id.asc()]


def newest_posts(after: tuple[dt.datetime, int] | None, limit: int) -> list[Post]:
    """Posts newest first, the ``limit`` that follow the post ``after`` names.

    ``after`` is the ``(created_at, id)`` of the last post already seen. The
    id breaks ties, so posts created in the same second are neither skipped
    nor repeated, and new posts never shift the pages a client is reading.
    """
    query = select(Post).order_by(Post.created_at.desc(), Post.id.desc()).limit(limit)
    if after is not None:
        created_at, id = after
        query = query.where(
            or_(Post.created_at < created_at, and_(Post.created_at == created_at, Post.id < id))
        )
    return list(db.session.scalars(query))


# --- the app ----------------------------------------------------------------

@dataclass
class _RESTLab:
    """What the REST routes serve from, kept in ``app.extensions["rest"]``."""

    validator: Callable[..., dict[str, list[str]]]
    posts_page: Callable[..., list[Post]]
    rate_limit: tuple[int, float] | None
    limiter: RateLimiter | None


def _lab() -> _RESTLab:
    lab: _RESTLab = current_app.extensions["rest"]
    return lab


def create_app(
    *,
    rate_limit: tuple[int, float] | None = (100, 1.0),
    bucket: Callable[[int, float], Any] = TokenBucket,
    validator: Callable[..., dict[str, list[str]]] = validate_user,
    posts_page: Callable[..., list[Post]] = newest_posts,
) -> Flask:
    """Build the REST lab's Flask app.

    ``rate_limit`` is ``(requests, per_seconds)`` per client (``X-API-Key``
    header, else address), or ``None``. ``bucket``, ``validator`` and
    ``posts_page`` let exercises plug a learner's code into the live server.
    """
    app = Flask(__name__, static_folder=None)
    app.json = OrderedJSONProvider(app)
    install_error_handlers(app)
    app.teardown_appcontext(_remove_session)
    limiter = None
    if rate_limit is not None:
        requests_allowed, per_seconds = rate_limit
        limiter = RateLimiter(lambda: bucket(requests_allowed, requests_allowed / per_seconds))
        app.before_request(_limit_rate)
        app.after_request(_advertise_limit)
    app.extensions["rest"] = _RESTLab(validator, posts_page, rate_limit, limiter)
    for blueprint in (users, orders, posts):
        app.register_blueprint(blueprint, url_prefix="/api/v1")
    app.register_blueprint(versions)
    app.register_blueprint(contract_blueprint(openapi_document, title="Protocol Lab REST API"))
    app.config["RATE_LIMITED"] = rate_limit is not None
    return app


def _remove_session(_exc: BaseException | None) -> None:
    db.session.remove()


def _limit_rate() -> None:
    """429 with ``Retry-After`` when the client (``X-API-Key``, else address) is over its rate."""
    limiter = _lab().limiter
    assert limiter is not None  # registered only with a rate limit
    key = request.headers.get("X-API-Key") or request.remote_addr or "-"
    wait = limiter.wait_time(key, time.monotonic())
    if wait > 0:
        raise APIError(429, "Too many requests; slow down", details={
            "retry_after_seconds": math.ceil(wait)}, headers={
            "Retry-After": str(math.ceil(wait))})


def _advertise_limit(response: Response) -> Response:
    rate_limit = _lab().rate_limit
    assert rate_limit is not None  # registered only with a rate limit
    requests_allowed, per_seconds = rate_limit
    response.headers["X-RateLimit-Limit"] = f"{requests_allowed};w={per_seconds:g}"
    return response


def openapi_document(app: Flask) -> dict[str, Any]:
    """The app's OpenAPI 3.1 contract, built from its routes and their schemas."""
    every_operation: dict[int, Any] = {500: None}
    description = ("The document's user API, corrected. Every error answers the document's "
                   "envelope (ErrorEnvelope).")
    if app.config.get("RATE_LIMITED"):
        every_operation[429] = None
        description += (" Clients are rate-limited by X-API-Key, else by address: 429 with "
                        "Retry-After.")
    return build_spec(
        app, title="Protocol Lab REST API", version="1.0.0", description=description,
        every_operation=every_operation,
        path_examples={"user_id": 101, "order_id": 1, "post_id": 1},  # in the sample data
    )


def conditional(payload: Any, status: int = 200) -> Response:
    """A JSON response with an ``ETag``; 304 when ``If-None-Match`` matches it."""
    response = jsonify(payload)
    response.status_code = status
    response.add_etag()
    return cast(Response, response.make_conditional(request))  # it returns ``response``


def get_or_404(model: Any, id: int) -> Any:
    """The row with ``id``, or a 404 in the error envelope."""
    row = db.session.get(model, id) if id <= MAX_ID else None
    if row is None:
        raise APIError(404, f"{model.__name__} {id} not found")
    return row


def commit_or_conflict(what: str) -> None:
    """Commit, turning a unique-constraint violation into 409 (no check-then-insert race)."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise APIError(409, f"{what} already exists", details={
            "email": ["Email already exists"]}) from None


USER_LINKS = {201: {
    "GetUser": ("users.get_user", {"user_id": "$response.body#/id"}),
    "ReplaceUser": ("users.replace_user", {"user_id": "$response.body#/id"}),
    "UpdateUser": ("users.update_user", {"user_id": "$response.body#/id"}),
    "DeleteUser": ("users.delete_user", {"user_id": "$response.body#/id"}),
    "ListOrders": ("orders.list_orders", {"user_id": "$response.body#/id"}),
    "CreateOrder": ("orders.create_order", {"user_id": "$response.body#/id"}),
}}
ORDER_LINKS = {201: {
    "GetOrder": ("orders.get_order", {"user_id": "$request.path.user_id",
                                      "order_id": "$response.body#/id"}),
}}
#: What a body can be refused with: not JSON (415), unreadable or not an object (400),
#: invalid (422).
BODY_ERRORS = {400: None, 415: None, 422: None}


users = Blueprint("users", __name__)


def _valid_body(partial: bool) -> dict[str, Any]:
    """The request's JSON object, checked by the lab's validator (422 with its errors)."""
    data = json_object()
    errors = _lab().validator(data, partial=partial)
    if errors:
        raise APIError(422, "Validation failed", details=errors)
    return data


@users.get("/users")
@operation("List users, a page at a time, filtered and sorted", query=schemas.UsersQuery,
           responses={200: schemas.UsersPage, 304: None, 400: None}, etag=True)
def list_users(args: dict[str, Any]) -> Response:
    """Collection: ``?page``, ``?limit`` (1-100), ``?name`` filter, ``?sort``."""
    page, limit = args["page"], args["limit"]
    query = select(User).order_by(*sort_order(User, args["sort"]))
    if name := args.get("name"):
        query = query.where(User.name.icontains(name, autoescape=True))
    users = paginate(query, page, limit)
    return conditional({
        "users": [user.to_dict() for user in users.items],
        "pagination": {"page": page, "pages": users.pages, "total": users.total},
    })


@users.get("/users/<int:user_id>")
@operation("Read a user", responses={200: schemas.UserV1, 304: None, 404: None}, etag=True)
def get_user(user_id: int) -> Response:
    return conditional(get_or_404(User, user_id).to_dict())


@users.post("/users")
@operation("Create a user", body=UserBody, links=USER_LINKS,
           responses={201: schemas.UserV1, 409: None, **BODY_ERRORS})
def create_user() -> tuple[Response, int, dict[str, str]]:
    data = _valid_body(partial=False)
    user = User(name=data["name"], email=data["email"])
    db.session.add(user)
    commit_or_conflict("A user with this email")
    location = url_for("users.get_user", user_id=user.id)
    return jsonify(user.to_dict()), 201, {"Location": location}


@users.put("/users/<int:user_id>")
@operation("Replace a user: every writable field must be sent", body=UserBody,
           responses={200: schemas.UserV1, 404: None, 409: None, **BODY_ERRORS})
def replace_user(user_id: int) -> Response:
    """PUT replaces: every writable field must be sent."""
    user = get_or_404(User, user_id)
    data = _valid_body(partial=False)
    user.name, user.email = data["name"], data["email"]
    commit_or_conflict("A user with this email")
    return jsonify(user.to_dict())


@users.patch("/users/<int:user_id>")
@operation("Change some fields of a user", body=UserBody(partial=True),
           responses={200: schemas.UserV1, 404: None, 409: None, **BODY_ERRORS})
def update_user(user_id: int) -> Response:
    """PATCH merges: only the fields sent change."""
    user = get_or_404(User, user_id)
    data = _valid_body(partial=True)
    for field in USER_FIELDS:
        if field in data:
            setattr(user, field, data[field])
    commit_or_conflict("A user with this email")
    return jsonify(user.to_dict())


@users.delete("/users/<int:user_id>")
@operation("Delete a user, with their orders", responses={204: None, 404: None})
def delete_user(user_id: int) -> tuple[str, int]:
    db.session.delete(get_or_404(User, user_id))
    db.session.commit()
    return "", 204


orders = Blueprint("orders", __name__)


@orders.get("/users/<int:user_id>/orders")
@operation("A user's orders, a page at a time", query=schemas.OrdersQuery,
           responses={200: schemas.OrdersPage, 304: None, 400: None, 404: None}, etag=True)
def list_orders(user_id: int, args: dict[str, Any]) -> Response:
    """A user's orders: ``?status`` filter, ``?sort``, ``?page``, ``?limit``."""
    get_or_404(User, user_id)
    page, limit = args["page"], args["limit"]
    order_by = sort_order(Order, args["sort"])
    query = select(Order).where(Order.user_id == user_id).order_by(*order_by)
    if status := args.get("status"):
        query = query.where(Order.status == status)
    orders = paginate(query, page, limit)
    return conditional(PaginatedResponse(orders.items, page, limit, orders.total).to_dict())


@orders.get("/users/<int:user_id>/orders/<int:order_id>")
@operation("Read one order of a user", responses={200: schemas.Order, 304: None, 404: None},
           etag=True)
def get_order(user_id: int, order_id: int) -> Response:
    order = db.session.get(Order, order_id) if order_id <= MAX_ID else None
    if order is None or order.user_id != user_id:
        raise APIError(404, f"Order {order_id} of user {user_id} not found")
    return conditional(order.to_dict())


@orders.post("/users/<int:user_id>/orders")
@operation("Order an item of the catalog for a user; the price comes from the catalog",
           body=OrderBody, links=ORDER_LINKS,
           responses={201: schemas.Order, 404: None, **BODY_ERRORS})
def create_order(user_id: int) -> tuple[Response, int, dict[str, str]]:
    get_or_404(User, user_id)
    data = json_object()
    try:
        order_fields = OrderBody().load(data)
    except ValidationError as error:
        raise APIError(422, "Validation failed", details=error.normalized_messages()) from None
    item, quantity = order_fields["item"], order_fields["quantity"]
    order = Order(user_id=user_id, item=item, quantity=quantity,
                  total_cents=CATALOG[str(item)] * quantity)
    db.session.add(order)
    db.session.commit()
    location = url_for("orders.get_order", user_id=user_id, order_id=order.id)
    return jsonify(order.to_dict()), 201, {"Location": location}


posts = Blueprint("posts", __name__)


@posts.get("/posts")
@operation("Posts newest first, keyset-paginated: follow next_cursor until it is null",
           query=schemas.PostsQuery, etag=True,
           responses={200: schemas.PostsPage, 304: None, 400: None})
def list_posts(args: dict[str, Any]) -> Response:
    """Newest first, keyset-paginated: follow ``next_cursor`` until it is null."""
    limit = args["limit"]
    after = None
    if cursor := args.get("cursor"):
        try:
            after = decode_cursor(cursor)
        except ValueError as exc:
            raise APIError(400, "Invalid query parameter 'cursor'", "INVALID_PARAMETER",
                           {"cursor": [str(exc)]}) from None
    page = _lab().posts_page(after, limit)
    last = page[-1] if len(page) == limit else None
    next_cursor = encode_cursor(last.created_at, last.id) if last else None
    return conditional({"data": [p.to_dict() for p in page], "next_cursor": next_cursor})


@posts.get("/posts/<int:post_id>")
@operation("Read a post", responses={200: schemas.Post, 304: None, 404: None}, etag=True)
def get_post(post_id: int) -> Response:
    return conditional(get_or_404(Post, post_id).to_dict())


@posts.get("/posts/<int:post_id>/comments")
@operation("A post's comments", etag=True,
           responses={200: schemas.Comments, 304: None, 404: None})
def list_comments(post_id: int) -> Response:
    get_or_404(Post, post_id)
    query = select(Comment).where(Comment.post_id == post_id).order_by(Comment.id)
    return conditional({"data": [c.to_dict() for c in db.session.scalars(query)]})


V1_MEDIA_TYPE = "application/vnd.myapi.v1+json"
V2_MEDIA_TYPE = "application/vnd.myapi.v2+json"


#: v2 by URL (``/api/v2/users``), and both versions by header or query parameter.
versions = Blueprint("versions", __name__)


def _users_page(version: int, page: int, limit: int) -> dict[str, Any]:
    users = paginate(select(User).order_by(User.id), page, limit)
    if version == 1:
        return {"users": [u.to_dict_v1() for u in users.items],
                "pagination": {"page": page, "pages": users.pages, "total": users.total}}
    return PaginatedResponse(users.items, page, limit, users.total, "to_dict_v2").to_dict()


def _user_doc(version: int, user_id: int) -> dict[str, Any]:
    user = get_or_404(User, user_id)
    return user.to_dict_v1() if version == 1 else user.to_dict_v2()


@versions.get("/api/v2/users")
@operation("List users, v2 representation", query=schemas.PageQuery,
           responses={200: schemas.UsersV2Page, 304: None, 400: None}, etag=True)
def list_users_v2(args: dict[str, Any]) -> Response:
    return conditional(_users_page(2, args["page"], args["limit"]))


@versions.get("/api/v2/users/<int:user_id>")
@operation("Read a user, v2 representation",
           responses={200: schemas.UserV2, 304: None, 404: None}, etag=True)
def get_user_v2(user_id: int) -> Response:
    return conditional(_user_doc(2, user_id))


def _negotiated_version(version_parameter: int) -> int:
    """The version ``Accept`` names (406 if we have not got it), else ``?version=``."""
    match = VENDOR_MEDIA_TYPE.search(request.headers.get("Accept", ""))
    if match is None:
        return version_parameter
    if not match.group(1).isdigit() or int(match.group(1)) not in SUPPORTED_VERSIONS:
        raise APIError(406, f"API version {match.group(1)!r} is not supported", details={
            "supported": [f"application/vnd.myapi.v{v}+json" for v in SUPPORTED_VERSIONS]})
    return int(match.group(1))


def _vendor_response(version: int, payload: Any) -> Response:
    response = conditional(payload)
    response.mimetype = f"application/vnd.myapi.v{version}+json"
    response.vary.add("Accept")
    return response


NEGOTIATED = ("Content negotiation: Accept: application/vnd.myapi.v2+json (or v1) picks "
              "the version, else ?version=; an Accept naming another version is a 406.")


@versions.get("/api/users")
@operation("List users in the version the client asks for", query=schemas.VersionedPageQuery,
           description=NEGOTIATED, etag=True, responses={
               200: {V1_MEDIA_TYPE: schemas.UsersPage, V2_MEDIA_TYPE: schemas.UsersV2Page},
               304: None, 400: None, 406: None})
def list_users_negotiated(args: dict[str, Any]) -> Response:
    version = _negotiated_version(args["version"])
    return _vendor_response(version, _users_page(version, args["page"], args["limit"]))


@versions.get("/api/users/<int:user_id>")
@operation("Read a user in the version the client asks for", query=schemas.VersionQuery,
           description=NEGOTIATED, etag=True, responses={
               200: {V1_MEDIA_TYPE: schemas.UserV1, V2_MEDIA_TYPE: schemas.UserV2},
               304: None, 400: None, 404: None, 406: None})
def get_user_negotiated(user_id: int, args: dict[str, Any]) -> Response:
    version = _negotiated_version(args["version"])
    return _vendor_response(version, _user_doc(version, user_id))


def start(
    *,
    fresh_data: bool = True,
    name: str = "rest",
    **app_options: Any,
) -> ServerHandle:
    """Serve the REST lab on 127.0.0.1 (a free port), replacing any earlier one.

    ``fresh_data`` resets the shared database to the sample data first;
    ``app_options`` go to :func:`create_app` (e.g. ``rate_limit=(5, 60)``).
    """
    database.ready(fresh_data)
    return serve_wsgi(name, create_app(**app_options))
