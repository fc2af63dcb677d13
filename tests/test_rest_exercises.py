"""Every exercise of 00-start-here and 01-rest: the reference passes, wrong answers fail."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from exercise_helpers import assert_fails, assert_fails_for_some_seed, assert_passes
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import and_, or_, select

from labsupport import database, rest
from labsupport.database import Post, db
from labsupport.engine import get
from labsupport.labs.rest.exercises import validate_user as hand_written_validator
from labsupport.ratelimit import TokenBucket


@pytest.fixture(autouse=True, scope="module")
def sample_data():
    database.reset()


# --- start.first-request ------------------------------------------------------

def test_first_request_reference_passes():
    assert_passes("start.first-request")


def test_first_request_stub_is_not_attempted():
    assert_fails("start.first-request", lambda base_url, user_id: None, "not solved yet")


def test_first_request_whole_body_fails():
    def whole_body(base_url, user_id):
        return requests.get(f"{base_url}/api/v1/users/{user_id}", timeout=5).json()

    assert_fails("start.first-request", whole_body, "got {'id': ")


def test_first_request_ignoring_404_fails():
    def no_status_check(base_url, user_id):
        return requests.get(f"{base_url}/api/v1/users/{user_id}", timeout=5).json()["name"]

    assert_fails("start.first-request", no_status_check, "raised KeyError")


def test_first_request_every_error_as_missing_fails():
    """Happy path only: a 500 or a refused connection read as "no such user"."""
    def swallows_everything(base_url, user_id):
        try:
            response = requests.get(f"{base_url}/api/v1/users/{user_id}", timeout=5)
            response.raise_for_status()
            return response.json()["name"]
        except Exception:
            return None

    assert_fails("start.first-request", swallows_everything,
                 "the server answered 500 (it failed; the user may well exist) and you "
                 "returned None: only a 404 means no such user")


def test_first_request_any_4xx_5xx_as_missing_fails():
    """Too loose a comparison: every status >= 400 taken for a 404."""
    def not_ok_is_missing(base_url, user_id):
        response = requests.get(f"{base_url}/api/v1/users/{user_id}", timeout=5)
        return response.json()["name"] if response.ok else None

    assert_fails("start.first-request", not_ok_is_missing, "only a 404 means no such user")


def test_first_request_network_error_as_missing_fails():
    def connection_error_is_missing(base_url, user_id):
        try:
            response = requests.get(f"{base_url}/api/v1/users/{user_id}", timeout=5)
        except requests.ConnectionError:
            return None
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()["name"]

    assert_fails("start.first-request", connection_error_is_missing,
                 "the connection is refused and you returned None")


def test_first_request_the_sample_user_only_fails():
    """Sample-only / constant: the one user the notebook shows, hard-coded."""
    def ada(base_url, user_id):
        requests.get(f"{base_url}/api/v1/users/{user_id}", timeout=5).raise_for_status()
        return "Ada Lovelace"

    assert_fails("start.first-request", ada, "should be")


# --- rest.every-page ----------------------------------------------------------

def test_every_page_reference_passes():
    assert_passes("rest.every-page")


def test_every_page_stub_is_not_attempted():
    assert_fails("rest.every-page", lambda users_url, params: None, "not solved yet")


def test_every_page_first_page_only_fails():
    def first_page(users_url, params):
        return requests.get(users_url, params=params, timeout=5).json()["users"]

    assert_fails("rest.every-page", first_page,
                 "with limit=3 the API lists 25 users on 9 pages; you returned 3 and never "
                 "asked for page 2")


def test_every_page_stopping_before_the_last_page_fails():
    def off_by_one(users_url, params):
        body = requests.get(users_url, params={**params, "page": 1}, timeout=5).json()
        users = body["users"]
        for page in range(2, body["pagination"]["pages"]):
            users += requests.get(users_url, params={**params, "page": page},
                                  timeout=5).json()["users"]
        return users

    assert_fails("rest.every-page", off_by_one, "you returned 24 and never asked for page 9")


def test_every_page_without_the_page_parameter_fails():
    def same_page_again(users_url, params):
        body = requests.get(users_url, params=params, timeout=5).json()
        users = []
        for _ in range(body["pagination"]["pages"]):
            users += requests.get(users_url, params=params, timeout=5).json()["users"]
        return users

    assert_fails("rest.every-page", same_page_again, "these users came more than once")


def test_every_page_with_its_own_limit_fails():
    reference = get("rest.every-page").reference

    def one_big_page(users_url, params):
        return reference(users_url, {**params, "limit": 100})

    assert_fails("rest.every-page", one_big_page,
                 "you were given limit=3, but asked the API for limit=100&page=1")


def test_every_page_taking_an_error_for_an_empty_page_fails():
    def stops_on_error(users_url, params):
        users: list[dict[str, Any]] = []
        page = 1
        while True:
            response = requests.get(users_url, params={**params, "page": page}, timeout=5)
            if not response.ok:
                return users
            body = response.json()
            users += body["users"]
            if page >= body["pagination"]["pages"]:
                return users
            page += 1

    assert_fails("rest.every-page", stops_on_error,
                 "with limit=0 the API answers 400 Bad Request, an error, not a page; you "
                 "returned []")


def test_every_page_reading_an_error_as_a_page_fails():
    def never_looks_at_the_status(users_url, params):
        users, page = [], 1
        while True:
            body = requests.get(users_url, params={**params, "page": page}, timeout=5).json()
            users += body["users"]
            if page >= body["pagination"]["pages"]:
                return users
            page += 1

    assert_fails("rest.every-page", never_looks_at_the_status,
                 "your code raised KeyError reading its body: check the status")


def test_every_page_stopping_at_any_error_fails():
    """Happy path only: a failed page taken for the end of the list (400 is handled, 503 not)."""
    def stops_on_server_error(users_url, params):
        users: list[dict[str, Any]] = []
        page = 1
        while True:
            response = requests.get(users_url, params={**params, "page": page}, timeout=5)
            if response.status_code >= 500:
                return users
            response.raise_for_status()
            body = response.json()
            users += body["users"]
            if page >= body["pagination"]["pages"]:
                return users
            page += 1

    assert_fails("rest.every-page", stops_on_server_error,
                 "page 2 answered 503 Service Unavailable (a server error) and you returned a "
                 "list of 4")


def test_every_page_fitted_to_the_notebooks_walks_fails():
    """Sample-only: pages counted as total // limit, which the shown walks happen to survive
    only when the limit divides the total; drawn limits find it."""
    import math

    def floor_pages(users_url, params):
        first = requests.get(users_url, params={**params, "page": 1}, timeout=5)
        first.raise_for_status()
        body = first.json()
        users = body["users"]
        pages = body["pagination"]["total"] // int(params["limit"])
        for page in range(2, pages + 1):
            users += requests.get(users_url, params={**params, "page": page},
                                  timeout=5).json()["users"]
        return users if params in ({"limit": 3}, {"name": "nobody has this name", "limit": 5}) \
            or math.ceil(body["pagination"]["total"] / int(params["limit"])) == pages else users

    assert_fails("rest.every-page", floor_pages, "and never asked for page")


def test_every_page_checking_only_client_errors_fails():
    """Happy path only: 4xx raised, but a 5xx page read as if it were a page (a KeyError)."""
    def client_errors_only(users_url, params):
        users: list[dict[str, Any]] = []
        page = 1
        while True:
            response = requests.get(users_url, params={**params, "page": page}, timeout=5)
            if 400 <= response.status_code < 500:
                raise ValueError(f"bad request: {response.status_code}")
            body = response.json()
            users += body["users"]
            if page >= body["pagination"]["pages"]:
                return users
            page += 1

    assert_fails("rest.every-page", client_errors_only,
                 "page 2 answered 503 Service Unavailable and your code raised KeyError")


def test_every_page_retrying_every_error_fails():
    """Retries of everything: a 400 asked again and again before it is raised."""
    def retries_all(users_url, params):
        users: list[dict[str, Any]] = []
        page = 1
        while True:
            for _ in range(3):
                response = requests.get(users_url, params={**params, "page": page}, timeout=5)
                if response.ok:
                    break
            response.raise_for_status()
            body = response.json()
            users += body["users"]
            if page >= body["pagination"]["pages"]:
                return users
            page += 1

    assert_fails("rest.every-page", retries_all, "you asked 3 times: a 400 says the request")


def test_every_page_stopping_at_an_empty_page_passes():
    """Asking for one page past the end, and stopping at its empty list, is a right answer."""
    def until_empty(users_url, params):
        users: list[dict[str, Any]] = []
        page = 1
        while True:
            response = requests.get(users_url, params={**params, "page": page}, timeout=5)
            response.raise_for_status()
            if not response.json()["users"]:
                return users
            users += response.json()["users"]
            page += 1

    assert_passes("rest.every-page", until_empty)


# --- rest.conditional-get -----------------------------------------------------

def test_conditional_get_reference_passes():
    assert_passes("rest.conditional-get")


def test_conditional_get_without_if_none_match_fails():
    def never_revalidates(url, etag):
        response = requests.get(url, timeout=5)
        return response.status_code, response.headers.get("ETag"), response.json()

    assert_fails("rest.conditional-get", never_revalidates,
                 "the server saw your request(s) with If-None-Match [None], never")


def test_conditional_get_wrong_header_fails():
    def uses_if_match(url, etag):
        response = requests.get(url, headers={"If-Match": etag} if etag else {}, timeout=5)
        return response.status_code, response.headers.get("ETag"), response.json()

    assert_fails("rest.conditional-get", uses_if_match, "with If-None-Match [None], never")


def test_conditional_get_body_on_304_fails():
    def returns_text_on_304(url, etag):
        response = requests.get(url, headers={"If-None-Match": etag or ""}, timeout=5)
        body = response.json() if response.status_code == 200 else response.text
        return response.status_code, response.headers.get("ETag"), body

    assert_fails("rest.conditional-get", returns_text_on_304, "a 304 has no body")


def test_conditional_get_faking_the_304_locally_fails():
    """Requirement skipped, outcome faked: no If-None-Match sent, the 304 made up locally."""
    def compares_locally(url, etag):
        response = requests.get(url, timeout=5)
        if etag is not None and response.headers.get("ETag") == etag:
            return 304, etag, None
        return response.status_code, response.headers.get("ETag"), response.json()

    assert_fails("rest.conditional-get", compares_locally,
                 "the server saw your request(s) with If-None-Match [None], never")


def test_conditional_get_unquoted_etag_fails():
    """Too loose: the ETag sent without its quotes never matches on the server."""
    def strips_quotes(url, etag):
        headers = {"If-None-Match": etag.strip('"')} if etag else {}
        response = requests.get(url, headers=headers, timeout=5)
        if response.status_code == 304:
            return 304, etag, None
        return response.status_code, response.headers.get("ETag"), response.json()

    assert_fails("rest.conditional-get", strips_quotes, "never '\"")


def test_conditional_get_fitted_to_user_102_fails():
    """Sample-only: the check's user is drawn at run time, not the notebook's 102."""
    def always_102(url, etag):
        url = re.sub(r"/users/\d+$", "/users/102", url)
        headers = {"If-None-Match": etag} if etag else {}
        response = requests.get(url, headers=headers, timeout=5)
        if response.status_code == 304:
            return 304, etag, None
        return response.status_code, response.headers.get("ETag"), response.json()

    assert_fails("rest.conditional-get", always_102, "the 200 carried ETag")


def test_conditional_get_server_error_read_as_not_modified_fails():
    """Happy path only: anything but a 200 taken for a 304, so an outage serves the stale copy
    as if the server had confirmed it."""
    def not_200_is_304(url, etag):
        headers = {"If-None-Match": etag} if etag else {}
        response = requests.get(url, headers=headers, timeout=5)
        if response.status_code != 200:
            return 304, etag, None
        return 200, response.headers.get("ETag"), response.json()

    assert_fails("rest.conditional-get", not_200_is_304,
                 "never report an error as Not Modified")


# --- rest.validation ----------------------------------------------------------

def test_validation_reference_passes():
    assert_passes("rest.validation")


def test_validation_presence_only_fails():
    def presence_only(data, partial=False):
        if partial:
            return {}
        return {f: [f"{f} is required"] for f in ("name", "email") if f not in data}

    assert_fails("rest.validation", presence_only, "with an empty name")


def test_validation_allowing_extra_fields_fails():
    def no_whitelist(data, partial=False):
        errors = rest.validate_user({k: v for k, v in data.items() if k != "role"}, partial)
        return errors

    assert_fails("rest.validation", no_whitelist, "mass assignment")


def test_validation_ignoring_partial_fails():
    def always_full(data, partial=False):
        return rest.validate_user(data, partial=False)

    assert_fails("rest.validation", always_full, "PATCH with only a name answered 422")


def test_validation_crashing_on_types_fails():
    def strips_blindly(data, partial=False):
        errors = {}
        if not data.get("name", "").strip():
            errors["name"] = ["required"]
        if "@" not in data.get("email", ""):
            errors["email"] = ["invalid"]
        return errors

    assert_fails("rest.validation", strips_blindly, "answered 500, expected 422")


def test_validation_at_sign_only_fails():
    """Too loose a comparison: "@" in email lets eve@example and "eve @x.com" through."""
    def at_sign_only(data, partial=False):
        errors = {f: ["Unknown field"] for f in data if f not in ("name", "email")}
        for field in ("name", "email"):
            if field not in data:
                if not partial:
                    errors[field] = ["required"]
                continue
            value = data[field]
            if not isinstance(value, str) or not value.strip() or len(value) > 100:
                errors[field] = ["invalid"]
        if isinstance(data.get("email"), str) and "@" not in data["email"]:
            errors["email"] = ["invalid"]
        return errors

    assert_fails("rest.validation", at_sign_only,
                 "an email that is not of the form name@domain.tld")


def test_validation_blank_names_accepted_fails():
    """Too loose: `if not name` lets a name of spaces through."""
    def no_strip(data, partial=False):
        errors = rest.validate_user(data, partial)
        if isinstance(data.get("name"), str) and data["name"] and not data["name"].strip():
            errors.pop("name", None)
        return errors

    assert_fails("rest.validation", no_strip, "a name of only whitespace")


def test_validation_refusing_only_the_shown_extra_fields_fails():
    """Sample-only: a blocklist of the fields the notebook shows, not an allowlist."""
    def blocklist(data, partial=False):
        known = {k: v for k, v in data.items() if k in ("name", "email")}
        errors = rest.validate_user(known, partial)
        errors.update({f: ["Not allowed"] for f in ("id", "role") if f in data})
        return errors

    assert_fails_for_some_seed("rest.validation", blocklist, "(mass assignment)")


def test_validation_allowlist_on_full_bodies_only_fails():
    """Skipped requirement: unknown fields refused on POST and PUT, but let through on PATCH
    (partial=True), so a client can still set any column one field at a time."""
    def allowlist_unless_partial(data, partial=False):
        errors = hand_written_validator(data, partial)
        if partial:
            errors = {field: messages for field, messages in errors.items()
                      if field in ("name", "email")}
        return errors

    assert_fails("rest.validation", allowlist_unless_partial, "(mass assignment through PATCH)")


def test_validation_without_the_email_length_limit_fails():
    """Skipped requirement: an email of any length is accepted."""
    def unbounded_email(data, partial=False):
        errors = hand_written_validator(data, partial)
        if errors.get("email") == ["Email must be at most 255 characters"]:
            del errors["email"]
        return errors

    assert_fails("rest.validation", unbounded_email, "an email longer than 255 characters")


bodies = st.dictionaries(
    st.sampled_from(["name", "email", "role", "id"]),
    st.none() | st.integers() | st.text(max_size=120) | st.emails().map(str)
    | st.sampled_from(["", " ", "\u3000", "a@b.c", " ada@x.org ", "x" * 101]),
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(body=bodies, partial=st.booleans())
def test_the_reference_solution_refuses_what_the_server_schema_refuses(body, partial):
    assert set(hand_written_validator(body, partial)) == set(rest.validate_user(body, partial))


# --- rest.keyset --------------------------------------------------------------

def test_keyset_reference_passes():
    assert_passes("rest.keyset")


def test_keyset_timestamp_only_cursor_fails():
    def timestamp_only(after, limit):
        query = select(Post).order_by(Post.created_at.desc(), Post.id.desc()).limit(limit)
        if after is not None:
            query = query.where(Post.created_at < after[0])
        return list(db.session.scalars(query))

    assert_fails("rest.keyset", timestamp_only, "these posts were skipped")


def test_keyset_inclusive_cursor_fails():
    def inclusive(after, limit):
        query = select(Post).order_by(Post.created_at.desc(), Post.id.desc()).limit(limit)
        if after is not None:
            query = query.where(Post.created_at <= after[0])
        return list(db.session.scalars(query))

    assert_fails("rest.keyset", inclusive, "came twice")


def test_keyset_oldest_first_fails():
    def oldest_first(after, limit):
        query = select(Post).order_by(Post.created_at, Post.id).limit(limit)
        if after is not None:
            created_at, id = after
            query = query.where(or_(Post.created_at > created_at,
                                    and_(Post.created_at == created_at, Post.id > id)))
        return list(db.session.scalars(query))

    assert_fails("rest.keyset", oldest_first, "the first page should be the 7 newest posts")


def test_keyset_by_id_alone_fails():
    """Sample-only: ordering and paging by id works only while ids follow the timestamps."""
    def by_id(after, limit):
        query = select(Post).order_by(Post.id.desc()).limit(limit)
        if after is not None:
            query = query.where(Post.id < after[1])
        return list(db.session.scalars(query))

    assert_fails("rest.keyset", by_id, "ids do not follow created_at")


def test_keyset_from_a_list_kept_across_calls_fails():
    """One-process state: the posts read once (on the first page) and later pages cut from
    that list, so a post written since is never seen."""
    kept: list[Post] = []

    def snapshot(after, limit):
        if after is None:
            kept[:] = db.session.scalars(select(Post).order_by(Post.created_at.desc(),
                                                               Post.id.desc()))
            return kept[:limit]
        start = next(n for n, post in enumerate(kept) if post.id == after[1]) + 1
        return kept[start:start + limit]

    assert_fails("rest.keyset", snapshot, "a list kept from an earlier call is stale")


def test_keyset_reference_passes_in_a_fresh_interpreter():
    """No lab started, no session bound: the check must set its data up itself."""
    import subprocess
    import sys
    code = ("from labsupport import check; from labsupport.engine import get; "
            "v = check('rest.keyset', get('rest.keyset').reference); print(v); "
            "assert v.passed")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr[-1000:]


# --- rest.rate-limit ----------------------------------------------------------

def test_rate_limit_reference_passes():
    assert_passes("rest.rate-limit")


class FixedCounter:
    """Counts requests and never refills: a plausible first attempt."""

    def __init__(self, capacity, rate):
        self.left, self.rate = capacity, rate

    def take(self, now):
        if self.left > 0:
            self.left -= 1
            return 0.0
        return 1 / self.rate


class Uncapped(TokenBucket):
    """Refills without the capacity cap."""

    def take(self, now):
        if self.updated is not None:
            self.tokens += (now - self.updated) * self.rate
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


def test_rate_limit_without_refill_fails():
    assert_fails("rest.rate-limit", FixedCounter, "half a second later the wait is 0.5 s")


def test_rate_limit_without_cap_fails():
    assert_fails("rest.rate-limit", Uncapped, "holds at most capacity=3 tokens")


class RateIgnored(TokenBucket):
    """Refills one token a second whatever the rate: right only at the notebook's rate 1.0."""

    def take(self, now):
        if self.updated is not None:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated))
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class SharedTokens:
    """One-process state: the tokens kept on the class, shared by every client's bucket."""

    tokens: float | None = None
    updated: float | None = None

    def __init__(self, capacity, rate):
        self.capacity, self.rate = capacity, rate
        if SharedTokens.tokens is None:
            SharedTokens.tokens = float(capacity)

    def take(self, now):
        cls = SharedTokens
        assert cls.tokens is not None  # the first bucket's __init__ filled it
        if cls.updated is not None:
            cls.tokens = min(self.capacity, cls.tokens + (now - cls.updated) * self.rate)
        cls.updated = now
        if cls.tokens >= 1:
            cls.tokens -= 1
            return 0.0
        return (1 - cls.tokens) / self.rate


