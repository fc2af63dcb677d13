"""Every repository path the text quotes exists: the notebooks (prose and code) and the
Markdown files name files a reader can open.

A path is quoted as ``labsupport/...``, ``tests/...``, ``tools/...``, ``notebooks/...``,
``protos/...``, ``jupyter/...`` or ``.ci/...``; a pattern (``tests/test_<slug>.py``,
``tools/bench*.py``, ``notebooks/NN-x.ipynb``) is a placeholder, not a path, and is left out,
and so are the files of the scaffold's worked example in CONTRIBUTING.md (a lab called
``webhooks`` that ``python -m tools.new_lab`` would make; tests/test_new_lab.py makes it).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
TOP = ("labsupport", "tests", "tools", "notebooks", "protos", "jupyter", ".ci")
QUOTED = re.compile(r"(?<![\w./-])((?:" + "|".join(re.escape(t) for t in TOP)
                    + r")/[\w./-]*)(?P<after>[<*{]?)")
PLACEHOLDER = re.compile(r"\bNN\b|\bx\.ipynb$")
#: The lab that CONTRIBUTING.md's worked example scaffolds: its paths exist once it is made.
EXAMPLE_LAB = re.compile(r"(?:^|[/_-])webhooks(?:[/._]|$)")

TEXTS = sorted(ROOT.glob("notebooks/*.ipynb")) + sorted(
    path for path in ROOT.rglob("*.md")
    if not {".venv", "node_modules", ".git"} & set(path.relative_to(ROOT).parts)
    and not path.relative_to(ROOT).parts[0].startswith(".venv"))


def quoted_paths(text: str) -> set[str]:
    """The repository paths ``text`` names (placeholders left out)."""
    found = set()
    for match in QUOTED.finditer(text):
        path = match.group(1).rstrip(".-/")
        if (match.group("after") or PLACEHOLDER.search(path) or EXAMPLE_LAB.search(path)
                or path in TOP):
            continue
        found.add(path)
    return found


def text_of(path: Path) -> str:
    if path.suffix == ".ipynb":
        return "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)
    return path.read_text(encoding="utf-8")


def test_the_finder_sees_paths_and_leaves_placeholders_out():
    text = ("see `labsupport/labs/sse/server.py`, tests/test_sse.py. Not tests/test_<slug>.py,"
            " tools/bench*.py or notebooks/NN-x.ipynb; labsupport/labs/rest/ is a folder.")
    assert quoted_paths(text) == {"labsupport/labs/sse/server.py", "tests/test_sse.py",
                                  "labsupport/labs/rest"}


@pytest.mark.parametrize("path", TEXTS, ids=[str(p.relative_to(ROOT)) for p in TEXTS])
def test_every_quoted_path_exists(path: Path):
    missing = sorted(p for p in quoted_paths(text_of(path)) if not (ROOT / p).exists())
    assert missing == [], f"{path.relative_to(ROOT)} quotes paths that do not exist: {missing}"
