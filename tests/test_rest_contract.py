"""The REST lab's OpenAPI contract: complete, valid, served with Swagger UI, and true.

schemathesis generates requests from the served document (every phase, stateful links
included, every check) and finds no failure; a route the document leaves out fails.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from flask import Flask
from openapi_spec_validator import validate

from labsupport import rest
from labsupport.openapi import documented_routes

pytestmark = pytest.mark.slow  # a whole system: `make quick` leaves it out

SCHEMATHESIS_CONFIG = Path(__file__).with_name("schemathesis.toml")


def undocumented(app: Flask, document: dict) -> set[tuple[str, str]]:
    """Routes of ``app`` that ``document`` does not describe, as (METHOD, Flask rule)."""
    described = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    return {
        (method, rule) for method, rule in documented_routes(app)
        if (method, re.sub(r"<(?:[^>:]+:)?(\w+)>", r"{\1}", rule)) not in described
    }


def test_every_route_is_in_the_document():
    app = rest.create_app()
    document = app.test_client().get("/openapi.json").get_json()
    assert undocumented(app, document) == set()
    assert len(documented_routes(app)) == 19


def test_a_route_left_out_of_the_document_is_found():
    app = rest.create_app()

    @app.get("/api/v1/secret")
    def secret() -> str:
        return "not in the contract"

    document = app.test_client().get("/openapi.json").get_json()
    assert undocumented(app, document) == {("GET", "/api/v1/secret")}


def test_the_document_is_valid_openapi_3_1(rest_server):
    document = requests.get(f"{rest_server.url}/openapi.json", timeout=5).json()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_parameters_carry_their_bounds_and_bodies_their_rules(rest_server):
    document = requests.get(f"{rest_server.url}/openapi.json", timeout=5).json()
    listing = document["paths"]["/api/v1/users"]
    limit = next(p for p in listing["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"] == {"type": "integer", "default": 10, "minimum": 1, "maximum": 100}
    assert set(listing["get"]["responses"]) == {"200", "304", "400", "500"}
    assert set(listing["post"]["responses"]) == {"201", "400", "409", "415", "422", "500"}
    body = document["components"]["schemas"]["UserBody"]
    assert body["required"] == ["email", "name"] and body["additionalProperties"] is False
    patch = document["paths"]["/api/v1/users/{user_id}"]["patch"]["requestBody"]
    assert patch["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/UserBodyChanges"}
    error = document["components"]["schemas"]["ErrorEnvelope"]
    assert error["required"] == ["error"]


def test_the_rate_limit_appears_in_the_document_when_it_runs():
    limited = rest.create_app(rate_limit=(5, 1)).test_client().get("/openapi.json").get_json()
    responses = limited["paths"]["/api/v1/users/{user_id}"]["get"]["responses"]
    assert responses["429"]["headers"]["Retry-After"]["required"] is True


def test_swagger_ui_is_served_from_the_package_not_a_cdn(rest_server):
    page = requests.get(f"{rest_server.url}/docs/", timeout=5)
    assert page.headers["Content-Type"].startswith("text/html")
    assert "://" not in page.text
    for asset in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        response = requests.get(f"{rest_server.url}/docs/{asset}", timeout=5)
        assert response.status_code == 200 and len(response.content) > 1000, asset


def run_schemathesis(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(SCHEMATHESIS_CONFIG),
         "run", f"{url}/openapi.json", "--url", url, "--checks", "all", "--max-examples", "25",
         "--seed", "1", "--workers", "1"],
        capture_output=True, text=True, timeout=280,
    )


@pytest.mark.timeout(300)
def test_schemathesis_finds_no_failure(rest_server):
    run = run_schemathesis(rest_server.url)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert counts is not None, run.stdout
    generated, passed = map(int, counts.groups())
    assert generated == passed >= 1000
    assert re.search(r"Stateful .*\n(?:.*\n){0,3}.*API Links: +[1-9]", run.stdout), run.stdout



def test_the_server_is_relative_to_the_document(rest_server):
    """Behind a path prefix (a hub's ``<base_url>proxy/<port>/``) clients resolve the server
    against the document's own URL (OpenAPI 3.1 §4.8.5): an absolute URL or none would send
    Swagger UI's requests to the origin's root."""
    document = requests.get(f"{rest_server.url}/openapi.json", timeout=5).json()
    assert [server["url"] for server in document["servers"]] == ["."]
