"""Run-All of notebook 08 several times, idle and with one core busy: does any verdict move?

    python -m tools.choosing_stability [--idle 5] [--busy 3] [--slowest 8] [--json out.json]
                                       [--unpinned]

Each run executes notebooks/08-choosing-a-protocol.ipynb in a fresh kernel (as
``tools.notebooks`` does), with one cell added at the end that prints every judged
cell's verdict (the matrix, and the budgets on their networks) as JSON. A busy run
keeps one core busy with ``yes > /dev/null`` for its whole length and ends it after.
For each run it records ``/proc/loadavg`` at the start, the Run-All time and the time
of each cell; then prints the table of verdicts across runs, marking the cells whose
verdict changed, and the slowest cells (median over the runs). ``--unpinned`` judges
the cells that ``matrix.MOVED`` and ``budgets.MOVED`` pin to "too close to call" by
their measurements, as every other cell, to see whether they still move.

Not a test: it takes about a minute a run, and prints figures; it asserts nothing.
Other work on the machine moves the clocks: read the load column.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat

from tools.notebooks import execute

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "08-choosing-a-protocol.ipynb"
MARK = "VERDICTS:"
REPORT = f"""
import json as _json
print({MARK!r} + _json.dumps(
    [[c.use_case, c.protocol, c.verdict] for c in cells if c.verdict != "not measured"]
    + [["budget: " + v.use_case, v.protocol, v.verdict] for v in budget_verdicts]))
"""


def _seconds(cell: Any) -> float:
    timing = cell.get("metadata", {}).get("execution", {})
    try:
        start = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
    except KeyError:
        return 0.0
    return (end - start).total_seconds()


UNPIN = """
from labsupport.labs.choosing import budgets as _budgets, matrix as _matrix
_matrix.MOVED.clear()
_budgets.MOVED.clear()
"""


def one_run(busy: bool, unpinned: bool = False) -> dict[str, Any]:
    """Run-All once: load at the start, total and per-cell seconds, verdicts by cell."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    if unpinned:
        notebook.cells.insert(0, nbformat.v4.new_code_cell(UNPIN))
    notebook.cells.append(nbformat.v4.new_code_cell(REPORT))
    load = Path("/proc/loadavg").read_text().split()[:3]
    burner = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) if busy else None
    try:
        started = time.perf_counter()
        execute(notebook)
        total = time.perf_counter() - started
    finally:
        if burner is not None:
            burner.kill()
            burner.wait(5)
    printed = "".join(o.get("text", "") for o in notebook.cells[-1].get("outputs", []))
    verdicts = json.loads(printed.split(MARK, 1)[1])
    shown = notebook.cells[1 if unpinned else 0:-1]   # indices as in the notebook
    cells = {i: _seconds(c) for i, c in enumerate(shown) if c.cell_type == "code"}
    return {"busy": busy, "load": " ".join(load), "seconds": round(total, 1),
            "cells": cells, "verdicts": {f"{u} / {p}": v for u, p, v in verdicts}}


def report(runs: list[dict[str, Any]], slowest: int) -> None:
    print("\nrun  busy  loadavg at start   Run-All s")
    for n, run in enumerate(runs, 1):
        busy = "yes" if run["busy"] else "no"
        print(f"{n:>3}  {busy:<4}  {run['load']:<17}  {run['seconds']:>7}")
    idle = [r["seconds"] for r in runs if not r["busy"]]
    loaded = [r["seconds"] for r in runs if r["busy"]]
    if idle and loaded:
        print(f"median idle {statistics.median(idle):.1f} s, busy "
              f"{statistics.median(loaded):.1f} s, busy/idle "
              f"{statistics.median(loaded) / statistics.median(idle):.2f}")
    keys = list(dict.fromkeys(k for run in runs for k in run["verdicts"]))
    short = {"confirmed": "conf", "contradicted": "contra", "nuanced": "nuanc",
             "too close to call": "close", "within budget": "within", "over budget": "over"}
    print(f"\n{'cell':<42} " + " ".join(f"{n:>6}" for n in range(1, len(runs) + 1)))
    flips = 0
    for key in keys:
        seen = [run["verdicts"].get(key, "—") for run in runs]
        moved = len(set(seen)) > 1
        flips += moved
        print(f"{key:<42} " + " ".join(f"{short.get(v, v):>6}" for v in seen)
              + ("   <- moved" if moved else ""))
    print(f"\n{flips} of {len(keys)} judged cells changed verdict across {len(runs)} runs")
    medians = {i: statistics.median(run["cells"].get(i, 0.0) for run in runs)
               for i in runs[0]["cells"]}
    print("\nslowest cells (median s over the runs; cell index in the notebook):")
    for i, seconds in sorted(medians.items(), key=lambda item: -item[1])[:slowest]:
        print(f"  cell {i:>3}: {seconds:5.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=5, help="runs with nothing added")
    parser.add_argument("--busy", type=int, default=3, help="runs with one core kept busy")
    parser.add_argument("--slowest", type=int, default=8)
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    parser.add_argument("--unpinned", action="store_true",
                        help="judge the MOVED cells by their measurements too")
    options = parser.parse_args()
    runs = []
    for busy in [False] * options.idle + [True] * options.busy:
        runs.append(one_run(busy, options.unpinned))
        run = runs[-1]
        print(f"run {len(runs)}: busy={run['busy']} load {run['load']} -> {run['seconds']} s",
              flush=True)
        if options.json:
            options.json.write_text(json.dumps(runs, indent=1))
    report(runs, options.slowest)


if __name__ == "__main__":
    main()
