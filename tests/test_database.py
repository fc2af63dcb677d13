"""The shared sample data: deterministic, fresh on every reset, with ties on purpose."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import select

from labsupport import database
from labsupport.database import Order, Post, User, count_statements, db


def snapshot() -> list[tuple]:
    rows: list[tuple] = [(u.id, u.name, u.email, u.role, tuple(u.tags), u.created_at)
            for u in db.session.scalars(select(User).order_by(User.id))]
    rows += [(p.id, p.title, p.author_id, p.created_at)
             for p in db.session.scalars(select(Post).order_by(Post.id))]
    db.session.remove()
    return rows


def test_reset_gives_the_same_data_every_time():
    database.reset()
    first = snapshot()
    db.session.add(User(name="Extra", email="extra@example.com"))
    db.session.commit()
    db.session.remove()
    database.reset()
    assert snapshot() == first


def test_sample_has_the_documents_user_123_and_related_rows():
    database.reset()
    user = db.session.get(User, 123)
    assert user.name == "John Doe"
    assert user.address.city == "Anytown"
    assert {o.user_id for o in db.session.scalars(select(Order))} >= {123}
    db.session.remove()


def test_posts_share_timestamps_so_timestamp_cursors_break():
    database.reset()
    stamps = Counter(db.session.scalars(select(Post.created_at)))
    db.session.remove()
    assert max(stamps.values()) == 2
    assert sum(1 for n in stamps.values() if n == 2) == 19


def test_the_documents_flask_sqlalchemy_style_works():
    database.reset()
    assert User.query.filter_by(id=101).one().name == "Ada Lovelace"
    grace = User.query.filter_by(email="grace.hopper@example.com").first()
    assert grace is not None
    assert grace.id == 103
    db.session.remove()


def test_emails_are_unique_in_the_database():
    database.reset()
    db.session.add(User(name="Copy", email="ada.lovelace@example.com"))
    try:
        db.session.commit()
    except Exception as exc:
        assert "UNIQUE" in str(exc)
    else:
        raise AssertionError("a duplicate email was stored")
    finally:
        db.session.rollback()
        db.session.remove()


def test_count_statements_counts_sql():
    database.reset()
    with count_statements() as statements:
        users = db.session.scalars(select(User)).all()
        for user in users[:3]:
            _ = user.posts
    db.session.remove()
    assert len(statements) == 4


def test_emails_are_stored_in_one_canonical_form_whichever_lab_writes():
    database.reset()
    user = User(name="  Kathleen Booth ", email=" Kathleen@Example.COM ")
    db.session.add(user)
    db.session.commit()
    assert (user.name, user.email) == ("Kathleen Booth", "kathleen@example.com")
    db.session.add(User(name="Copy", email="ADA.LOVELACE@example.com"))
    try:
        db.session.commit()
    except Exception as exc:
        assert "UNIQUE" in str(exc)
    else:
        raise AssertionError("the same email in other letter case was stored twice")
    finally:
        db.session.rollback()
        db.session.remove()


def test_own_session_gives_each_operation_on_one_thread_its_own_session():
    thread_session = db.session()

    async def current():
        return db.session()

    async def operation():
        with database.own_session():
            mine = db.session()
            await asyncio.sleep(0)  # the other operation runs here
            started = await asyncio.create_task(current())
            assert db.session() is mine and started is mine  # tasks it starts share it
            return mine

    async def main():
        return await asyncio.gather(operation(), operation())

    first, second = asyncio.run(main())
    assert len({id(first), id(second), id(thread_session)}) == 3
    assert db.session() is thread_session
    db.session.remove()
