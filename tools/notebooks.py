"""Execute notebooks: refresh their stored outputs, or run them with the solutions filled in.

    python tools/notebooks.py refresh [NOTEBOOK ...]   # re-execute in place (all by default)

Exercise starter cells carry ``"exercise": "<id>"`` in their cell metadata;
``with_solutions`` replaces each with that exercise's reference solution.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CELL_TIMEOUT = 60


def execute(notebook: nbformat.NotebookNode, timeout: int = CELL_TIMEOUT) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel with a fresh progress file, as nbval does."""
    with tempfile.TemporaryDirectory() as scratch:
        previous = os.environ.get("PROTOCOL_LAB_PROGRESS")
        os.environ["PROTOCOL_LAB_PROGRESS"] = str(Path(scratch) / "progress.json")
        try:
            client = NotebookClient(
                notebook, timeout=timeout, kernel_name="python3",
                resources={"metadata": {"path": str(NOTEBOOKS)}},
            )
            client.execute()
        finally:
            if previous is None:
                os.environ.pop("PROTOCOL_LAB_PROGRESS", None)
            else:
                os.environ["PROTOCOL_LAB_PROGRESS"] = previous
    return notebook


def with_solutions(notebook: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, list[str]]:
    """A copy whose exercise cells hold the reference solutions, and the exercise ids."""
    from labsupport.engine import get

    filled = nbformat.from_dict(notebook)
    ids = []
    for cell in filled.cells:
        id = cell.get("metadata", {}).get("exercise")
        if id:
            cell.source = get(id).solution_source
            ids.append(id)
    return filled, ids


def kernelspec_metadata(name: str = "python3") -> dict[str, str]:
    """The ``kernelspec`` JupyterLab writes on opening a notebook with kernel ``name``:
    stored as such, opening a notebook leaves it unmodified."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec(name)
    return {"display_name": spec.display_name, "language": spec.language, "name": name}


def reveals(cell: nbformat.NotebookNode) -> bool:
    """A cell that shows a prediction's answer (metadata ``"reveals": true``): it ships
    without output, so the answer is not on the page before the learner has guessed, and
    carries the tag ``nbval-ignore-output`` (nbval runs it, but has nothing to compare)."""
    return bool(cell.get("metadata", {}).get("reveals"))


def refresh(paths: list[Path]) -> None:
    """Re-execute each notebook in place; the cells that reveal an answer are left empty."""
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        execute(notebook)
        notebook.metadata["kernelspec"] = kernelspec_metadata()
        for cell in notebook.cells:
            cell.get("metadata", {}).pop("execution", None)
            if reveals(cell):
                cell.outputs, cell.execution_count = [], None
        nbformat.write(notebook, path)
        print(f"refreshed {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "refresh":
        sys.exit(__doc__)
    chosen = [Path(p).resolve() for p in sys.argv[2:]] or sorted(NOTEBOOKS.glob("*.ipynb"))
    refresh(chosen)
