"""The pages labs show in a browser: each lab's ``static/`` folder, read one way."""

from __future__ import annotations

from importlib import resources

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


def static_file(package: str, name: str) -> tuple[bytes, str]:
    """The bytes and content type of ``static/<name>`` in the lab package ``package``."""
    body = resources.files(package).joinpath("static", name).read_bytes()
    return body, CONTENT_TYPES["." + name.rpartition(".")[2]]
