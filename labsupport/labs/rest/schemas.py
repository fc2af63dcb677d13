"""The REST lab's contract: marshmallow schemas for what clients send and get back.

The user body (:class:`~labsupport.users.UserBody`) is the user model's own, shared
with the GraphQL and gRPC labs.

The server validates query strings and bodies with these schemas, and
``/openapi.json`` is generated from the very same classes (apispec), so the
document and the validation cannot disagree. Messages are the document's
``details`` format: ``{"email": ["Email is required"]}``.
"""

from __future__ import annotations

from marshmallow import EXCLUDE, RAISE, Schema, fields, validate

from ...database import CATALOG
from ...openapi import JsonInteger, Pattern, QueryInteger

MAX_LIMIT = 100
MAX_PAGE = 1_000_000
ORDER_STATUSES = ("pending", "paid", "shipped", "delivered")
SUPPORTED_VERSIONS = (1, 2)

def whole_number(low: int, high: int, default: int) -> QueryInteger:
    """A bounded integer query parameter whose error says what is allowed."""
    message = f"must be a whole number from {low} to {high}"
    return QueryInteger(
        load_default=default, validate=validate.Range(low, high, error=message + ", got {input}"),
        error_messages={"invalid": message})


def sort_by(*allowed: str) -> fields.String:
    """``?sort=name,-created_at``: allowed fields, ``-`` for descending, comma-separated."""
    one = f"-?(?:{'|'.join(allowed)})"
    return fields.String(
        load_default="id",
        validate=Pattern(f"^(?:{one}(?:,{one})*)?$",
                         error=f"can sort by {', '.join(allowed)}, '-' in front for descending; "
                               "got {input!r}"),
        metadata={"description": "Fields to sort by, comma-separated; '-' for descending; "
                                 "the id breaks ties."})


# --- query strings ------------------------------------------------------------

class Query(Schema):
    class Meta:
        unknown = EXCLUDE  # parameters the route does not know are ignored, as HTTP APIs do


class UsersQuery(Query):
    page = whole_number(1, MAX_PAGE, 1)
    limit = whole_number(1, MAX_LIMIT, 10)
    name = fields.String(
        validate=Pattern("^[^\\u0000]*$", error="must not contain a NUL character"),
        metadata={"description": "Only users whose name contains this, any case"})
    sort = sort_by("id", "name", "email", "created_at")


class OrdersQuery(Query):
    page = whole_number(1, MAX_PAGE, 1)
    limit = whole_number(1, MAX_LIMIT, 20)
    status = fields.String(validate=validate.OneOf(
        ORDER_STATUSES, error=f"must be one of {', '.join(ORDER_STATUSES)}"))
    sort = sort_by("id", "created_at", "total_cents", "status")


class PostsQuery(Query):
    limit = whole_number(1, MAX_LIMIT, 20)
    cursor = fields.String(metadata={
        "description": "The next_cursor of the previous page, passed back unread"})


class PageQuery(Query):
    page = whole_number(1, MAX_PAGE, 1)
    limit = whole_number(1, MAX_LIMIT, 10)


class VersionQuery(Query):
    version = QueryInteger(
        load_default=1, validate=validate.OneOf(SUPPORTED_VERSIONS, error="must be 1 or 2"),
        error_messages={"invalid": "must be 1 or 2"},
        metadata={"description": "The version, when Accept does not name one "
                                 "(application/vnd.myapi.v2+json)"})


class VersionedPageQuery(PageQuery, VersionQuery):
    pass


# --- bodies -------------------------------------------------------------------

class OrderBody(Schema):
    """An order: an item of the catalog, and how many (the price comes from the catalog)."""

    class Meta:
        unknown = RAISE

    error_messages = {"unknown": "Unknown field"}
    _item = f"Item must be one of {', '.join(CATALOG)}"
    _quantity = "Quantity must be a whole number from 1 to 1000"

    item = fields.String(
        required=True, validate=validate.OneOf(list(CATALOG), error=_item),
        error_messages={"required": _item, "invalid": _item, "null": _item})
    quantity = JsonInteger(
        load_default=1, validate=validate.Range(1, 1000, error=_quantity),
        error_messages={"invalid": _quantity, "null": _quantity})


# --- representations (what the server answers) ---------------------------------

class UserV1(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    email = fields.String(required=True)
    created_at = fields.DateTime(required=True)


class Address(Schema):
    street = fields.String(required=True)
    city = fields.String(required=True)
    country = fields.String(required=True)
    postal_code = fields.String(required=True)


class UserV2(UserV1):
    role = fields.String(required=True)
    tags = fields.List(fields.String(), required=True)
    address = fields.Nested(Address, required=True, allow_none=True)


class Order(Schema):
    id = fields.Integer(required=True)
    user_id = fields.Integer(required=True)
    item = fields.String(required=True, validate=validate.OneOf(list(CATALOG)))
    quantity = fields.Integer(required=True)
    total_cents = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(ORDER_STATUSES))
    created_at = fields.DateTime(required=True)


class Post(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    content = fields.String(required=True)
    author_id = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)


class Comment(Schema):
    id = fields.Integer(required=True)
    content = fields.String(required=True)
    author_id = fields.Integer(required=True)
    post_id = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)


class PageNumbers(Schema):
    page = fields.Integer(required=True)
    pages = fields.Integer(required=True)
    total = fields.Integer(required=True)


class Pagination(PageNumbers):
    per_page = fields.Integer(required=True)
    has_next = fields.Boolean(required=True)
    has_prev = fields.Boolean(required=True)


class UsersPage(Schema):
    """The document's first listing: ``users`` and ``pagination``."""

    users = fields.List(fields.Nested(UserV1), required=True)
    pagination = fields.Nested(PageNumbers, required=True)


class OrdersPage(Schema):
    """The document's ``PaginatedResponse`` envelope."""

    data = fields.List(fields.Nested(Order), required=True)
    pagination = fields.Nested(Pagination, required=True)


class UsersV2Page(Schema):
    data = fields.List(fields.Nested(UserV2), required=True)
    pagination = fields.Nested(Pagination, required=True)


class PostsPage(Schema):
    data = fields.List(fields.Nested(Post), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class Comments(Schema):
    data = fields.List(fields.Nested(Comment), required=True)
