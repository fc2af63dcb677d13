"""The GraphQL lab's schema in graphene 3: types, queries, mutations that validate before they
write, and the ``postAdded`` subscription."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import graphene
from graphql import (
    GraphQLError,
)
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ... import database
from ...database import Order, Post, User, db
from ...users import validate_user
from .subscriptions import PostBus

MAX_LIMIT = 100
DEFAULT_LIMIT = 10

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


def apply_user_update(user: User, changes: dict) -> User:
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
