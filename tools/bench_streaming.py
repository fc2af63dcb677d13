"""Benchmark of the SSE and long-polling labs: latency, requests, and notebook Run-All time.

    python -m tools.bench_streaming [--rounds 5] [--count 100] [--no-notebooks]

Prints figures; it asserts nothing (the tests check behaviour, this measures it).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import nbformat

from labsupport.labs.long_polling import comparison as push_comparison

ROOT = Path(__file__).resolve().parent.parent


def bench_push(rounds: int, count: int) -> None:
    results: dict[str, list[dict]] = {"SSE": [], "long polling": []}
    for _ in range(rounds):
        for row in push_comparison.compare(count):
            results[row["protocol"]].append(row)
    print(f"publish-to-receive, {count} notifications 5 ms apart, one client, {rounds} rounds "
          f"(median of the rounds)")
    print(f"{'protocol':<14}{'received':>9}{'requests':>10}{'connections':>13}"
          f"{'median ms':>11}{'p95 ms':>9}")
    medians = {}
    for protocol, rows in results.items():
        median = statistics.median(r["median_ms"] for r in rows)
        p95 = statistics.median(r["p95_ms"] for r in rows)
        requests = statistics.median(r["requests"] for r in rows)
        connections = statistics.median(r["connections_opened"] for r in rows)
        received = min(r["received"] for r in rows)
        medians[protocol] = (median, p95, requests)
        print(f"{protocol:<14}{received:>9}{requests:>10g}{connections:>13g}{median:>11.2f}"
              f"{p95:>9.2f}")
    sse_median, sse_p95, sse_requests = medians["SSE"]
    lp_median, lp_p95, lp_requests = medians["long polling"]
    print(f"long polling / SSE: median latency x{lp_median / sse_median:.1f}, "
          f"p95 x{lp_p95 / sse_p95:.1f}, requests x{lp_requests / sse_requests:.0f}")


def bench_notebooks() -> None:
    from tools.notebooks import execute

    for name in ("05-sse", "06-long-polling"):
        path = ROOT / "notebooks" / f"{name}.ipynb"
        notebook = nbformat.read(path, as_version=4)
        started = time.perf_counter()
        execute(notebook)
        print(f"Run-All {name}: {time.perf_counter() - started:.1f} s (kernel start included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--no-notebooks", action="store_true")
    args = parser.parse_args()
    bench_push(args.rounds, args.count)
    if not args.no_notebooks:
        bench_notebooks()


if __name__ == "__main__":
    main()
