"""Random bodies and parameters at every route: never a 500, and a refusal changes nothing."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from labsupport import database, rest
from labsupport.database import Base, db

ROUTES = [
    ("GET", "/api/v1/users"), ("POST", "/api/v1/users"),
    ("GET", "/api/v1/users/{id}"), ("PUT", "/api/v1/users/{id}"),
    ("PATCH", "/api/v1/users/{id}"), ("DELETE", "/api/v1/users/{id}"),
    ("GET", "/api/v1/users/{id}/orders"), ("POST", "/api/v1/users/{id}/orders"),
    ("GET", "/api/v1/users/{id}/orders/{id2}"),
    ("GET", "/api/v1/posts"), ("GET", "/api/v1/posts/{id}"),
    ("GET", "/api/v1/posts/{id}/comments"),
    ("GET", "/api/v2/users"), ("GET", "/api/v2/users/{id}"),
    ("GET", "/api/users"), ("GET", "/api/users/{id}"),
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)
field_names = st.sampled_from(["name", "email", "role", "id", "item", "quantity", "tags"])
user_like_bodies = st.dictionaries(
    field_names,
    json_values | st.emails().map(str) | st.sampled_from(["Keyboard", "Monitor", "Ada"]),
    max_size=4,
)
raw_bodies = st.one_of(
    user_like_bodies.map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=60),
    st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
)
param_values = st.one_of(
    st.integers(-5, 1000).map(str), st.text(max_size=20),
    st.sampled_from(["name", "-created_at", "id,-name", "paid", "2", "", "MjAyNHwx"]),
)
params = st.dictionaries(
    st.sampled_from(["page", "limit", "sort", "name", "status", "cursor", "version"]),
    param_values, max_size=4,
)
ids = st.one_of(st.integers(0, 130), st.sampled_from([101, 123, 125, 10**12]))
content_types = st.sampled_from(
    ["application/json", "application/json", "text/plain", "application/x-www-form-urlencoded"])
accepts = st.sampled_from(["*/*", "application/vnd.myapi.v2+json", "application/vnd.myapi.v7+json",
                           "text/html"])


def fingerprint() -> str:
    """Every row of every table, as text: equal fingerprints mean nothing changed."""
    with database.current_engine().connect() as conn:
        rows = [
            (table.name, tuple(map(str, row)))
            for table in Base.metadata.sorted_tables
            for row in conn.execute(text(f"SELECT * FROM {table.name} ORDER BY id"))
        ]
    return json.dumps(rows)


@pytest.fixture(scope="module")
def client():
    database.reset()
    app = rest.create_app(rate_limit=None)
    return app.test_client()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(route=st.sampled_from(ROUTES), id=ids, id2=ids, query=params, body=raw_bodies,
       content_type=content_types, accept=accepts)
def test_no_route_answers_500_and_refusals_change_nothing(
        client, route, id, id2, query, body, content_type, accept):
    method, template = route
    path = template.format(id=id, id2=id2)
    before = fingerprint()
    response = client.open(path, method=method, query_string=query,
                           data=body if method in ("POST", "PUT", "PATCH") else None,
                           headers={"Content-Type": content_type, "Accept": accept})
    db.session.remove()
    assert response.status_code < 500, (method, path, query, body, response.get_data(True))
    if response.status_code >= 400:
        error = response.get_json()["error"]
        assert set(error) == {"message", "code", "details", "timestamp"}
        assert fingerprint() == before, f"a {response.status_code} changed the database"
