"""pyproject.toml and environment.yml must install the same packages at the same pins."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def normalise(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement).lower()


def pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {normalise(r) for r in project["dependencies"]}


def environment_requirements() -> set[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = lines.index("  - pip:")
    pip_lines = [line.strip()[2:] for line in lines[start + 1:] if line.startswith("      - ")]
    return {normalise(r) for r in pip_lines if r != "-e ."}


def test_environment_yml_matches_pyproject() -> None:
    only_pyproject = pyproject_requirements() - environment_requirements()
    only_environment = environment_requirements() - pyproject_requirements()
    assert not only_pyproject, f"missing from environment.yml: {sorted(only_pyproject)}"
    assert not only_environment, f"missing from pyproject.toml: {sorted(only_environment)}"


def test_grpc_packages_and_protobuf_are_pinned_together() -> None:
    pins = {}
    for requirement in pyproject_requirements():
        name, _, version = requirement.partition("==")
        if version:
            pins[name] = version
    grpc_versions = {v for n, v in pins.items() if n.startswith("grpcio")}
    assert len(grpc_versions) == 1, f"grpcio packages pinned apart: {pins}"
    assert "protobuf" in pins, "protobuf must be pinned exactly beside grpcio-tools"


def test_environment_yml_uses_python_311() -> None:
    assert "  - python=3.11" in (ROOT / "environment.yml").read_text()
