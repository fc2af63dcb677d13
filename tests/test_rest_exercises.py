"""Every exercise of 00-start-here and 01-rest: the reference passes, wrong answers fail."""

from __future__ import annotations

import re

import pytest
import requests
from exercise_helpers import assert_fails, assert_passes
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

    assert_fails("start.first-request", whole_body, "should be 'Ada Lovelace', got {")


def test_first_request_ignoring_404_fails():
    def no_status_check(base_url, user_id):
        return requests.get(f"{base_url}/api/v1/users/{user_id}", timeout=5).json()["name"]

    assert_fails("start.first-request", no_status_check, "raised KeyError")


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
        users, page = [], 1
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


def test_every_page_stopping_at_an_empty_page_passes():
    """Asking for one page past the end, and stopping at its empty list, is a right answer."""
    def until_empty(users_url, params):
        users, page = [], 1
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
                 "sent If-None-Match with the current ETag, expected 304, got 200")


def test_conditional_get_wrong_header_fails():
    def uses_if_match(url, etag):
        response = requests.get(url, headers={"If-Match": etag} if etag else {}, timeout=5)
        return response.status_code, response.headers.get("ETag"), response.json()

    assert_fails("rest.conditional-get", uses_if_match, "expected 304, got 200")


def test_conditional_get_body_on_304_fails():
    def returns_text_on_304(url, etag):
        response = requests.get(url, headers={"If-None-Match": etag or ""}, timeout=5)
        body = response.json() if response.status_code == 200 else response.text
        return response.status_code, response.headers.get("ETag"), body

    assert_fails("rest.conditional-get", returns_text_on_304, "a 304 has no body")


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
