"""The GraphQL-over-HTTP specification's own audit suite (npm ``graphql-http``'s
``auditServer``) against the lab server: every MUST and every SHOULD passes.

It runs with Node from ``tools/graphql_http_audit`` (``npm ci`` there installs it; CI does).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

AUDIT = Path(__file__).resolve().parent.parent / "tools" / "graphql_http_audit"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(NODE is None, reason="Node.js is not installed (the audit runs on Node)"),
    pytest.mark.skipif(not (AUDIT / "node_modules" / "graphql-http").is_dir(),
                       reason="graphql-http is not installed: run `npm ci` in "
                              "tools/graphql_http_audit"),
]


@pytest.fixture(scope="module")
def audit(graphql_server):
    assert NODE is not None  # the skipif above
    finished = subprocess.run([NODE, "audit.mjs", f"{graphql_server.url}/graphql"], cwd=AUDIT,
                              capture_output=True, text=True, timeout=60, check=True)
    return json.loads(finished.stdout)


def test_every_must_and_should_of_the_spec_passes(audit):
    failed = [f"{result['status']} {result['id']} {result['name']}: {result['reason']}"
              for result in audit["results"] if result["status"] in ("error", "warn")]
    assert not failed, "\n".join(failed)
    print("audit counts:", audit["counts"])  # shown with -s


def test_the_audit_really_ran(audit):
    musts = [result for result in audit["results"] if result["name"].startswith("MUST")]
    shoulds = [result for result in audit["results"] if result["name"].startswith("SHOULD")]
    assert len(musts) >= 10 and len(shoulds) >= 10, audit["counts"]
    assert sum(audit["counts"].values()) == len(audit["results"])
