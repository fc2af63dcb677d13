"""Every notebook, with each exercise's reference solution put into its cell, passes every check."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tools.notebooks import execute, with_solutions

pytestmark = pytest.mark.slow  # a whole system: `make quick` leaves it out

ROOT = Path(__file__).resolve().parent.parent

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def outputs_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts.append(output.get("data", {}).get("text/plain", ""))
    return "".join(parts)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_reference_solutions_pass_every_check(path: Path) -> None:
    notebook, ids = with_solutions(nbformat.read(path, as_version=4))
    if not ids:
        pytest.skip(f"{path.name} has no exercises")
    execute(notebook)
    text = "".join(outputs_text(cell) for cell in notebook.cells)
    for id in ids:
        assert f"✅ passed · {id}: checks passed" in text, f"{id} did not pass in {path.name}"
    assert "❌" not in text and "not yet ·" not in text, f"a check failed in {path.name}"
