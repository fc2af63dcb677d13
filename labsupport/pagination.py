"""Offset pagination (page numbers) and keyset pagination (opaque cursors)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select

from .database import db


@dataclass
class Page:
    """One page of an offset-paginated listing (what Flask-SQLAlchemy's ``paginate`` gives)."""

    items: list[Any]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return (self.total + self.per_page - 1) // self.per_page

    @property
    def has_next(self) -> bool:
        return self.page * self.per_page < self.total

    @property
    def has_prev(self) -> bool:
        return self.page > 1


def paginate(query: Any, page: int, per_page: int) -> Page:
    """Page ``page`` (from 1) of a ``select()`` or a legacy ``Model.query``."""
    offset = (page - 1) * per_page
    if isinstance(query, Select):
        counted = select(func.count()).select_from(query.order_by(None).subquery())
        total = db.session.scalar(counted) or 0
        items = list(db.session.scalars(query.offset(offset).limit(per_page)))
    else:
        total = query.order_by(None).count()
        items = query.offset(offset).limit(per_page).all()
    return Page(items, page, per_page, total)


class PaginatedResponse:
    """The document's offset-pagination envelope."""

    def __init__(self, items: list[Any], page: int, per_page: int, total: int,
                 to_dict: str = "to_dict") -> None:
        self.items = items
        self.page = page
        self.per_page = per_page
        self.total = total
        self.item_to_dict = to_dict

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": [getattr(item, self.item_to_dict)() for item in self.items],
            "pagination": {
                "page": self.page,
                "per_page": self.per_page,
                "total": self.total,
                "pages": (self.total + self.per_page - 1) // self.per_page,
                "has_next": self.page * self.per_page < self.total,
                "has_prev": self.page > 1,
            },
        }


def encode_cursor(created_at: dt.datetime, id: int) -> str:
    """An opaque cursor naming the last row a client has seen."""
    raw = f"{created_at.isoformat()}|{id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    """The ``(created_at, id)`` inside a cursor; ``ValueError`` if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, id = raw.partition("|")
        return dt.datetime.fromisoformat(moment), int(id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError(f"not a valid cursor: {cursor!r}") from None
