"""The pre-flight's check of this lab: ``python -m labsupport.preflight`` runs :func:`probe`."""

from __future__ import annotations

import requests

from . import server as graphql_api

TIMEOUT = 5


def probe() -> str:
    """Start the GraphQL lab's server, ask it its type name, say what came back."""
    with graphql_api.start(name="preflight-graphql", fresh_data=False) as server:
        reply = requests.post(f"{server.url}/graphql", json={"query": "{ __typename }"},
                              timeout=TIMEOUT)
        reply.raise_for_status()
        return f"POST /graphql -> {reply.json()['data']}"
