"""Opening a notebook in JupyterLab changes nothing: each stores the kernelspec JupyterLab writes.

(JupyterLab rewrites ``kernelspec`` from the kernel's spec when it opens a notebook; a stored
one that differs marks the notebook modified at once. tests/test_jupyter_pages.py checks the
same in a real JupyterLab.)
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tools.notebooks import kernelspec_metadata

ROOT = Path(__file__).resolve().parent.parent

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_stored_kernelspec_is_the_one_jupyterlab_writes(path: Path) -> None:
    metadata = nbformat.read(path, as_version=4).metadata
    assert metadata.kernelspec == kernelspec_metadata()
    assert metadata.language_info.name == "python"
