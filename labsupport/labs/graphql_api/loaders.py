"""The GraphQL lab's DataLoaders: one query per batch instead of one per object (N+1)."""

from __future__ import annotations

from typing import Any

from aiodataloader import DataLoader
from sqlalchemy import select

from ...database import Comment, Post, User, db
from .schema import posts_bus

# --- DataLoader batch functions ----------------------------------------------

async def users_by_id(user_ids: list[int]) -> list[User | None]:
    """Batch function: the users with these ids, in the same order (None if missing)."""
    users = db.session.scalars(select(User).where(User.id.in_(user_ids)))
    by_id = {user.id: user for user in users}
    return [by_id.get(user_id) for user_id in user_ids]


async def posts_by_author(author_ids: list[int]) -> list[list[Post]]:
    """Batch function: for each author id, that author's posts, newest first (one query)."""
    query = (select(Post).where(Post.author_id.in_(author_ids))
             .order_by(Post.created_at.desc(), Post.id.desc()))
    grouped: dict[int, list[Post]] = {author_id: [] for author_id in author_ids}
    for post in db.session.scalars(query):
        grouped[post.author_id].append(post)
    return [grouped[author_id] for author_id in author_ids]


async def comments_by_post(post_ids: list[int]) -> list[list[Comment]]:
    """Batch function: for each post id, its comments in id order (one query)."""
    query = select(Comment).where(Comment.post_id.in_(post_ids)).order_by(Comment.id)
    grouped: dict[int, list[Comment]] = {post_id: [] for post_id in post_ids}
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
