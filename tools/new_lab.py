"""Scaffold a new lab that passes its tests as generated.

    python -m tools.new_lab SLUG "Title"          # e.g. python -m tools.new_lab webhooks "Webhooks"

It writes the lab's package ``labsupport/labs/<slug>/`` (a server with its ``start()``, the
pre-flight's ``probe()``, one exercise with its reference and hints), its notebook
``notebooks/<NN>-<slug>.ipynb`` (objectives, the exercise in the first quarter, a deep dive,
the recap, ``progress()``; executed, so its outputs are stored), its test file
``tests/test_<slug>.py``, and its entry in the registry of labs (``labsupport/labs/__init__.py``,
marked ``draft=True``) with its short name for type checkers (``labsupport/__init__.py``).
Nothing else changes. Then: ``make test LAB=<slug>``; replace the greeting with your protocol;
write two more exercises; add the lab's row to INSTRUCTORS.md, drop ``draft=True`` and refresh
``00-start-here`` (its ``progress()`` lists every exercise). CONTRIBUTING.md walks through it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
LABS_DIR = ROOT / "labsupport" / "labs"
NOTEBOOKS = ROOT / "notebooks"


def _files(slug: str, title: str, notebook: str, exercise_id: str) -> dict[str, str]:
    """The lab's new files: path (from the repo root) -> text."""
    package = f"labsupport/labs/{slug}"
    return {
        f"{package}/__init__.py": f'"""The {title} lab (notebooks/{notebook}.ipynb)."""\n',
        f"{package}/server.py": f'''"""The {title} lab's server: a JSON API to build on.

``start()`` serves it on 127.0.0.1 and a free port, in the background::

    from labsupport import {slug}
    server = {slug}.start()
    requests.get(f"{{server.url}}/api/greetings/en").json()   # {{"lang": "en", "text": "Hello"}}

Errors use the labs' error envelope (:mod:`labsupport.api_errors`).
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, jsonify

from ...api_errors import APIError, OrderedJSONProvider, install_error_handlers
from ...harness import ServerHandle, serve_wsgi

__all__ = ["GREETINGS", "create_app", "start"]

#: What the server knows: a greeting per language.
GREETINGS = {{"en": "Hello", "fr": "Bonjour", "de": "Hallo"}}

routes = Blueprint("{slug}", __name__)


@routes.get("/api/greetings/<lang>")
def greeting(lang: str) -> Response:
    """The greeting in ``lang``; 404 in the error envelope for a language it does not know."""
    if lang not in GREETINGS:
        raise APIError(404, f"No greeting in {{lang!r}}", details={{"lang": sorted(GREETINGS)}})
    return jsonify({{"lang": lang, "text": GREETINGS[lang]}})


def create_app() -> Flask:
    """The lab's Flask app: its routes and the error envelope."""
    app = Flask(__name__)
    app.json = OrderedJSONProvider(app)
    install_error_handlers(app)
    app.register_blueprint(routes)
    return app


def start(*, name: str = "{slug}") -> ServerHandle:
    """Serve the lab on 127.0.0.1 (a free port); a second start of ``name`` replaces the first."""
    return serve_wsgi(name, create_app())
''',
        f"{package}/preflight.py": f'''"""The pre-flight's check of this lab: :func:`probe`."""

from __future__ import annotations

import requests

from . import server as {slug}

TIMEOUT = 5


def probe() -> str:
    """Start the {title} lab's server, ask it one thing, say what came back."""
    with {slug}.start(name="preflight-{slug}") as server:
        reply = requests.get(f"{{server.url}}/api/greetings/en", timeout=TIMEOUT)
        reply.raise_for_status()
        return f"GET /api/greetings/en -> {{reply.status_code}}"
''',
        f"{package}/exercises.py": f'''"""Exercises of notebooks/{notebook}.ipynb."""

from __future__ import annotations

import requests

from ...engine import NotAttempted, Unmet, exercise, expect
from . import server as {slug}


def greeting(base_url: str, lang: str) -> str | None:
    """The greeting in ``lang`` from the lab's server, or None when it has none (404)."""
    response = requests.get(f"{{base_url}}/api/greetings/{{lang}}", timeout=5)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()["text"]


@exercise(
    "{exercise_id}",
    title="Read a greeting over HTTP; None when the server answers 404",
    notebook="{notebook}",
    hints=[
        "requests.get(f\\"{{base_url}}/api/greetings/{{lang}}\\", timeout=5) makes the call.",
        "A language the server does not know comes back as status 404: look at "
        "response.status_code before reading the body.",
        "The body is JSON: response.json()[\\"text\\"].",
    ],
    reference=greeting,
)
def check_greeting(greeting):
    with {slug}.start(name="{slug}-check") as server:
        hello = greeting(server.url, "en")
        if hello is None and greeting(server.url, "fr") is None:
            raise NotAttempted("greeting still returns None for every language")
        expect(hello == "Hello", f"greeting(url, 'en') should be 'Hello', got {{hello!r}}")
        try:
            missing = greeting(server.url, "xx")
        except Exception as exc:
            raise Unmet(f"greeting(url, 'xx') raised {{type(exc).__name__}}: {{exc}}; the server "
                        "answers 404 for a language it does not know: return None") from None
        expect(missing is None,
               f"the server has no greeting in 'xx' (it answers 404); expected None, got "
               f"{{missing!r}}")
    return "200 read, 404 handled"
''',
        f"tests/test_{slug}.py": f'''"""The {title} lab: its server and its exercise."""

from __future__ import annotations

import pytest
import requests
from exercise_helpers import assert_fails, assert_passes

from labsupport import {slug}

ID = "{exercise_id}"


@pytest.fixture(scope="module")
def server():
    with {slug}.start(name="test-{slug}") as handle:
        yield handle


def test_a_known_language_is_greeted(server):
    reply = requests.get(f"{{server.url}}/api/greetings/en", timeout=5)
    assert reply.status_code == 200
    assert reply.json() == {{"lang": "en", "text": "Hello"}}


def test_an_unknown_language_is_a_404_in_the_error_envelope(server):
    reply = requests.get(f"{{server.url}}/api/greetings/xx", timeout=5)
    assert reply.status_code == 404
    error = reply.json()["error"]
    assert error["code"] == "NOT_FOUND" and "'xx'" in error["message"]


def test_the_reference_passes():
    assert_passes(ID)


def _body(url: str, lang: str) -> dict:
    return requests.get(f"{{url}}/api/greetings/{{lang}}", timeout=5).json()


def _no_404(url: str, lang: str) -> str:
    reply = requests.get(f"{{url}}/api/greetings/{{lang}}", timeout=5)
    reply.raise_for_status()
    return reply.json()["text"]


def test_wrong_answers_fail_with_a_message_that_teaches():
    assert_fails(ID, lambda url, lang: None, "still returns None")
    assert_fails(ID, _body, "should be 'Hello'")
    assert_fails(ID, _no_404, "raised HTTPError")
''',
    }