def test_rate_limit_ignoring_the_rate_fails():
    assert_fails("rest.rate-limit", RateIgnored, "refill (now - last) * rate tokens")


def test_rate_limit_shared_by_every_bucket_fails():
    SharedTokens.tokens = SharedTokens.updated = None
    assert_fails("rest.rate-limit", SharedTokens, "draining one bucket emptied another")


def test_rate_limit_stub_is_not_attempted():
    class Stub:
        def __init__(self, capacity, rate):
            pass

        def take(self, now):
            ...

    assert_fails("rest.rate-limit", Stub, "not solved yet")


def test_solution_sources_need_only_the_notebook_imports():
    """The reference sources are what solution() shows; they must name nothing unexplained."""
    for id in ("rest.every-page", "rest.validation", "rest.keyset"):
        source = get(id).solution_source
        namespace = {"re": re, "select": select, "and_": and_, "or_": or_, "Post": Post, "db": db,
                     "requests": requests}
        exec(compile(source, id, "exec"), namespace)


class RefillCountedTwice(TokenBucket):
    """Stores the refilled tokens on every take, but moves the clock only when a token is
    spent: the time of refused requests is counted again, so the client gets more than
    ``rate`` requests a second."""

    def take(self, now):
        if self.updated is None:
            self.updated = now
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        if self.tokens >= 1:
            self.tokens -= 1
            self.updated = now
            return 0.0
        return (1 - self.tokens) / self.rate


def test_rate_limit_counting_the_refill_twice_fails():
    assert_fails("rest.rate-limit", RefillCountedTwice, "the time of a refused request counts")
