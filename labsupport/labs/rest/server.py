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
versioning by URL, by ``Accept`` header and by query parameter.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from collections.abc import Callable
from typing import Any, cast

from flask import Blueprint, Flask, Response, jsonify, request, url_for
from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError

from ... import database
from ...api_errors import (
    APIError,
    OrderedJSONProvider,
    install_error_handlers,
    json_object,
    query_int,
)
from ...database import CATALOG, Comment, Order, Post, User, db
from ...harness import ServerHandle, serve_wsgi
from ...pagination import PaginatedResponse, decode_cursor, encode_cursor, paginate
from ...ratelimit import RateLimiter, TokenBucket

__all__ = ["create_app", "start", "validate_user", "newest_posts", "MAX_LIMIT"]

MAX_LIMIT = 100
USER_FIELDS = ("name", "email")
VENDOR_MEDIA_TYPE = re.compile(r"application/vnd\.myapi\.v(\d+)\+json")
SUPPORTED_VERSIONS = (1, 2)
ORDER_STATUSES = ("pending", "paid", "shipped", "delivered")


# --- request parsing --------------------------------------------------------

def int_param(name: str, default: int, low: int, high: int | None = None) -> int:
    """A bounded integer query parameter, or a 400 that says what is allowed."""
    return query_int(request.args.get(name), name, default, low, high)


def sort_order(model: Any, allowed: tuple[str, ...]) -> list[Any]:
    """``?sort=name,-created_at`` as ORDER BY terms (id breaks ties)."""
    terms = []
    for field in filter(None, request.args.get("sort", "id").split(",")):
        name = field.lstrip("-")
        if name not in allowed:
            raise APIError(400, "Invalid query parameter 'sort'", "INVALID_PARAMETER",
                           {"sort": [f"can sort by {', '.join(allowed)}; got {name!r}"]})
        column = getattr(model, name)
        terms.append(column.desc() if field.startswith("-") else column.asc())
    return [*terms, model.id.asc()]


def validate_user(data: dict, partial: bool = False) -> dict[str, list[str]]:
    """Field errors of a user body, in the document's ``details`` format.

    A full body (POST, PUT) needs ``name`` and ``email``; a partial one (PATCH)
    may leave either out. Fields other than those are refused, so a client
    cannot set ``id`` or ``role`` (mass assignment).
    """
    errors: dict[str, list[str]] = {}
    for field in data:
        if field not in ("name", "email"):
            errors[field] = ["Unknown field"]
    if "name" in data:
        name = data["name"]
        if not isinstance(name, str) or not name.strip():
            errors["name"] = ["Name must be a non-empty string"]
        elif len(name) > 100:
            errors["name"] = ["Name must be at most 100 characters"]
    elif not partial:
        errors["name"] = ["Name is required"]
    if "email" in data:
        email = data["email"]
        if not isinstance(email, str) or not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email):
            errors["email"] = ["Email must look like name@example.com"]
        elif len(email) > 255:
            errors["email"] = ["Email must be at most 255 characters"]
    elif not partial:
        errors["email"] = ["Email is required"]
    return errors


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
    app = Flask(__name__)
    app.json = OrderedJSONProvider(app)
    install_error_handlers(app)

    @app.teardown_appcontext
    def remove_session(_exc: BaseException | None) -> None:
        db.session.remove()

    if rate_limit is not None:
        requests_allowed, per_seconds = rate_limit
        limiter = RateLimiter(lambda: bucket(requests_allowed, requests_allowed / per_seconds))

        @app.before_request
        def limit_rate() -> None:
            key = request.headers.get("X-API-Key") or request.remote_addr or "-"
            wait = limiter.wait_time(key, time.monotonic())
            if wait > 0:
                raise APIError(429, "Too many requests; slow down", details={
                    "retry_after_seconds": math.ceil(wait)}, headers={
                    "Retry-After": str(math.ceil(wait))})

        @app.after_request
        def advertise_limit(response: Response) -> Response:
            response.headers["X-RateLimit-Limit"] = f"{requests_allowed};w={per_seconds:g}"
            return response

    app.register_blueprint(_users_blueprint(validator), url_prefix="/api/v1")
    app.register_blueprint(_orders_blueprint(), url_prefix="/api/v1")
    app.register_blueprint(_posts_blueprint(posts_page), url_prefix="/api/v1")
    app.register_blueprint(_versioned_blueprint())
    return app


