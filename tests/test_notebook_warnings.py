"""No notebook warns: on Python 3.12 and 3.13 a deprecated call (``datetime.utcnow()``) prints a
DeprecationWarning into whichever cell is running, server threads included. nbval, run on those
versions by CI, fails on a new warning; this guards the stored outputs and the sources."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
WARNING = re.compile(r"\b(DeprecationWarning|PendingDeprecationWarning|FutureWarning)\b")
DEPRECATED = re.compile(r"\bdatetime\.utc(now|fromtimestamp)\(")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_cell_shows_a_warning_or_calls_a_deprecated_clock(path: Path) -> None:
    for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type != "code":
            continue
        assert not DEPRECATED.search(cell.source), f"{path.stem} cell {i}: datetime.utcnow()"
        for output in cell.get("outputs", []):
            text = output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
            assert not WARNING.search(text), f"{path.stem} cell {i} shows: {text[:300]}"


def test_the_library_calls_no_deprecated_clock() -> None:
    for path in (ROOT / "labsupport").rglob("*.py"):
        assert not DEPRECATED.search(path.read_text(encoding="utf-8")), path
