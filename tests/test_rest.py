"""The REST lab server, route by route: what a client sends and what it must get back."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from labsupport import database, rest


@pytest.fixture
def api(rest_server):
    database.reset()
    return f"{rest_server.url}/api/v1"


def assert_envelope(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert set(error) == {"message", "code", "details", "timestamp"}
    return error


def test_list_users_is_paginated(api):
    body = requests.get(f"{api}/users", params={"limit": 3, "page": 2}, timeout=5).json()
    assert [u["id"] for u in body["users"]] == [104, 105, 106]
    assert body["pagination"] == {"page": 2, "pages": 9, "total": 25}


def test_a_page_past_the_end_is_empty(api):
    body = requests.get(f"{api}/users", params={"page": 99}, timeout=5).json()
    assert body["users"] == [] and body["pagination"]["total"] == 25


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"limit": "ten"},
                                    {"page": 0}, {"page": -1}, {"sort": "password"}])
def test_bad_query_parameters_are_400(api, params):
    response = requests.get(f"{api}/users", params=params, timeout=5)
    error = assert_envelope(response, 400, "INVALID_PARAMETER")
    assert set(error["details"]) == set(params)


def test_filter_and_sort(api):
    body = requests.get(f"{api}/users", params={"name": "AN", "sort": "-name"}, timeout=5).json()
    assert [u["name"] for u in body["users"]] == [
        "Radia Perlman", "Guido van Rossum", "Frances Allen", "Alan Turing"]


def test_get_user_and_404(api):
    assert requests.get(f"{api}/users/123", timeout=5).json()["name"] == "John Doe"
    error = assert_envelope(requests.get(f"{api}/users/999", timeout=5), 404, "NOT_FOUND")
    assert error["message"] == "User 999 not found"


def test_create_user_answers_201_with_location(api, rest_server):
    response = requests.post(f"{api}/users", json={"name": " Kathleen Booth ",
                                                   "email": "Kathleen@Example.com"}, timeout=5)
    assert response.status_code == 201
    assert response.headers["Location"] == "/api/v1/users/126"
    created = requests.get(f"{rest_server.url}{response.headers['Location']}", timeout=5).json()
    assert created["name"] == "Kathleen Booth" and created["email"] == "kathleen@example.com"


def test_duplicate_email_is_409_even_with_other_case(api):
    response = requests.post(f"{api}/users", json={"name": "Ada",
                                                   "email": "ADA.LOVELACE@example.com"}, timeout=5)
    assert_envelope(response, 409, "CONFLICT")


def test_simultaneous_duplicates_get_exactly_one_201(api):
    def sign_up(_):
        return requests.post(f"{api}/users", json={"name": "Twin", "email": "twin@example.com"},
                             timeout=5).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(sign_up, range(8)))
    assert statuses == [201] + [409] * 7


def test_mass_assignment_is_refused(api):
    response = requests.post(f"{api}/users", json={"name": "M", "email": "m@example.com",
                                                   "role": "admin", "id": 1}, timeout=5)
    error = assert_envelope(response, 422, "VALIDATION_ERROR")
    assert error["details"] == {"role": ["Unknown field"], "id": ["Unknown field"]}


def test_put_replaces_and_needs_every_field(api):
    url = f"{api}/users/104"
    missing = requests.put(url, json={"name": "E. W. Dijkstra"}, timeout=5)
    assert assert_envelope(missing, 422, "VALIDATION_ERROR")["details"] == {
        "email": ["Email is required"]}
    replaced = requests.put(url, json={"name": "E. W. Dijkstra", "email": "ewd@example.com"},
                            timeout=5)
    assert replaced.json()["email"] == "ewd@example.com"


def test_patch_merges(api):
    response = requests.patch(f"{api}/users/104", json={"name": "EWD"}, timeout=5)
    assert response.json()["name"] == "EWD"
    assert response.json()["email"] == "edsger.dijkstra@example.com"


def test_patch_to_a_taken_email_is_409_and_changes_nothing(api):
    response = requests.patch(f"{api}/users/104", json={"email": "ada.lovelace@example.com"},
                              timeout=5)
    assert_envelope(response, 409, "CONFLICT")
    assert requests.get(f"{api}/users/104", timeout=5).json()["email"] == (
        "edsger.dijkstra@example.com")


def test_delete_is_204_then_404_and_takes_the_orders(api):
    assert requests.delete(f"{api}/users/123", timeout=5).status_code == 204
    assert requests.delete(f"{api}/users/123", timeout=5).status_code == 404
    assert requests.get(f"{api}/users/123/orders", timeout=5).status_code == 404


@pytest.mark.parametrize("body, headers, status, code", [
    ("name=Ada", {"Content-Type": "application/x-www-form-urlencoded"}, 415,
     "UNSUPPORTED_MEDIA_TYPE"),
    ('{"name": ', {"Content-Type": "application/json"}, 400, "BAD_REQUEST"),
    ('["a", "list"]', {"Content-Type": "application/json"}, 400, "BAD_REQUEST"),
    ("", {"Content-Type": "application/json"}, 400, "BAD_REQUEST"),
    ('{"name": "\\ud800", "email": "s@example.com"}', {"Content-Type": "application/json"}, 400,
     "BAD_REQUEST"),
])
def test_unreadable_bodies(api, body, headers, status, code):
    response = requests.post(f"{api}/users", data=body, headers=headers, timeout=5)
    assert_envelope(response, status, code)


def test_wrong_method_is_405_with_allow(api):
    response = requests.delete(f"{api}/users", timeout=5)
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_etag_and_304(api):
    first = requests.get(f"{api}/users/101", timeout=5)
    etag = first.headers["ETag"]
    again = requests.get(f"{api}/users/101", headers={"If-None-Match": etag}, timeout=5)
    assert again.status_code == 304 and again.content == b""
    requests.patch(f"{api}/users/101", json={"name": "Augusta Ada King"}, timeout=5)
    changed = requests.get(f"{api}/users/101", headers={"If-None-Match": etag}, timeout=5)
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


def test_versions_by_url_header_and_query(rest_server, api):
    v2 = requests.get(f"{rest_server.url}/api/v2/users/101", timeout=5).json()
    assert v2["address"]["city"] == "London" and v2["role"] == "admin"
    by_header = requests.get(f"{rest_server.url}/api/users/101",
                             headers={"Accept": "application/vnd.myapi.v2+json"}, timeout=5)
    assert by_header.json() == v2
    assert by_header.headers["Content-Type"] == "application/vnd.myapi.v2+json"
    assert "Accept" in by_header.headers["Vary"]
    by_query = requests.get(f"{rest_server.url}/api/users/101", params={"version": "1"}, timeout=5)
    assert set(by_query.json()) == {"id", "name", "email", "created_at"}
    unknown = requests.get(f"{rest_server.url}/api/users",
                           headers={"Accept": "application/vnd.myapi.v3+json"}, timeout=5)
    assert_envelope(unknown, 406, "NOT_ACCEPTABLE")
    bad_parameter = requests.get(f"{rest_server.url}/api/users", params={"version": "3"}, timeout=5)
    assert assert_envelope(bad_parameter, 400, "INVALID_PARAMETER")["details"] == {
        "version": ["must be 1 or 2"]}
    listing = requests.get(f"{rest_server.url}/api/v2/users", params={"limit": 2}, timeout=5).json()
    assert listing["pagination"] == {"page": 1, "per_page": 2, "total": 25, "pages": 13,
                                     "has_next": True, "has_prev": False}


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 10, 60, 100])
def test_keyset_pages_cover_every_post_once_in_order(api, limit):
    seen, cursor = [], None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        body = requests.get(f"{api}/posts", params=params, timeout=5).json()
        seen += [p["id"] for p in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == list(range(1, 61))
    assert len(seen) == 60


@pytest.mark.parametrize("cursor", ["garbage", "MjAyNA", "!!!", "x" * 500])
def test_bad_cursor_is_400(api, cursor):
    response = requests.get(f"{api}/posts", params={"cursor": cursor}, timeout=5)
    assert_envelope(response, 400, "INVALID_PARAMETER")


def test_orders_are_nested_under_their_user(api):
    assert requests.get(f"{api}/users/123/orders/23", timeout=5).status_code == 200
    assert_envelope(requests.get(f"{api}/users/101/orders/23", timeout=5), 404, "NOT_FOUND")
    paid = requests.get(f"{api}/users/102/orders", params={"status": "paid"}, timeout=5).json()
    assert {o["status"] for o in paid["data"]} <= {"paid"}
    assert_envelope(requests.get(f"{api}/users/102/orders", params={"status": "lost"},
                                 timeout=5), 400, "INVALID_PARAMETER")


def test_create_order_prices_from_the_catalog(api):
    response = requests.post(f"{api}/users/101/orders", json={"item": "Monitor", "quantity": 2},
                             timeout=5)
    assert response.status_code == 201
    assert response.json()["total_cents"] == 2 * 18999
    bad = requests.post(f"{api}/users/101/orders",
                        json={"item": "Yacht", "quantity": 0, "total_cents": 1}, timeout=5)
    assert set(assert_envelope(bad, 422, "VALIDATION_ERROR")["details"]) == {
        "item", "quantity", "total_cents"}


def test_comments_of_a_post(api):
    comments = requests.get(f"{api}/posts/1/comments", timeout=5).json()["data"]
    assert [c["id"] for c in comments] == [1, 61]
    assert_envelope(requests.get(f"{api}/posts/999/comments", timeout=5), 404, "NOT_FOUND")


@pytest.mark.parametrize("item", [[], {}, None, 3, ["Cable"]])
def test_order_item_of_the_wrong_type_is_422(api, item):
    response = requests.post(f"{api}/users/101/orders", json={"item": item}, timeout=5)
    assert assert_envelope(response, 422, "VALIDATION_ERROR")["details"]["item"]


def test_a_nul_in_the_name_filter_is_400_not_everyone(api):
    response = requests.get(f"{api}/users", params={"name": "\x00"}, timeout=5)
    assert_envelope(response, 400, "INVALID_PARAMETER")