def conditional(payload: Any, status: int = 200) -> Response:
    """A JSON response with an ``ETag``; 304 when ``If-None-Match`` matches it."""
    response = jsonify(payload)
    response.status_code = status
    response.add_etag()
    return cast(Response, response.make_conditional(request))  # it returns ``response``


def get_or_404(model: Any, id: int) -> Any:
    """The row with ``id``, or a 404 in the error envelope."""
    row = db.session.get(model, id)
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


def _users_blueprint(validator: Callable[..., dict[str, list[str]]]) -> Blueprint:
    bp = Blueprint("users", __name__)

    def valid_body(partial: bool) -> dict[str, Any]:
        data = json_object()
        errors = validator(data, partial=partial)
        if errors:
            raise APIError(422, "Validation failed", details=errors)
        return data

    @bp.get("/users")
    def list_users() -> Response:
        """Collection: ``?page``, ``?limit`` (1-100), ``?name`` filter, ``?sort``."""
        page = int_param("page", 1, 1)
        limit = int_param("limit", 10, 1, MAX_LIMIT)
        query = select(User).order_by(*sort_order(User, ("id", "name", "email", "created_at")))
        if name := request.args.get("name"):
            if "\x00" in name:  # SQLite's LIKE ends the pattern at a NUL: it would match everyone
                raise APIError(400, "Invalid query parameter 'name'", "INVALID_PARAMETER",
                               {"name": ["must not contain a NUL character"]})
            query = query.where(User.name.icontains(name, autoescape=True))
        users = paginate(query, page, limit)
        return conditional({
            "users": [user.to_dict() for user in users.items],
            "pagination": {"page": page, "pages": users.pages, "total": users.total},
        })

    @bp.get("/users/<int:user_id>")
    def get_user(user_id: int) -> Response:
        return conditional(get_or_404(User, user_id).to_dict())

    @bp.post("/users")
    def create_user() -> tuple[Response, int, dict[str, str]]:
        data = valid_body(partial=False)
        user = User(name=data["name"], email=data["email"])
        db.session.add(user)
        commit_or_conflict("A user with this email")
        location = url_for("users.get_user", user_id=user.id)
        return jsonify(user.to_dict()), 201, {"Location": location}

    @bp.put("/users/<int:user_id>")
    def replace_user(user_id: int) -> Response:
        """PUT replaces: every writable field must be sent."""
        user = get_or_404(User, user_id)
        data = valid_body(partial=False)
        user.name, user.email = data["name"], data["email"]
        commit_or_conflict("A user with this email")
        return jsonify(user.to_dict())

    @bp.patch("/users/<int:user_id>")
    def update_user(user_id: int) -> Response:
        """PATCH merges: only the fields sent change."""
        user = get_or_404(User, user_id)
        data = valid_body(partial=True)
        for field in USER_FIELDS:
            if field in data:
                setattr(user, field, data[field])
        commit_or_conflict("A user with this email")
        return jsonify(user.to_dict())

    @bp.delete("/users/<int:user_id>")
    def delete_user(user_id: int) -> tuple[str, int]:
        db.session.delete(get_or_404(User, user_id))
        db.session.commit()
        return "", 204

    return bp


def _orders_blueprint() -> Blueprint:
    bp = Blueprint("orders", __name__)

    @bp.get("/users/<int:user_id>/orders")
    def list_orders(user_id: int) -> Response:
        """A user's orders: ``?status`` filter, ``?sort``, ``?page``, ``?limit``."""
        get_or_404(User, user_id)
        page = int_param("page", 1, 1)
        limit = int_param("limit", 20, 1, MAX_LIMIT)
        order_by = sort_order(Order, ("id", "created_at", "total_cents", "status"))
        query = select(Order).where(Order.user_id == user_id).order_by(*order_by)
        if status := request.args.get("status"):
            if status not in ORDER_STATUSES:
                raise APIError(400, "Invalid query parameter 'status'", "INVALID_PARAMETER",
                               {"status": [f"must be one of {', '.join(ORDER_STATUSES)}"]})
            query = query.where(Order.status == status)
        orders = paginate(query, page, limit)
        return conditional(PaginatedResponse(orders.items, page, limit, orders.total).to_dict())

    @bp.get("/users/<int:user_id>/orders/<int:order_id>")
    def get_order(user_id: int, order_id: int) -> Response:
        order = db.session.get(Order, order_id)
        if order is None or order.user_id != user_id:
            raise APIError(404, f"Order {order_id} of user {user_id} not found")
        return conditional(order.to_dict())

    @bp.post("/users/<int:user_id>/orders")
    def create_order(user_id: int) -> tuple[Response, int, dict[str, str]]:
        get_or_404(User, user_id)
        data = json_object()
        errors: dict[str, list[str]] = {
            field: ["Unknown field"] for field in data if field not in ("item", "quantity")
        }
        item, quantity = data.get("item"), data.get("quantity", 1)
        if not isinstance(item, str) or item not in CATALOG:
            errors["item"] = [f"Item must be one of {', '.join(CATALOG)}"]
        if type(quantity) is not int or not 1 <= quantity <= 1000:
            errors["quantity"] = ["Quantity must be a whole number from 1 to 1000"]
        if errors:
            raise APIError(422, "Validation failed", details=errors)
        order = Order(user_id=user_id, item=item, quantity=quantity,
                      total_cents=CATALOG[str(item)] * quantity)
        db.session.add(order)
        db.session.commit()
        location = url_for("orders.get_order", user_id=user_id, order_id=order.id)
        return jsonify(order.to_dict()), 201, {"Location": location}

    return bp


