"""Every exercise's reference passes its check in a fresh interpreter, before any lab has started.

A learner who restarts the kernel and runs a check cell first must be told
"passed" for a right answer: a check starts the servers and the data it needs.
Each exercise runs in its own interpreter (the venv's Python), so nothing
another cell or another check did can help it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from labsupport.engine import _load_all

pytestmark = pytest.mark.slow  # one interpreter an exercise: `make quick` leaves it out

#: The labs' exercises (not those a test registers for itself).
IDS = sorted(id for id, ex in _load_all().items()
             if ex.checker.__module__.startswith("labsupport.labs."))

RUN = """
import sys
from labsupport import check
from labsupport.engine import get
verdict = check(sys.argv[1], get(sys.argv[1]).reference)
print(verdict)
sys.exit(0 if verdict.passed else 1)
"""


@pytest.mark.parametrize("id", IDS)
def test_reference_passes_in_a_fresh_interpreter(id: str, tmp_path: Path) -> None:
    env = {**os.environ, "PROTOCOL_LAB_PROGRESS": str(tmp_path / "progress.json")}
    run = subprocess.run([sys.executable, "-c", RUN, id], capture_output=True, text=True,
                         timeout=120, env=env, cwd=tmp_path)
    assert run.returncode == 0, f"{id} in a fresh interpreter: {run.stdout[-1500:]}" \
                                f"{run.stderr[-1500:]}"
