"""Exercises of notebooks/01-rest.ipynb, each checked through a live REST server."""

from __future__ import annotations

import datetime as dt
import re

import requests
from flask import request as incoming
from sqlalchemy import select

from ... import database
from ...api_errors import APIError
from ...database import Post, User, db, utcnow
from ...engine import NotAttempted, Unmet, cases, exercise, expect
from ...harness import ServerHandle, serve_wsgi
from ...ratelimit import TokenBucket
from . import server as rest

NOTEBOOK = "01-rest"


# --- 1. every page of a collection ------------------------------------------

def every_user(users_url: str, params: dict[str, str | int]) -> list[dict]:
    """Every user the collection at ``users_url`` lists for ``params`` (a filter, a sort, a
    ``limit``), in order: ``page=1, 2, ...`` up to the ``pagination.pages`` the API reports."""
    users: list[dict] = []
    page = 1
    while True:
        response = requests.get(users_url, params={**params, "page": page}, timeout=5)
        response.raise_for_status()
        body = response.json()
        users += body["users"]
        if page >= body["pagination"]["pages"]:
            return users
        page += 1


#: What the check asks ``every_user`` for: several pages, a filter and a sort, no match at all.
PAGE_WALKS: list[dict[str, str | int]] = [
    {"limit": 3},
    {"name": "an", "sort": "-created_at", "limit": 2},
    {"name": "nobody has this name", "limit": 5},
]


def _drawn_walk(draw) -> dict[str, str | int]:
    """A walk the learner has not seen: a limit, a sort and maybe a filter drawn at run time."""
    walk: dict[str, str | int] = {"limit": draw.randint(2, 9),
                                  "sort": draw.choice(["name", "-name", "email", "-created_at"])}
    if draw.random() < 0.5:
        walk["name"] = draw.choice(["a", "e", "o", "r"])
    return walk


def _recording_users_server(asked: list[dict[str, str]],
                            failing: dict[str, int] | None = None) -> ServerHandle:
    """The lab's API on the learner's current data, noting the query string of every
    request to the users collection; ``failing`` maps a page number to the status it
    answers instead (a server error mid-walk)."""
    database.ready(False)
    app = rest.create_app(rate_limit=None)

    def note() -> None:
        if incoming.path == "/api/v1/users":
            asked.append(incoming.args.to_dict())
            status = (failing or {}).get(incoming.args.get("page", "1"))
            if status:
                raise APIError(status, "the server failed (the check made it fail)")

    app.before_request(note)
    return serve_wsgi("rest-check", app)


def _listed(users_url: str, params: dict[str, str | int]) -> list[int]:
    """The ids the collection lists for ``params``, read 100 a page (the truth to compare)."""
    ids: list[int] = []
    page = 1
    while True:
        query = {**params, "limit": rest.MAX_LIMIT, "page": page}
        body = requests.get(users_url, params=query, timeout=5).json()
        ids += [user["id"] for user in body["users"]]
        if page >= body["pagination"]["pages"]:
            return ids
        page += 1


def _short(value: object) -> str:
    """A returned value, shortened for a message."""
    text = repr(value)
    if isinstance(value, list):
        text = f"a list of {len(value)}"
    return text if len(text) < 80 else text[:77] + "..."


def _query_text(query: dict) -> str:
    return "&".join(f"{key}={value}" for key, value in query.items())


