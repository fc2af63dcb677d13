"""Plain imports: every lab has a short name a type checker sees; no import hook."""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import labsupport

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "labsupport"


def _type_checking_names() -> dict[str, str]:
    """The names imported under ``if TYPE_CHECKING:`` in labsupport/__init__.py, and from where."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If)
                 and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
    names = {}
    for statement in block.body:
        assert isinstance(statement, ast.ImportFrom)
        module = statement.module or ""
        for alias in statement.names:
            names[alias.asname or alias.name] = f"{module}.{alias.name}"
    return names


def test_the_short_names_a_type_checker_sees_are_the_ones_imported():
    assert _type_checking_names() == labsupport.SHORT_NAMES
    assert set(labsupport.SHORT_NAMES) <= set(labsupport.__all__)


@pytest.mark.parametrize("short", sorted(labsupport.SHORT_NAMES))
def test_each_short_name_is_the_lab_module_itself(short):
    real = importlib.import_module(f"labsupport.{labsupport.SHORT_NAMES[short]}")
    assert getattr(labsupport, short) is real
    assert real.__spec__ is not None and real.__spec__.name == real.__name__


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'rests'"):
        labsupport.rests  # noqa: B018


def test_importing_labsupport_imports_no_lab_and_hooks_nothing():
    code = ("import sys; meta = list(sys.meta_path); import labsupport; "
            "print(len(sys.meta_path) - len(meta), "
            "sorted(m for m in sys.modules if m.startswith('labsupport.labs.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, timeout=60).stdout.split(maxsplit=1)
    assert out == ["0", "[]\n"]


def test_nothing_in_labsupport_silences_the_type_checker_or_hooks_imports():
    offenders = [f"{path.relative_to(ROOT)}:{number}"
                 for path in PACKAGE.rglob("*.py") if "_pb2" not in path.name
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if "type: ignore" in line or "meta_path" in line]
    assert offenders == []


def _notebook_imports() -> list[tuple[str, str]]:
    found = []
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(notebook.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            found += [(notebook.name, m) for m in
                      re.findall(r"^from (labsupport[\w.]*) import", source, re.M)]
    return found


def test_notebooks_take_a_lab_by_its_short_name_and_the_rest_by_its_real_path():
    for notebook, module in _notebook_imports():
        assert module != "labsupport.labs", f"{notebook}: `from labsupport import <short name>`"
        importlib.import_module(module)  # a real module: no short name before a dot


def test_the_wire_layer_imports_downwards_only():
    order = ["records", "profiles", "parsers", "shaping", "pcap", "diagram", "tap", "counts"]
    for position, name in enumerate(order):
        tree = ast.parse((PACKAGE / "wire" / f"{name}.py").read_text())
        imported = {node.module for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.level == 1}
        assert imported <= set(order[:position]), f"wire/{name}.py imports {imported}"
        above = {alias.name for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.level > 1 for alias in node.names}
        # beside it in the shared layer, nothing of a lab: the owner check (labsupport/owner.py)
        assert above <= {"owner"}, f"wire/{name}.py reaches above the wire layer: {above}"
