"""The test files and the notebook of one lab, for `make test LAB=<slug>`.

    python -m tools.lab_tests rest         # tests/test_rest*.py notebooks/01-rest.ipynb

A lab is named by its package (``graphql_api``) or by the slug its tests and exercise ids use
(``graphql``); its tests are ``tests/test_<slug>.py`` and ``tests/test_<slug>_*.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from labsupport.labs import LABS, Lab

ROOT = Path(__file__).resolve().parent.parent


def find(name: str) -> Lab:
    """The lab named ``name`` (its package or its tests' slug)."""
    for lab in LABS:
        if name in (lab.slug, lab.tests):
            return lab
    known = ", ".join(sorted({lab.slug for lab in LABS} | {lab.tests for lab in LABS}))
    raise SystemExit(f"no lab {name!r}; the labs: {known}")


def files(lab: Lab) -> list[str]:
    """Its test files and its notebook, as paths from the repository's root."""
    tests = ROOT / "tests"
    found = [*tests.glob(f"test_{lab.tests}.py"), *tests.glob(f"test_{lab.tests}_*.py")]
    notebook = ROOT / "notebooks" / f"{lab.notebook}.ipynb"
    return [str(path.relative_to(ROOT)) for path in [*sorted(found), notebook]]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(" ".join(files(find(sys.argv[1]))))