def _check_walk(every_user, users_url: str, params: dict[str, str | int],
                asked: list[dict[str, str]]) -> None:
    shown = _query_text(params)
    truth = _listed(users_url, params)
    pages = -(-len(truth) // int(params["limit"]))
    asked.clear()
    got = every_user(users_url, dict(params))
    if got is None:
        raise NotAttempted("every_user returns None")
    expect(isinstance(got, list), f"return a list of users (dicts), got {type(got).__name__}")
    ids = [user.get("id") if isinstance(user, dict) else user for user in got]
    for query in asked:
        expect(all(query.get(key) == str(value) for key, value in params.items()),
               f"you were given {shown}, but asked the API for {_query_text(query)}: send the "
               "params on every page (they say which users, in what order, how many a page)")
    twice = sorted({id for id in ids if ids.count(id) > 1}, key=ids.index)
    expect(not twice, f"with {shown} these users came more than once: {twice}; each request "
                      "must ask for the next page (page=2, 3, ...)")
    asked_pages = {query.get("page", "1") for query in asked}
    unasked = [page for page in range(1, pages + 1) if str(page) not in asked_pages]
    expect(len(ids) == len(truth),
           f"with {shown} the API lists {len(truth)} users on {pages} pages; you returned "
           f"{len(ids)}" + (f" and never asked for page {unasked[0]}" if unasked else "")
           + ": follow page=2, 3, ... up to pagination.pages")
    expect(ids == truth, f"with {shown} the users should come in the order of the pages: "
                         f"{truth[:6]}..., got {ids[:6]}...")


@exercise(
    "rest.every-page",
    title="Walk every page of a collection: ?page= up to pagination.pages",
    notebook=NOTEBOOK,
    hints=[
        "requests.get(users_url, params={**params, \"page\": page}, timeout=5) asks for one page "
        "with the filter, sort and limit you were given.",
        "Each answer says how many pages there are: body[\"pagination\"][\"pages\"]. Stop "
        "after that page (with no match at all, it is 0).",
        "response.raise_for_status() turns a 4xx or 5xx answer into an exception: an error is "
        "not an empty page.",
    ],
    reference=every_user,
)
def check_every_page(every_user):
    asked: list[dict[str, str]] = []
    failing: dict[str, int] = {}
    draw = cases()
    with _recording_users_server(asked, failing) as server:
        users_url = f"{server.url}/api/v1/users"
        for params in [*PAGE_WALKS, _drawn_walk(draw), _drawn_walk(draw)]:
            _check_walk(every_user, users_url, params, asked)
        asked.clear()
        try:
            returned, raised = every_user(users_url, {"limit": 0}), None
        except Exception as exc:
            returned, raised = None, exc
        expect(not isinstance(raised, KeyError | TypeError | IndexError),
               f"with limit=0 the API answers 400 Bad Request, and your code raised "
               f"{type(raised).__name__} reading its body: check the status (or call "
               "response.raise_for_status()) before reading a page")
        expect(raised is not None, f"with limit=0 the API answers 400 Bad Request, an error, not a "
                                   f"page; you returned {returned!r}: raise it "
                                   "(response.raise_for_status())")
        expect(len(asked) == 1, f"with limit=0 the API answers 400 Bad Request and you asked "
                                f"{len(asked)} times: a 400 says the request is wrong, and the "
                                "same request will be refused again; raise it, don't retry it")
        failing["2"] = 503
        try:
            returned, raised = every_user(users_url, {"limit": 4}), None
        except Exception as exc:
            returned, raised = None, exc
        failing.clear()
        expect(not isinstance(raised, KeyError | TypeError | IndexError),
               f"with limit=4, page 2 answered 503 Service Unavailable and your code raised "
               f"{type(raised).__name__} reading its body: a 5xx is an error too; check the "
               "status of every page (response.raise_for_status()) before reading it")
        expect(raised is not None,
               "with limit=4, page 2 answered 503 Service Unavailable (a server error) and you "
               f"returned {_short(returned)}: an error mid-walk is not the end of the list; "
               "raise it (response.raise_for_status())")
    return "every page followed with your params, the users in order, a 400 and a 503 raised"


# --- 2. conditional GET ----------------------------------------------------

def fetch_if_changed(url: str, etag: str | None) -> tuple[int, str | None, dict | None]:
    """GET ``url``, revalidating ``etag``: (status, etag, body), body None on 304."""
    headers = {"If-None-Match": etag} if etag else {}
    response = requests.get(url, headers=headers, timeout=5)
    if response.status_code == 304:
        return 304, etag, None
    return response.status_code, response.headers.get("ETag"), response.json()


#: The users the notebook's cells fetch: a check draws others, so an answer fitted to them fails.
SHOWN_USERS = (101, 102)


@exercise(
    "rest.conditional-get",
    title="Revalidate with If-None-Match and handle 304 Not Modified",
    notebook=NOTEBOOK,
    hints=[
        "Send the ETag you have in the If-None-Match request header.",
        "A 304 has no body: return None as the body and keep the ETag you already had.",
        "On a 200, the new ETag is in response.headers['ETag'].",
    ],
    reference=fetch_if_changed,
)
def check_conditional_get(fetch_if_changed):
    database.ready(False)
    draw = cases()
    ids = sorted(db.session.scalars(select(User.id)))
    db.session.remove()
    user_id = draw.choice([id for id in ids if id not in SHOWN_USERS])
    sent: list[str | None] = []
    failing: list[int] = []
    app = rest.create_app(rate_limit=None)

    def note() -> None:
        if incoming.path == f"/api/v1/users/{user_id}":
            sent.append(incoming.headers.get("If-None-Match"))
            if failing and incoming.method == "GET":
                raise APIError(failing[0], "the server failed (the check made it fail)")

    app.before_request(note)
    with serve_wsgi("rest-check", app) as server:
        url = f"{server.url}/api/v1/users/{user_id}"
        original = requests.get(url, timeout=5)
        current, name = original.headers["ETag"], original.json()["name"]
        sent.clear()
        first = fetch_if_changed(url, None)
        if first is None:
            raise NotAttempted("fetch_if_changed returns None")
        expect(isinstance(first, tuple) and len(first) == 3,
               f"return a tuple (status, etag, body); got {first!r}")
        status, etag, body = first
        expect(status == 200, f"a first GET of user {user_id} (no ETag yet) should be 200, "
                              f"got {status}")
        expect(etag == current, f"the 200 carried ETag {current}; you returned {etag!r}")
        expect(isinstance(body, dict) and body.get("id") == user_id,
               f"the body of a 200 should be user {user_id} as a dict, got {body!r}")
        sent.clear()
        status, etag, body = fetch_if_changed(url, current)
        expect(sent, f"fetch_if_changed(url, {current!r}) never asked the server")
        expect(current in sent,
               f"the server saw your request(s) with If-None-Match {sent}, never {current!r}: "
               "revalidate by sending the ETag you hold; a 304 you make up yourself saves "
               "nothing, the server must say it")
        expect(status == 304,
               f"sent If-None-Match with the current ETag, expected 304, got {status}")
        expect(body is None, f"a 304 has no body: return None as the body, got {body!r}")
        expect(etag == current, f"after a 304 your copy is still valid: return its ETag "
                                f"{current}, got {etag!r}")
        failed = draw.choice([500, 502, 503])
        failing.append(failed)
        try:
            answer, raised = fetch_if_changed(url, current), None
        except Exception as exc:
            answer, raised = None, exc
        finally:
            failing.clear()
        expect(raised is not None or (isinstance(answer, tuple) and answer[:1] == (failed,)),
               f"revalidating, the server answered {failed} (an error, the check made it fail) "
               f"and you returned {answer!r}: only a 304 means your copy is still valid; "
               f"return the {failed} or raise it, never report an error as Not Modified")
        renamed = f"{name} ({draw.randrange(100, 999)})"
        requests.patch(url, json={"name": renamed}, timeout=5)
        try:
            sent.clear()
            status, etag, body = fetch_if_changed(url, current)
        finally:
            requests.patch(url, json={"name": name}, timeout=5)
        expect(current in sent, f"after the change the server saw If-None-Match {sent}, "
                                f"never {current!r}: send the ETag you hold every time")
        expect(status == 200, f"after user {user_id} changed, If-None-Match with the old ETag "
                              f"should give 200, got {status}")
        expect(etag not in (None, current), f"after a change the ETag is new; got {etag!r}")
        expect(isinstance(body, dict) and body.get("name") == renamed,
               f"after a change return the new body (name {renamed!r}), got {body!r}")
    return (f"user {user_id}: 200 with ETag, If-None-Match seen by the server and 304 on a "
            "match, 200 with a new ETag after a change")


# --- 3. validation with 422 -------------------------------------------------

def validate_user(data: dict, partial: bool = False) -> dict[str, list[str]]:
    """Field errors of a user body, in the document's ``details`` format.

    A full body (POST, PUT) needs ``name`` and ``email``; a partial one (PATCH)
    may leave either out. Fields other than those are refused, so a client
    cannot set ``id`` or ``role`` (mass assignment). The lab server checks the
    same rules with a schema (``rest.UserBody``), the one its contract publishes.
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


_INVALID_BODIES = [
    ({}, ["name", "email"], "an empty body"),
    ({"name": "", "email": "eve@example.com"}, ["name"], "an empty name"),
    ({"name": 42, "email": "eve@example.com"}, ["name"], "a name that is a number"),
    ({"name": "Eve", "email": "not-an-email"}, ["email"], "an email without @"),
    ({"name": "Eve", "email": None}, ["email"], "a null email"),
    ({"name": "Eve", "email": "eve@example.com", "role": "admin"}, ["role"],
     "an extra field 'role' (mass assignment)"),
]


def _drawn_bodies(draw) -> list[tuple[dict, list[str], str]]:
    """Bad bodies the learner has not seen: loose email checks, blank names, other fields."""
    local = draw.choice(["eve", "zoë", "o.brien", "x"])
    emails = [f"{local}@example", f"{local} @example.com", f"{local}@@example.com",
              f"{local}@exa mple.com", f"@{local}.com"]
    extra = draw.choice(["id", "role", "is_admin", "created_at", "password_hash"])
    return [
        ({"name": "Eve", "email": draw.choice(emails)}, ["email"],
         "an email that is not of the form name@domain.tld"),
        ({"name": draw.choice([" ", "   ", "\t", "\u3000"]), "email": "eve@example.com"},
         ["name"], "a name of only whitespace"),
        ({"name": "E" * draw.randint(101, 140), "email": "eve@example.com"}, ["name"],
         "a name longer than 100 characters"),
        ({"name": "Eve", "email": "eve@example.com", extra: draw.choice([1, "x", True])},
         [extra], f"an extra field {extra!r} (mass assignment)"),
        ({"name": "Eve", "email": "e" * draw.randint(250, 300) + "@example.com"}, ["email"],
         "an email longer than 255 characters"),
    ]


def _user_count(base: str) -> int:
    return requests.get(f"{base}/api/v1/users", timeout=5).json()["pagination"]["total"]


def _delete_users_not_in(existing: set[int]) -> None:
    """Undo what a check created, so the learner's data stays as it was."""
    for user in db.session.scalars(select(User).where(User.id.not_in(existing))):
        db.session.delete(user)
    db.session.commit()
    db.session.remove()


def _check_validation_through(base: str, draw) -> None:
    users = f"{base}/api/v1/users"
    before = _user_count(base)
    for body, fields, what in [*_INVALID_BODIES, *_drawn_bodies(draw)]:
        response = requests.post(users, json=body, timeout=5)
        expect(response.status_code == 422,
               f"POST with {what} {body!r} answered {response.status_code}, expected 422")
        details = response.json()["error"]["details"]
        missing = [f for f in fields if f not in details]
        expect(not missing, f"POST with {what}: the 422 details should name {missing}, "
                            f"got {details!r}")
    expect(_user_count(base) == before, "a rejected POST must create nothing")
    for valid in ({"name": "Eve", "email": "eve@example.com"},
                  {"name": draw.choice(["Zoë Ångström", "李小龍", "O'Brien-Smith"]),
                   "email": f"u{draw.randrange(10**6)}@mail.example.org"},
                  {"name": "N" * 100, "email": f"n{draw.randrange(10**6)}@example.net"}):
        created = requests.post(users, json=valid, timeout=5)
        expect(created.status_code == 201,
               f"a valid POST {valid!r} should be 201, got {created.status_code}: "
               f"{created.text[:200]}")
    patched = requests.patch(f"{users}/103", json={"name": "Grace B. Hopper"}, timeout=5)
    requests.patch(f"{users}/103", json={"name": "Grace Hopper"}, timeout=5)
    expect(patched.status_code == 200,
           f"PATCH with only a name answered {patched.status_code}: with partial=True a "
           "missing email is fine")
    bad_patch = requests.patch(f"{users}/103", json={"email": "nope"}, timeout=5)
    expect(bad_patch.status_code == 422,
           f"PATCH with email 'nope' answered {bad_patch.status_code}, expected 422")
    extra = draw.choice(["role", "id", "is_admin", "password_hash"])
    sneaky = requests.patch(f"{users}/103", json={extra: draw.choice(["admin", 1, True])},
                            timeout=5)
    expect(sneaky.status_code == 422,
           f"PATCH with only {extra!r} answered {sneaky.status_code}, expected 422: partial=True "
           "lets a field be left out, not an unknown field in (mass assignment through PATCH)")


@exercise(
    "rest.validation",
    title="Validate a body: 422 with the document's error details",
    notebook=NOTEBOOK,
    hints=[
        "Return a dict from field name to a list of messages; an empty dict means valid.",
        "Check types, not just presence: a name must be a non-empty string, an email must "
        "contain an @ and a dot.",
        "Refuse any field that is not name or email: that is what stops mass assignment.",
        "With partial=True (PATCH), a missing field is fine; a present one must still be valid.",
    ],
    reference=validate_user,
)
def check_validation(validate_user):
    if validate_user({}) is None:
        raise NotAttempted("validate_user returns None")
    database.ready(False)
    draw = cases()
    existing = set(db.session.scalars(select(User.id)))
    db.session.remove()
    try:
        with rest.start(name="rest-check", fresh_data=False, validator=validate_user) as server:
            _check_validation_through(server.url, draw)
    finally:
        _delete_users_not_in(existing)
    count = len(_INVALID_BODIES) + 5
    return f"{count} bad bodies refused with 422, valid POSTs and PATCH accepted"


# --- 4. keyset pagination ---------------------------------------------------

def _walk(base: str, limit: int, between_pages=None) -> list[int]:
    seen: list[int] = []
    cursor = None
    for page in range(200):
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = requests.get(f"{base}/api/v1/posts", params=params, timeout=5)
        expect(response.status_code == 200,
               f"GET /api/v1/posts answered {response.status_code}: {response.text[:200]}")
        body = response.json()
        expect(len(body["data"]) <= limit,
               f"asked for {limit} posts a page, got {len(body['data'])}")
        seen += [post["id"] for post in body["data"]]
        if page == 0 and between_pages is not None:
            between_pages()
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise Unmet("the pages never ended: does `after` move forward?")


@exercise(
    "rest.keyset",
    title="Keyset pagination that skips nothing when timestamps tie",
    notebook=NOTEBOOK,
    hints=[
        "Order by created_at descending, then id descending, so the order is total.",
        "The next page starts strictly after the last post seen: an older created_at, or the "
        "same created_at and a smaller id.",
        "sqlalchemy's or_(...) and and_(...) build that condition; .limit(limit) the query.",
    ],
    reference=rest.newest_posts,
)
def check_keyset(newest_posts):
    database.ready(False)
    if newest_posts(None, 3) is None:
        raise NotAttempted("newest_posts returns None")
    db.session.remove()
    backdated = _backdate_posts(cases())
    try:
        _check_keyset_pages(newest_posts, backdated)
    finally:
        database.delete_posts(backdated)
    return ("no post skipped or repeated with limits 7, 5 and 1, with ids that do not follow "
            "the timestamps, nor when a post arrives mid-walk")


def _backdate_posts(draw) -> list[int]:
    """Posts added now but dated in the past, some tying with existing posts: their ids do
    not follow their timestamps, as in any real table (imports, edits, clock skew)."""
    stamps = sorted(set(db.session.scalars(select(Post.created_at))))
    added = []
    for _ in range(draw.randint(4, 8)):
        moment = draw.choice(stamps)
        if draw.random() < 0.4:
            moment -= dt.timedelta(minutes=draw.randint(1, 59))
        added.append(Post(title="Backdated", content="Imported from an older system",
                          author_id=101, created_at=moment))
    db.session.add_all(added)
    db.session.commit()
    ids = [post.id for post in added]
    db.session.remove()
    return ids


def _check_keyset_pages(newest_posts, backdated: list[int]) -> None:
    truth = list(db.session.scalars(
        select(Post.id).order_by(Post.created_at.desc(), Post.id.desc())))
    db.session.remove()
    with rest.start(name="rest-check", fresh_data=False, posts_page=newest_posts) as server:
        first = _walk(server.url, 7)[:7]
        expect(first == truth[:7], f"the first page should be the 7 newest posts {truth[:7]}, "
                                   f"got {first} (posts {backdated} were added with older "
                                   "timestamps: ids do not follow created_at)")
        for limit in (7, 5, 1):
            seen = _walk(server.url, limit)
            repeated = sorted({i for i in seen if seen.count(i) > 1})
            skipped = [i for i in truth if i not in seen]
            expect(not repeated, f"with limit={limit} these posts came twice: {repeated}")
            expect(not skipped, f"with limit={limit} these posts were skipped: {skipped} "
                                "(they share created_at with the last post of a page?)")
            wrong = next((n for n, (a, b) in enumerate(zip(seen, truth, strict=False)) if a != b),
                         0)
            expect(seen == truth, f"with limit={limit} the order should be newest first "
                                  f"(created_at, then id): from position {wrong} "
                                  f"{truth[wrong:wrong + 6]}..., got {seen[wrong:wrong + 6]}... "
                                  f"(posts {backdated} were added with older timestamps: ids "
                                  "do not follow created_at)")
        new_ids: list[int] = []

        oldest = min(db.session.scalars(select(Post.created_at)))
        db.session.remove()

        def publish() -> None:
            posts = [Post(title="Breaking", content="A post published mid-walk",
                          author_id=101, created_at=utcnow()),
                     Post(title="Archived", content="An old post imported mid-walk",
                          author_id=101, created_at=oldest - dt.timedelta(minutes=1))]
            db.session.add_all(posts)
            db.session.commit()
            new_ids.extend(post.id for post in posts)
            db.session.remove()

        try:
            seen = _walk(server.url, 7, between_pages=publish)
        finally:
            database.delete_posts(new_ids)
        expect(seen[:len(truth)] == truth, "a post published while a client read page 1 "
                                           "changed the later pages; keyset pages must not shift")
        expect(seen[len(truth):] == new_ids[1:],
               f"while a client read page 1, post {new_ids[1]} was imported with the oldest "
               f"timestamp of all, so it belongs on the last page; the walk ended with "
               f"{seen[len(truth):] or 'nothing after the posts that were there'}: each page "
               "must be read from the table when it is asked for (a list kept from an earlier "
               "call is stale)")


# --- 5. a token-bucket rate limiter -----------------------------------------

def _check_drawn_bucket(TokenBucket, draw) -> None:
    """A capacity, a rate and a clock the learner has not seen; two buckets side by side."""
    capacity, rate = draw.randint(2, 6), draw.choice([0.25, 0.5, 2.0, 4.0])
    start = draw.uniform(1_000.0, 90_000.0)
    case = f"TokenBucket({capacity}, {rate}) from t={start:.1f}"
    bucket, other = TokenBucket(capacity, rate), TokenBucket(capacity, rate)
    waits = [bucket.take(start) for _ in range(capacity + 1)]
    expect(waits[:capacity] == [0] * capacity and waits[capacity] is not None
           and abs(waits[capacity] - 1 / rate) < 0.01,
           f"{case}: {capacity + 1} requests at once should wait {[0] * capacity} then "
           f"{1 / rate:g} s (one token takes 1/rate s), got {waits}")
    expect(other.take(start) == 0,
           f"{case}: draining one bucket emptied another (the second bucket's first request "
           "had to wait): keep the tokens on the instance (self.tokens), not on the class or "
           "in a module-level variable; each client has its own bucket")
    half = bucket.take(start + 0.5 / rate)
    expect(half is not None and abs(half - 0.5 / rate) < 0.01,
           f"{case}: {0.5 / rate:g} s later half a token has come back, so the wait is "
           f"{0.5 / rate:g} s, got {half}: refill (now - last) * rate tokens")
    expect(bucket.take(start + 1 / rate) == 0,
           f"{case}: {1 / rate:g} s after draining, one token is back: a request should pass")
    again = bucket.take(start + 1 / rate)
    expect(again is not None and abs(again - 1 / rate) < 0.01,
           f"{case}: {1 / rate:g} s after draining one token came back and was just spent, so "
           f"the next request at that instant waits {1 / rate:g} s, got {again}: the time of a "
           "refused request counts too (update `last` on every take), or the refill is "
           "counted twice and the client gets more than `rate` requests a second")


@exercise(
    "rest.rate-limit",
    title="A token bucket behind 429 Too Many Requests and Retry-After",
    notebook=NOTEBOOK,
    hints=[
        "Keep a float of tokens (start full) and the time you last looked.",
        "On each take(now): add (now - last) * rate tokens, but never more than capacity.",
        "If a whole token is there, spend it and return 0.0; otherwise spend nothing and "
        "return (1 - tokens) / rate, the seconds until one is.",
    ],
    reference=TokenBucket,
)
def check_rate_limit(TokenBucket):
    bucket = TokenBucket(3, 1.0)
    waits = [bucket.take(0.0) for _ in range(4)]
    if waits == [None] * 4:
        raise NotAttempted("take returns None")
    expect(waits[:3] == [0, 0, 0], f"a full bucket of 3 should allow 3 requests at once; "
                                   f"take(0.0) three times gave {waits[:3]}")
    expect(0.99 <= waits[3] <= 1.01, f"the 4th request at the same instant should wait 1.0 s "
                                     f"(1 token/s), got {waits[3]}")
    half = bucket.take(0.5)
    expect(0.49 <= half <= 0.51, f"half a second later the wait is 0.5 s, got {half}")
    expect(bucket.take(1.0) == 0, "one second after draining, at 1 token/s, a request "
                                  "should pass")
    burst = [bucket.take(100.0) for _ in range(4)]
    expect(burst[:3] == [0, 0, 0] and burst[3] > 0,
           f"after a long idle time the bucket holds at most capacity=3 tokens: 4 requests "
           f"at t=100 gave waits {burst}")
    _check_drawn_bucket(TokenBucket, cases())
    with rest.start(name="rest-check", fresh_data=False, rate_limit=(2, 60),
                    bucket=TokenBucket) as server:
        url = f"{server.url}/api/v1/users/101"
        statuses = [requests.get(url, timeout=5) for _ in range(3)]
        codes = [r.status_code for r in statuses]
        expect(codes == [200, 200, 429], f"with 2 requests per minute, 3 quick GETs should "
                                         f"give [200, 200, 429], got {codes}")
        retry_after = statuses[2].headers.get("Retry-After")
        expect(retry_after == "30", f"Retry-After should say 30 (one token per 30 s), "
                                    f"got {retry_after!r}")
    return "bursts up to capacity, refills at rate, 429 with Retry-After on the live server"
