"""The REST lab server, route by route: what a client sends and what it must get back.

The application's logic is tested through Flask's test client on fresh sample data; what only
the wire shows (simultaneous requests, a limit per client) through the live server.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from labsupport import database, rest


@pytest.fixture
def client() -> FlaskClient:
    database.reset()
    return rest.create_app().test_client()


@pytest.fixture
def api(rest_server):
    database.reset()
    return f"{rest_server.url}/api/v1"


def assert_envelope(response: requests.Response | TestResponse, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json() if isinstance(response, requests.Response) else response.json
    assert isinstance(body, dict), body
    error = body["error"]
    assert error["code"] == code
    assert set(error) == {"message", "code", "details", "timestamp"}
    return error


def test_list_users_is_paginated(client):
    body = client.get("/api/v1/users", query_string={"limit": 3, "page": 2}).json
    assert [u["id"] for u in body["users"]] == [104, 105, 106]
    assert body["pagination"] == {"page": 2, "pages": 9, "total": 25}


def test_a_page_past_the_end_is_empty(client):
    body = client.get("/api/v1/users", query_string={"page": 99}).json
    assert body["users"] == [] and body["pagination"]["total"] == 25


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"limit": "ten"},
                                    {"page": 0}, {"page": -1}, {"sort": "password"}])
def test_bad_query_parameters_are_400(client, params):
    response = client.get("/api/v1/users", query_string=params)
    error = assert_envelope(response, 400, "INVALID_PARAMETER")
    assert set(error["details"]) == set(params)


def test_filter_and_sort(client):
    body = client.get("/api/v1/users", query_string={"name": "AN", "sort": "-name"}).json
    assert [u["name"] for u in body["users"]] == [
        "Radia Perlman", "Guido van Rossum", "Frances Allen", "Alan Turing"]


def test_get_user_and_404(client):
    assert client.get("/api/v1/users/123").json["name"] == "John Doe"
    error = assert_envelope(client.get("/api/v1/users/999"), 404, "NOT_FOUND")
    assert error["message"] == "User 999 not found"


def test_create_user_answers_201_with_location(client):
    response = client.post("/api/v1/users", json={"name": " Kathleen Booth ",
                                                  "email": "Kathleen@Example.com"})
    assert response.status_code == 201
    assert response.headers["Location"] == "/api/v1/users/126"
    created = client.get(response.headers["Location"]).json
    assert created["name"] == "Kathleen Booth" and created["email"] == "kathleen@example.com"


def test_duplicate_email_is_409_even_with_other_case(client):
    response = client.post("/api/v1/users", json={"name": "Ada",
                                                  "email": "ADA.LOVELACE@example.com"})
    assert_envelope(response, 409, "CONFLICT")


def test_simultaneous_duplicates_get_exactly_one_201(api):
    def sign_up(_):
        return requests.post(f"{api}/users", json={"name": "Twin", "email": "twin@example.com"},
                             timeout=5).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(sign_up, range(8)))
    assert statuses == [201] + [409] * 7


def test_mass_assignment_is_refused(client):
    response = client.post("/api/v1/users", json={"name": "M", "email": "m@example.com",
                                                  "role": "admin", "id": 1})
    error = assert_envelope(response, 422, "VALIDATION_ERROR")
    assert error["details"] == {"role": ["Unknown field"], "id": ["Unknown field"]}


def test_put_replaces_and_needs_every_field(client):
    url = "/api/v1/users/104"
    missing = client.put(url, json={"name": "E. W. Dijkstra"})
    assert assert_envelope(missing, 422, "VALIDATION_ERROR")["details"] == {
        "email": ["Email is required"]}
    replaced = client.put(url, json={"name": "E. W. Dijkstra", "email": "ewd@example.com"})
    assert replaced.json["email"] == "ewd@example.com"


def test_patch_merges(client):
    response = client.patch("/api/v1/users/104", json={"name": "EWD"})
    assert response.json["name"] == "EWD"
    assert response.json["email"] == "edsger.dijkstra@example.com"


def test_patch_to_a_taken_email_is_409_and_changes_nothing(client):
    response = client.patch("/api/v1/users/104", json={"email": "ada.lovelace@example.com"})
    assert_envelope(response, 409, "CONFLICT")
    assert client.get("/api/v1/users/104").json["email"] == (
        "edsger.dijkstra@example.com")


def test_delete_is_204_then_404_and_takes_the_orders(client):
    assert client.delete("/api/v1/users/123").status_code == 204
    assert client.delete("/api/v1/users/123").status_code == 404
    assert client.get("/api/v1/users/123/orders").status_code == 404


@pytest.mark.parametrize("body, headers, status, code", [
    ("name=Ada", {"Content-Type": "application/x-www-form-urlencoded"}, 415,
     "UNSUPPORTED_MEDIA_TYPE"),
    ('{"name": ', {"Content-Type": "application/json"}, 400, "BAD_REQUEST"),
    ('["a", "list"]', {"Content-Type": "application/json"}, 400, "BAD_REQUEST"),
    ("", {"Content-Type": "application/json"}, 400, "BAD_REQUEST"),
    ('{"name": "\\ud800", "email": "s@example.com"}', {"Content-Type": "application/json"}, 400,
     "BAD_REQUEST"),
])
def test_unreadable_bodies(client, body, headers, status, code):
    response = client.post("/api/v1/users", data=body, headers=headers)
    assert_envelope(response, status, code)


def test_wrong_method_is_405_with_allow(client):
    response = client.delete("/api/v1/users")
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_etag_and_304(client):
    first = client.get("/api/v1/users/101")
    etag = first.headers["ETag"]
    again = client.get("/api/v1/users/101", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    client.patch("/api/v1/users/101", json={"name": "Augusta Ada King"})
    changed = client.get("/api/v1/users/101", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_rate_limit_answers_429_with_retry_after():
    with rest.start(name="rest-limited", fresh_data=False, rate_limit=(2, 10)) as limited:
        url = f"{limited.url}/api/v1/users/101"
        statuses = [requests.get(url, timeout=5) for _ in range(3)]
        other_client = requests.get(url, headers={"X-API-Key": "someone-else"}, timeout=5)
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert statuses[2].headers["Retry-After"] == "5"
    assert_envelope(statuses[2], 429, "RATE_LIMITED")
    assert other_client.status_code == 200


def test_versions_by_url_header_and_query(client):
    v2 = client.get("/api/v2/users/101").json
    assert v2["address"]["city"] == "London" and v2["role"] == "admin"
    by_header = client.get("/api/users/101", headers={"Accept": "application/vnd.myapi.v2+json"})
    assert by_header.json == v2
    assert by_header.headers["Content-Type"] == "application/vnd.myapi.v2+json"
    assert "Accept" in by_header.headers["Vary"]
    by_query = client.get("/api/users/101", query_string={"version": "1"})
    assert set(by_query.json) == {"id", "name", "email", "created_at"}
    unknown = client.get("/api/users", headers={"Accept": "application/vnd.myapi.v3+json"})
    assert_envelope(unknown, 406, "NOT_ACCEPTABLE")
    bad_parameter = client.get("/api/users", query_string={"version": "3"})
    assert assert_envelope(bad_parameter, 400, "INVALID_PARAMETER")["details"] == {
        "version": ["must be 1 or 2"]}
    listing = client.get("/api/v2/users", query_string={"limit": 2}).json
    assert listing["pagination"] == {"page": 1, "per_page": 2, "total": 25, "pages": 13,
                                     "has_next": True, "has_prev": False}


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 10, 60, 100])
def test_keyset_pages_cover_every_post_once_in_order(client, limit):
    seen, cursor = [], None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/posts", query_string=params).json
        seen += [p["id"] for p in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == list(range(1, 61))
    assert len(seen) == 60


@pytest.mark.parametrize("cursor", ["garbage", "MjAyNA", "!!!", "x" * 500])
def test_bad_cursor_is_400(client, cursor):
    response = client.get("/api/v1/posts", query_string={"cursor": cursor})
    assert_envelope(response, 400, "INVALID_PARAMETER")


def test_orders_are_nested_under_their_user(client):
    assert client.get("/api/v1/users/123/orders/23").status_code == 200
    assert_envelope(client.get("/api/v1/users/101/orders/23"), 404, "NOT_FOUND")
    paid = client.get("/api/v1/users/102/orders", query_string={"status": "paid"}).json
    assert {o["status"] for o in paid["data"]} <= {"paid"}
    lost = client.get("/api/v1/users/102/orders", query_string={"status": "lost"})
    assert_envelope(lost, 400, "INVALID_PARAMETER")


def test_create_order_prices_from_the_catalog(client):
    response = client.post("/api/v1/users/101/orders", json={"item": "Monitor", "quantity": 2})
    assert response.status_code == 201
    assert response.json["total_cents"] == 2 * 18999
    bad = client.post("/api/v1/users/101/orders",
                      json={"item": "Yacht", "quantity": 0, "total_cents": 1})
    assert set(assert_envelope(bad, 422, "VALIDATION_ERROR")["details"]) == {
        "item", "quantity", "total_cents"}


def test_comments_of_a_post(client):
    comments = client.get("/api/v1/posts/1/comments").json["data"]
    assert [c["id"] for c in comments] == [1, 61]
    assert_envelope(client.get("/api/v1/posts/999/comments"), 404, "NOT_FOUND")


@pytest.mark.parametrize("item", [[], {}, None, 3, ["Cable"]])
def test_order_item_of_the_wrong_type_is_422(client, item):
    response = client.post("/api/v1/users/101/orders", json={"item": item})
    assert assert_envelope(response, 422, "VALIDATION_ERROR")["details"]["item"]


def test_a_nul_in_the_name_filter_is_400_not_everyone(client):
    response = client.get("/api/v1/users", query_string={"name": "\x00"})
    assert_envelope(response, 400, "INVALID_PARAMETER")