def _cells(slug: str, title: str, notebook: str, previous: str,
           exercise_id: str) -> list[nbformat.NotebookNode]:
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    number = notebook[:2]
    way = (f"**Previous:** [{previous}]({previous}.ipynb) · "
           "**Next:** [00 · Start here](00-start-here.ipynb): the map of the collection.")
    stub = code('def greeting(base_url: str, lang: str) -> str | None:\n'
                '    """The greeting in `lang`, or None when the server has none (404)."""\n'
                '    ...')
    stub.metadata["exercise"] = exercise_id
    return [
        md(f"# {number} · {title}\n\n{way}\n\n"
           f"What this lab shows, in two or three sentences (write them).\n\n"
           "**You will learn** to start the lab's server, read what it answers, and tell a "
           "success from an error by its status code.\n\n"
           "**You need** [01 · REST](01-rest.ipynb) (HTTP, status codes, JSON).\n\n"
           "**How long:** about 5 minutes to read and run the core, 1 more for the deep dive, "
           "and about 6 for the exercise.\n\n"
           "**Core and deep dives:** the section marked *(deep dive)* can be left for later."),
        code(f"import inspect\n\nimport requests\n\n"
             f"from labsupport import check, hint, progress, {slug}, solution\n\n"
             f"server = {slug}.start()\nserver.url"),
        md(f"## Exercise 1: read a greeting (easy)\n\n"
           "The server answers `GET /api/greetings/<lang>` "
           "with JSON, `{\"lang\": \"en\", \"text\": \"Hello\"}`, and a language it does not "
           "know with status 404. Write `greeting(base_url, lang)`: the text, or `None` on a "
           f"404. Stuck? `hint(\"{exercise_id}\")`; `solution(\"{exercise_id}\")` shows one."),
        stub,
        code(f'check("{exercise_id}", greeting)'),
        md("## 1. What the server answers\n\nOne request, one JSON body:"),
        code('requests.get(f"{server.url}/api/greetings/en", timeout=5).json()'),
        md("An unknown language is a 404 with the labs' error envelope:"),
        code('reply = requests.get(f"{server.url}/api/greetings/xx", timeout=5)\n'
             'reply.status_code, reply.json()["error"]["code"]'),
        md("## 2. How the server is built *(deep dive)*\n\nA Flask app from a factory, served "
           "by the harness on 127.0.0.1 and a free port:"),
        code(f"print(inspect.getsource({slug}.create_app))"),
        md("## Recap\n\n- The lab's server starts in the kernel and answers JSON.\n"
           "- A status code says whether a request succeeded before the body does.\n\n"
           "### Specifications\n\n"
           "- [RFC 9110, HTTP Semantics](https://www.rfc-editor.org/rfc/rfc9110): methods and "
           "status codes.\n\nYour progress in this lab (`progress()` without an argument shows "
           "the whole collection):"),
        code(f'progress("{notebook}")'),
        md(way),
    ]


