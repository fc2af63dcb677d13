"""Binder builds the repository: environment.yml into the server's environment, then postBuild."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = Path(sys.prefix) / "share" / "jupyter" / "lab" / "schemas"


def test_environment_yml_installs_the_labs_into_a_python_3_environment() -> None:
    text = (ROOT / "environment.yml").read_text()
    # repo2docker installs a Python 3 environment.yml into the Jupyter server's own environment
    # (only Python 2 gets a separate kernel environment), and stages the repository first
    # when the pip section installs it with "-e .".
    assert "  - python=3." in text
    assert "      - -e .\n" in text


def test_postbuild_writes_lab_settings_that_jupyterlab_accepts(tmp_path: Path) -> None:
    env = {**os.environ, "NB_PYTHON_PREFIX": str(tmp_path)}
    subprocess.run(["bash", str(ROOT / "postBuild")], env=env, check=True, timeout=30)
    overrides = json.loads((tmp_path / "share/jupyter/lab/settings/overrides.json").read_text())
    for plugin, settings in overrides.items():
        package, _, name = plugin.partition(":")
        schema = json.loads((SCHEMAS / package / f"{name}.json").read_text())
        for key, value in settings.items():
            spec = schema["properties"][key]
            allowed = [choice["const"] for choice in spec.get("oneOf", [])]
            assert value in allowed if allowed else isinstance(value, bool), (plugin, key, value)
    notification = overrides["@jupyterlab/apputils-extension:notification"]
    assert notification == {"checkForUpdates": False, "fetchNews": "false"}
