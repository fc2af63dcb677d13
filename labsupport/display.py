"""Showing HTTP exchanges in a notebook the way a learner reads them."""

from __future__ import annotations

import json
from typing import Any

import requests

MAX_LINES = 14


def show(response: requests.Response, *headers: str, lines: int = MAX_LINES) -> None:
    """Print the status line, the named headers, then the body (JSON pretty-printed)."""
    print(response.status_code, response.reason)
    for name in headers:
        if name in response.headers:
            print(f"{name}: {response.headers[name]}")
    if not response.content:
        return
    try:
        text = json.dumps(response.json(), indent=2, ensure_ascii=False)
    except ValueError:
        text = response.text
    print(truncate(text, lines))


def truncate(text: str, lines: int = MAX_LINES) -> str:
    """``text`` cut to ``lines`` lines, saying how many were left out."""
    kept = text.splitlines()
    if len(kept) <= lines:
        return text
    return "\n".join(kept[:lines] + [f"… ({len(kept) - lines} more lines)"])


def size(payload: Any) -> int:
    """Bytes of ``payload`` as compact JSON, the way an API would send it."""
    return len(json.dumps(payload, separators=(",", ":")).encode())
