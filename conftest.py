"""Test set-up for the whole repo (so `pytest notebooks/01-rest.ipynb` alone gets it too).

Each notebook's kernel and each test get their own progress file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_progress_dir = Path(tempfile.mkdtemp(prefix="protocol-lab-progress-"))
os.environ["PROTOCOL_LAB_PROGRESS"] = str(_progress_dir / "tests.json")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before a notebook's kernel starts, point it at a fresh progress file.

    nbval starts one kernel per notebook, inheriting this environment, so every
    notebook run starts from "nothing solved", as its stored outputs do.
    """
    notebook = item.parent
    is_notebook = notebook is not None and str(notebook.path).endswith(".ipynb")
    if is_notebook and getattr(notebook, "kernel", None) is None:
        progress = _progress_dir / f"{notebook.path.stem}.json"
        progress.unlink(missing_ok=True)
        os.environ["PROTOCOL_LAB_PROGRESS"] = str(progress)


@pytest.fixture(autouse=True)
def fresh_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    """Python tests record progress in a file of their own."""
    if not str(request.node.path).endswith(".ipynb"):
        monkeypatch.setenv("PROTOCOL_LAB_PROGRESS", str(tmp_path / "progress.json"))
    yield
