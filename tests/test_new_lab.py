"""The scaffold: `python -m tools.new_lab SLUG "Title"` makes a lab that passes its tests as
generated, and touches nothing but its folder, its notebook, its test file and the registry."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools import new_lab

ROOT = Path(__file__).resolve().parent.parent
#: The notebook the scaffold makes: numbered after the last one.
LAST = sorted(ROOT.glob("notebooks/[0-9][0-9]-*.ipynb"))[-1].name
NEXT = f"notebooks/{int(LAST[:2]) + 1:02d}-demo-lab.ipynb"
COPIED = [".ci", "labsupport", "notebooks", "protos", "tests", "tools", "conftest.py",
          "pyproject.toml", "INSTRUCTORS.md", "README.md", "CONTRIBUTING.md", "Makefile"]
IGNORED = shutil.ignore_patterns("__pycache__", ".mypy_cache", ".ruff_cache", ".hypothesis",
                                 "*.egg-info", ".pytest_cache")


def _contents(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in root.rglob("*") if path.is_file() and "__pycache__" not in path.parts
            and ".mypy_cache" not in path.parts and ".ruff_cache" not in path.parts}


def _run(repo: Path, *command: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(repo)}
    return subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_scaffolded_lab_passes_its_tests_and_touches_only_its_own_places(tmp_path):
    repo = tmp_path / "repo"
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=IGNORED)
        elif source.exists():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    before = _contents(repo)

    made = _run(repo, sys.executable, "-m", "tools.new_lab", "demo_lab", "Demo lab")
    assert made.returncode == 0, made.stdout + made.stderr
    after = _contents(repo)
    changed = {path for path in before if after.get(path) != before[path]}
    added = set(after) - set(before)
    assert changed == {"labsupport/__init__.py", "labsupport/labs/__init__.py"}
    lab_files = {path for path in added if path.startswith("labsupport/labs/demo_lab/")}
    assert added - lab_files == {NEXT, "tests/test_demo_lab.py"}
    assert {"__init__.py", "server.py", "exercises.py", "preflight.py"} == {
        path.rpartition("/")[2] for path in lab_files}

    bin_dir = Path(sys.executable).parent
    lint = _run(repo, str(bin_dir / "ruff"), "check", "labsupport", "tests", "tools")
    assert lint.returncode == 0, lint.stdout
    types = _run(repo, str(bin_dir / "mypy"), "--cache-dir", str(tmp_path / "mypy"))
    assert types.returncode == 0, types.stdout
    tested = _run(repo, sys.executable, "-m", "pytest", "-n", "0", "-q", "-p", "no:randomly",
                  "tests/test_demo_lab.py", NEXT,
                  "tests/test_registry.py", "tests/test_imports.py",
                  "tests/test_notebook_pacing.py", "tests/test_notebook_metadata.py",
                  "tests/test_reference_types.py", "tests/test_classroom.py",
                  "tests/test_preflight.py", timeout=600)
    assert tested.returncode == 0, tested.stdout[-3000:]
    assert "1 skipped" in tested.stdout  # the draft's "three to five exercises", said
    preflight = _run(repo, sys.executable, "-m", "labsupport.preflight")
    number = NEXT.removeprefix("notebooks/")[:2]
    assert f"ok   Demo lab ({number}) server: GET /api/greetings/en -> 200" in preflight.stdout


@pytest.mark.parametrize("slug, why", [
    ("rest", "exists already"),
    ("grpc", "the name of a library"),
    ("Web-Hooks", "lower case letters"),
])
def test_a_slug_that_cannot_name_a_lab_is_refused_with_the_reason(slug, why):
    assert why in (new_lab._refuse(slug) or "")
    assert new_lab._refuse("webhooks") is None
