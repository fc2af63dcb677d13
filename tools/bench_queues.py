"""Benchmark of the queues lab: a direct call vs NATS JetStream, as ratios to a core-NATS trip.

    python tools/bench_queues.py [--rounds 3] [--count 300] [--messages 200] [--no-notebook]

Prints figures; it asserts nothing (the tests check behaviour, this measures it).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from labsupport import queues  # noqa: E402
from labsupport.labs.queues import direct, measure  # noqa: E402

FLOOR = "core NATS request-reply"


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def bench_start(rounds: int) -> None:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        broker = queues.start(name="bench-start")
        times.append(time.perf_counter() - started)
        memory = rss_mb(broker.nodes[0].pid)
        broker.stop()
    started = time.perf_counter()
    cluster = queues.start(cluster=3, name="bench-cluster")
    cluster_time = time.perf_counter() - started
    cluster.stop()
    median = statistics.median(times) * 1e3
    print(f"broker start (watchdog + nats-server, ready): median {median:.0f} ms; "
          f"3-node cluster with a meta leader: {cluster_time * 1e3:.0f} ms; "
          f"nats-server RSS after start: {memory:.0f} MB")


def bench_latency(rounds: int, count: int, messages: int) -> None:
    runs = []
    with queues.start(name="bench") as broker, direct.start_notifier(name="bench-notifier") as n:
        for _ in range(rounds):
            runs.append(asyncio.run(measure.measure(broker.url, n.url, count=count,
                                                    messages=messages)))
    results = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    floor = results[FLOOR]
    print(f"\nlatency, median of {rounds} runs x {count} samples, as ratios to {FLOOR} "
          f"({floor * 1e6:.0f} us here)")
    for key, value in measure.ratios(results).items():
        print(f"  {key:<34} x{value:5.2f}")
    one, four = results["drain, 1 worker"], results["drain, 4 workers"]
    print(f"throughput, {messages} messages each waiting 5 ms: 1 worker {messages / one:.0f} msg/s,"
          f" 4 workers {messages / four:.0f} msg/s (x{one / four:.1f})")


def bench_notebook() -> None:
    from tools.notebooks import execute

    path = ROOT / "notebooks" / "07-queues-vs-direct.ipynb"
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    execute(notebook)
    print(f"\nRun-All 07-queues-vs-direct: {time.perf_counter() - started:.1f} s "
          "(kernel start included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--no-notebook", action="store_true")
    args = parser.parse_args()
    bench_start(args.rounds)
    bench_latency(args.rounds, args.count, args.messages)
    if not args.no_notebook:
        bench_notebook()


if __name__ == "__main__":
    main()
