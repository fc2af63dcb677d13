"""Measure the collection's speed and memory targets (run by `make bench`; not a test).

- Run-All of each notebook, as a ratio to a bare kernel start plus the labs' imports;
- the kernel's peak memory (max RSS) after each notebook;
- how soon a lab server answers its first request after its start call;
- that 20 starts of the REST lab leave no extra threads or open file descriptors.
"""

from __future__ import annotations

import os
import statistics
import threading
import time

import nbformat
import requests
from nbformat.v4 import new_code_cell

from tools.notebooks import NOTEBOOKS, execute

BASELINE = "import requests, flask, sqlalchemy, labsupport"
PEAK_RSS = "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"


def timed_run(notebook: nbformat.NotebookNode) -> tuple[float, float]:
    """Seconds to start a kernel and run every cell, and the kernel's peak RSS in MB."""
    notebook.cells.append(new_code_cell(PEAK_RSS))
    started = time.perf_counter()
    execute(notebook)
    seconds = time.perf_counter() - started
    peak_kb = int(notebook.cells[-1].outputs[0]["text"])
    return seconds, peak_kb / 1024


def baseline(repeats: int = 3) -> tuple[float, float]:
    runs = [timed_run(nbformat.v4.new_notebook(cells=[new_code_cell(BASELINE)]))
            for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def notebooks_report() -> None:
    base_s, base_mb = baseline()
    print(f"bare kernel + imports: {base_s:.2f} s, peak {base_mb:.0f} MB")
    print(f"{'notebook':<24} {'run-all':>8} {'ratio':>6} {'peak MB':>8}")
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        seconds, peak = timed_run(nbformat.read(path, as_version=4))
        print(f"{path.stem:<24} {seconds:>7.2f}s {seconds / base_s:>6.2f} {peak:>8.0f}")


def first_request_report(starts: int = 20) -> None:
    from labsupport import rest

    for fresh in (True, False):
        latencies = []
        for _ in range(starts):
            started = time.perf_counter()
            server = rest.start(fresh_data=fresh)
            response = requests.get(f"{server.url}/api/v1/users/101", timeout=5)
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        server.stop()
        what = "with a fresh database" if fresh else "keeping the data"
        print(f"REST start -> first response, {what}: median {statistics.median(latencies):.1f} "
              f"ms, max {max(latencies):.1f} ms over {starts} starts")


def leak_report(starts: int = 20) -> None:
    from labsupport import rest

    with rest.start() as warm_up:  # the current database then holds its one pooled connection
        requests.get(f"{warm_up.url}/api/v1/users/101", timeout=5)
    threads, fds = threading.active_count(), len(os.listdir(f"/proc/{os.getpid()}/fd"))
    for _ in range(starts):
        server = rest.start()
        requests.get(f"{server.url}/api/v1/users/101", timeout=5)
    server.stop()
    time.sleep(0.2)
    extra_threads = threading.active_count() - threads
    extra_fds = len(os.listdir(f"/proc/{os.getpid()}/fd")) - fds
    print(f"after {starts} REST starts: {extra_threads} extra threads, {extra_fds} extra fds")


if __name__ == "__main__":
    first_request_report()
    leak_report()
    notebooks_report()
