"""Benchmark of the interview lab: its Run-All budget, game bandwidth, and Q5's delivery time.

    python -m tools.bench_interview [--rounds 3] [--orders 20] [--no-notebook]

- Run-All of 09-interview-questions against its 60 s budget, and as a ratio to a
  bare kernel start with the labs' imports;
- bytes per second to one game client per encoding, median of ``rounds``
  seconds, as ratios to the delta encoding;
- order placed -> notification on the user's SSE stream through the queues
  lab's pipeline (outbox, JetStream, worker, delivery policy), as a ratio to a
  loopback TCP round trip measured in the same run.

Prints figures; it asserts nothing (the tests check behaviour, this measures it).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time
from pathlib import Path

import nbformat
import requests

from labsupport import queues
from labsupport.labs.interview import game, notifications
from labsupport.labs.sse.server import Listener
from tools.bench import baseline, timed_run

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "09-interview-questions.ipynb"
BUDGET_S = 60.0


def bench_notebook() -> None:
    base_s, _ = baseline()
    seconds, peak = timed_run(nbformat.read(NOTEBOOK, as_version=4))
    print(f"Run-All {NOTEBOOK.stem}: {seconds:.1f} s ({seconds / BUDGET_S:.0%} of the "
          f"{BUDGET_S:.0f} s budget), {seconds / base_s:.1f}x a bare kernel with imports, "
          f"peak {peak:.0f} MB")


def bench_game(rounds: int) -> None:
    samples: dict[str, list[float]] = {mode: [] for mode in game.MODES}
    with game.start(name="bench-game") as server:
        for _ in range(rounds):
            for row in game.measure(server, 1.0):
                samples[row["mode"]].append(row["wire_bytes_per_s"])
    delta = statistics.median(samples["delta"])
    print(f"game, 8 players at 20 ticks/s, bytes/s to one client (median of {rounds} s), "
          "as a ratio to delta:")
    for mode, values in samples.items():
        print(f"  {mode:8} {statistics.median(values) / delta:5.2f}x")


def tcp_round_trip(samples: int = 200) -> float:
    """Median loopback TCP round trip of one small message, in seconds (the floor)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        def echo() -> None:
            conn, _ = listener.accept()
            with conn:
                while data := conn.recv(64):
                    conn.sendall(data)

        threading.Thread(target=echo, daemon=True).start()
        with socket.create_connection(listener.getsockname()) as client:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            times = []
            for _ in range(samples):
                started = time.perf_counter()
                client.sendall(b"ping")
                client.recv(64)
                times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_delivery(orders: int) -> None:
    floor = tcp_round_trip()
    with queues.start(name="bench-broker") as broker, \
            queues.pipeline.start(broker, name="bench-pipeline", worker=False) as pipeline:
        delivery = notifications.attach(pipeline, burst=orders, per_second=100.0)
        listener = Listener(f"{pipeline.url}/events?client_id=user-101")
        times = []
        try:
            for n in range(orders):
                started = time.perf_counter()
                requests.post(f"{pipeline.url}/orders", json={"user_id": 101, "item": "pen"},
                              timeout=5).raise_for_status()
                if len(listener.wait_for(n + 1, timeout=5)) <= n:
                    print(f"  order {n} was not delivered within 5 s")
                    break
                times.append(time.perf_counter() - started)
        finally:
            listener.close()
            delivery.close()
    median = statistics.median(times)
    print(f"Q5 order -> push through outbox, JetStream, worker and SSE ({len(times)} orders): "
          f"median {median / floor:.0f}x a loopback TCP round trip, "
          f"p90 {sorted(times)[int(0.9 * (len(times) - 1))] / floor:.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--orders", type=int, default=20)
    parser.add_argument("--no-notebook", action="store_true")
    args = parser.parse_args()
    bench_game(args.rounds)
    bench_delivery(args.orders)
    if not args.no_notebook:
        bench_notebook()


if __name__ == "__main__":
    main()
