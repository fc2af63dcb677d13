"""The choosing lab's decision matrix, measured outside Jupyter: the same table as the notebook.

    python -m tools.bench_choosing [--scale 4] [--upload-mb 20] [--idle 1000] [--notebook]
                                   [--profile 4g]

Every time is printed as a ratio to the raw TCP floor measured in the same run.
``--scale`` (default ``$PROTOCOL_LAB_SCALE`` or 4) multiplies rounds, messages and
durations; the upload and the idle connections take their full sizes by default.
``--profile`` names the network profile of the production-served CRUD table (counts,
then the time on the profile beside the model, then loopback apart; default cable).
``--notebook`` also times Run-All of notebooks/08-choosing-a-protocol.ipynb at
its default sizes. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

from labsupport.labs.choosing import evidence, experiments, matrix, resources, serve
from labsupport.labs.choosing.driver import Run, scale_from_env

ROOT = Path(__file__).resolve().parent.parent


def raise_open_files(wanted: int) -> None:
    """Enough file descriptors for ``wanted`` idle sockets here and in the server's process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, wanted))
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def print_results(run: Run) -> None:
    print(f"floor: raw TCP round trip of 64 B through the tap, median of {run.floor.rounds} "
          f"(= 1×): {run.floor.rtt * 1e6:.0f} µs on this machine")
    for row in dict.fromkeys(r.row for r in run.results):
        print(f"\n{row}")
        for result in (r for r in run.results if r.row == row):
            summary = result.summary(run.floor)
            del summary["row"]
            protocol = summary.pop("protocol")
            print(f"  {protocol:<13}" + ", ".join(f"{k}: {v}" for k, v in summary.items()))


def print_verdicts(run: Run) -> None:
    print("\nthe document's matrix, judged")
    for cell in matrix.judge(run):
        print(f"  {cell.use_case:<16} {cell.protocol:<13} {cell.document:<17} "
              f"{cell.verdict:<13} {cell.measured}  [{cell.why}]")


def print_production(link: str, repeats: int) -> None:
    print(f"\nCRUD served as in production, a cycle counted, then timed on {link} "
          f"({repeats} repetitions)")
    with serve.spawn("production") as child:
        for row in evidence.table(evidence.measure_all(child, repeats=repeats, link=link)):
            print("  " + ", ".join(f"{k}: {v}" for k, v in row.items()))


def time_notebook() -> None:
    import nbformat

    from tools.notebooks import execute

    path = ROOT / "notebooks" / "08-choosing-a-protocol.ipynb"
    started = time.perf_counter()
    execute(nbformat.read(path, as_version=4))
    print(f"\nRun-All of {path.name} at default sizes: {time.perf_counter() - started:.1f} s "
          f"(target: under 60 s on 2 cores)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=scale_from_env(4.0))
    parser.add_argument("--upload-mb", type=float, default=20)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--notebook", action="store_true")
    parser.add_argument("--profile", default="cable")
    options = parser.parse_args()
    raise_open_files(2 * options.idle + 256)
    started = time.perf_counter()
    with Run(scale=options.scale, prefix="bench-choosing") as run:
        for experiment in experiments.ALL:
            cast(Callable[[Run], object], experiment)(run)
        resources.upload(run, megabytes=options.upload_mb)
        resources.idle_connections(run, count=options.idle)
        print(f"scale {options.scale:g}: every experiment in {time.perf_counter() - started:.0f} s")
        print_results(run)
        print_verdicts(run)
    print_production(options.profile, max(5, round(5 * options.scale)))
    if options.notebook:
        time_notebook()


if __name__ == "__main__":
    main()
