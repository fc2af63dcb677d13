"""CONTRIBUTING.md matches the code: every module, file, name and command it mentions exists."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "CONTRIBUTING.md").read_text()
QUOTED = re.findall(r"`([^`\n]+)`", GUIDE)
#: The shared modules, named in the guide as ``module.name``.
SHARED = {path.stem for path in (ROOT / "labsupport").glob("*.py")} | {"wire"}


def _resolves(dotted: str) -> bool:
    """``a.b.c`` is a module, or a name inside the longest module it starts with."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module = ".".join(parts[:cut])
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            value: object = importlib.import_module(module)
            for name in parts[cut:]:
                if not hasattr(value, name):
                    return False
                value = getattr(value, name)
            return True
    return False


def _paths() -> list[str]:
    found = [p for q in QUOTED for p in re.findall(r"^((?:[\w.-]+/)+[\w.-]*)$", q)]
    found += re.findall(r"^((?:[\w.-]+/)+[\w.-]+\.\w+)\b", GUIDE, re.M)  # the layout sketch
    return sorted({p for p in found if "<" not in p and "webhooks" not in p})


def _names() -> list[str]:
    names = set()
    for quoted in QUOTED:
        for dotted in re.findall(r"\b(labsupport(?:\.\w+)+)", quoted):
            names.add(dotted)
        match = re.match(r"^(\w+)\.(\w+)\b", quoted)
        if match and match.group(1) in SHARED and match.group(2) != "py":
            names.add(f"labsupport.{match.group(1)}.{match.group(2)}")
    return sorted(names)


def _commands() -> list[str]:
    return sorted(set(re.findall(r"python -m ([\w.]+)", GUIDE)))


@pytest.mark.parametrize("path", _paths())
def test_each_file_it_names_exists(path):
    assert (ROOT / path).exists() or (ROOT / "labsupport" / path).exists(), path


@pytest.mark.parametrize("name", _names())
def test_each_module_and_name_it_names_exists(name):
    assert _resolves(name), name


@pytest.mark.parametrize("module", _commands())
def test_each_python_command_it_names_exists(module):
    assert importlib.util.find_spec(module) is not None, f"python -m {module}"


def test_each_make_target_it_names_exists():
    makefile = (ROOT / "Makefile").read_text()
    targets = {m for q in QUOTED for m in re.findall(r"^make ([\w-]+)", q, re.M)}
    targets |= set(re.findall(r"^make ([\w-]+)", GUIDE, re.M))
    assert {"test", "quick", "check-env"} <= targets
    for target in targets:
        assert re.search(rf"^{target}:", makefile, re.M), f"make {target}"


def test_each_lab_in_its_table_is_registered_with_that_package_and_slug():
    from labsupport.labs import LABS

    rows = re.findall(r"^\| ([\d]{2}-[\w-]+) \| `(\w+)` \| `(\w+)`", GUIDE, re.M)
    assert rows == [(lab.notebook, lab.slug, lab.tests) for lab in LABS]


def test_it_finds_what_it_checks():
    """The checks above look at something: the guide's paths, names and commands are found."""
    assert len(_paths()) > 20 and len(_names()) > 10 and len(_commands()) >= 4