def _posts_blueprint(posts_page: Callable[..., list[Post]]) -> Blueprint:
    bp = Blueprint("posts", __name__)

    @bp.get("/posts")
    def list_posts() -> Response:
        """Newest first, keyset-paginated: follow ``next_cursor`` until it is null."""
        limit = int_param("limit", 20, 1, MAX_LIMIT)
        after = None
        if cursor := request.args.get("cursor"):
            try:
                after = decode_cursor(cursor)
            except ValueError as exc:
                raise APIError(400, "Invalid query parameter 'cursor'", "INVALID_PARAMETER",
                               {"cursor": [str(exc)]}) from None
        posts = posts_page(after, limit)
        last = posts[-1] if len(posts) == limit else None
        next_cursor = encode_cursor(last.created_at, last.id) if last else None
        return conditional({"data": [p.to_dict() for p in posts], "next_cursor": next_cursor})

    @bp.get("/posts/<int:post_id>")
    def get_post(post_id: int) -> Response:
        return conditional(get_or_404(Post, post_id).to_dict())

    @bp.get("/posts/<int:post_id>/comments")
    def list_comments(post_id: int) -> Response:
        get_or_404(Post, post_id)
        query = select(Comment).where(Comment.post_id == post_id).order_by(Comment.id)
        return conditional({"data": [c.to_dict() for c in db.session.scalars(query)]})

    return bp


def _versioned_blueprint() -> Blueprint:
    """v2 by URL (``/api/v2/users``), and both versions by header or query parameter."""
    bp = Blueprint("versions", __name__)

    def users_page(version: int) -> dict[str, Any]:
        page = int_param("page", 1, 1)
        limit = int_param("limit", 10, 1, MAX_LIMIT)
        users = paginate(select(User).order_by(User.id), page, limit)
        if version == 1:
            return {"users": [u.to_dict_v1() for u in users.items],
                    "pagination": {"page": page, "pages": users.pages, "total": users.total}}
        return PaginatedResponse(users.items, page, limit, users.total, "to_dict_v2").to_dict()

    def user_doc(version: int, user_id: int) -> dict[str, Any]:
        user = get_or_404(User, user_id)
        return user.to_dict_v1() if version == 1 else user.to_dict_v2()

    @bp.get("/api/v2/users")
    def list_users_v2() -> Response:
        return conditional(users_page(2))

    @bp.get("/api/v2/users/<int:user_id>")
    def get_user_v2(user_id: int) -> Response:
        return conditional(user_doc(2, user_id))

    def negotiated_version() -> int:
        match = VENDOR_MEDIA_TYPE.search(request.headers.get("Accept", ""))
        raw = match.group(1) if match else request.args.get("version", "1")
        if not raw.isdigit() or int(raw) not in SUPPORTED_VERSIONS:
            raise APIError(406, f"API version {raw!r} is not supported", details={
                "supported": [f"application/vnd.myapi.v{v}+json" for v in SUPPORTED_VERSIONS]})
        return int(raw)

    def vendor_response(version: int, payload: Any) -> Response:
        response = conditional(payload)
        response.mimetype = f"application/vnd.myapi.v{version}+json"
        response.vary.add("Accept")
        return response

    @bp.get("/api/users")
    def list_users_negotiated() -> Response:
        version = negotiated_version()
        return vendor_response(version, users_page(version))

    @bp.get("/api/users/<int:user_id>")
    def get_user_negotiated(user_id: int) -> Response:
        version = negotiated_version()
        return vendor_response(version, user_doc(version, user_id))

    return bp


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