def _register(slug: str, title: str, notebook: str) -> None:
    """Add the lab's entry to the registry and its short name for type checkers."""
    registry = LABS_DIR / "__init__.py"
    text = registry.read_text()
    entry = (f'    Lab("{slug}", "{notebook}", "{title}", {{"{slug}": "server"}}, '
             f'public=("server",),\n        probe="{title}", draft=True),\n')
    end = text.index("\n)\n", text.index("LABS: tuple[Lab, ...] = ("))
    registry.write_text(text[:end + 1] + entry + text[end + 1:])

    face = ROOT / "labsupport" / "__init__.py"
    text = face.read_text()
    start = text.index("if TYPE_CHECKING:\n") + len("if TYPE_CHECKING:\n")
    end = text.index("\n\n", start) + 1
    lines = text[start:end].splitlines(keepends=True)
    lines.append(f"    from .labs.{slug} import server as {slug}\n")
    face.write_text(text[:start] + "".join(sorted(lines)) + text[end:])


def _refuse(slug: str) -> str | None:
    """Why ``slug`` cannot name a new lab, or None."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", slug):
        return "a slug is lower case letters, digits and _, starting with a letter"
    if (LABS_DIR / slug).exists():
        return f"labsupport/labs/{slug} exists already"
    if importlib.util.find_spec(slug) is not None:
        return (f"{slug!r} is the name of a library: a module must never be named after a "
                f"package it imports; add what the lab serves, e.g. {slug}_api")
    return None


def create(slug: str, title: str) -> list[Path]:
    """Write the lab's files, notebook and registry entry; the paths written."""
    why = _refuse(slug)
    if why:
        raise ValueError(why)
    numbered = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
    previous = numbered[-1].stem
    notebook = f"{int(previous[:2]) + 1:02d}-{slug.replace('_', '-')}"
    exercise_id = f"{slug.replace('_', '-')}.greeting"
    written = []
    for relative, text in _files(slug, title, notebook, exercise_id).items():
        path = ROOT / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    _register(slug, title, notebook)
    path = NOTEBOOKS / f"{notebook}.ipynb"
    book = nbformat.v4.new_notebook()
    book.cells = _cells(slug, title, notebook, previous, exercise_id)
    nbformat.write(book, path)
    from tools.notebooks import refresh

    # The notebook's kernel imports this checkout's labsupport (with the new lab in it).
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT),
                                                             os.environ.get("PYTHONPATH"))))
    refresh([path])
    return [*written, path]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.new_lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("slug", help="the lab's package under labsupport/labs/, e.g. webhooks")
    parser.add_argument("title", help='the notebook\'s title, e.g. "Webhooks"')
    options = parser.parse_args(argv)
    try:
        written = create(options.slug, options.title)
    except ValueError as error:
        print(f"new_lab: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path.relative_to(ROOT)}")
    print("and the lab's entry in labsupport/labs/__init__.py (draft=True), its short name in "
          f"labsupport/__init__.py.\nNext: make test LAB={options.slug}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
