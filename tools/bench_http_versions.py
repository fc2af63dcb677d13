"""Benchmark of the HTTP versions lab: Run-All, round trips, header bytes, head-of-line blocking.

    python -m tools.bench_http_versions [--seeds 5] [--no-notebook]

- Run-All of 10-http-versions against its 60 s budget, as a ratio to a bare kernel start;
- round trips to the first byte of each handshake, twice (counts: they must not change);
- HPACK and QPACK bytes of the first and tenth request, as ratios to HTTP/1.1's head;
- for ``seeds`` loss patterns (1.5 %), the streams each loss held up over HTTP/2 (TCP loss
  model) and HTTP/3 (real datagram loss), and the last stream's completion time, median
  and spread (the HTTP/2 times are the model's 200 ms per loss; compare counts first).

Prints figures; it asserts nothing (the tests check behaviour, this measures it).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import nbformat

from labsupport.labs import http_versions as hv
from labsupport.labs.http_versions import compression, handshakes, hol
from labsupport.wire import LossPattern
from tools.bench import baseline, timed_run

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "10-http-versions.ipynb"
BUDGET_S = 60.0


def bench_notebook() -> None:
    base_s, _ = baseline()
    seconds, peak = timed_run(nbformat.read(NOTEBOOK, as_version=4))
    print(f"Run-All {NOTEBOOK.stem}: {seconds:.1f} s ({seconds / BUDGET_S:.0%} of the "
          f"{BUDGET_S:.0f} s budget), {seconds / base_s:.1f}x a bare kernel with imports, "
          f"peak {peak:.0f} MB")


def bench_round_trips(server: hv.HTTPVersionsHandle) -> None:
    runs = [[(h.name, h.round_trips) for h in handshakes.all_handshakes(server.port)]
            for _ in range(2)]
    same = "identical in both runs" if runs[0] == runs[1] else "DIFFERENT between runs"
    print("round trips to the first byte (" + same + "):")
    for name, trips in runs[0]:
        print(f"  {name:22} {trips}")


def bench_headers(server: hv.HTTPVersionsHandle) -> None:
    sizes = compression.measure(server)
    h1 = sizes.http1[0]
    print(f"header bytes, request 1 -> request 10, as a ratio to HTTP/1.1's {h1}-byte head:")
    for name, values in (("HPACK", sizes.hpack), ("QPACK", sizes.qpack)):
        print(f"  {name}: {values[0]} -> {values[-1]} B  ({values[0] / h1:.2f}x -> "
              f"{values[-1] / h1:.2f}x)")
    print(f"  QPACK encoder stream, once: {sum(sizes.qpack_encoder_stream)} B")


def bench_hol(server: hv.HTTPVersionsHandle, seeds: int) -> None:
    held: dict[str, list[int]] = {"h2": [], "h3": []}
    last: dict[str, list[float]] = {"h2": [], "h3": []}
    for seed in range(1, seeds + 1):
        for key, run in zip(("h2", "h3"), hol.compare(server, LossPattern(0.015, seed)),
                            strict=True):
            held[key].append(run.held_up)
            last[key].append(max(s.finished_ms for s in run.streams))
    print(f"8 streams x 40 kB under 1.5 % loss, {seeds} seeds: streams held up / last stream")
    for key, label in (("h2", "HTTP/2 (TCP model)"), ("h3", "HTTP/3 (real loss)")):
        spread = max(last[key]) - min(last[key])
        print(f"  {label:20} held up {held[key]}; last stream median "
              f"{statistics.median(last[key]):.0f} ms, spread {spread:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--no-notebook", action="store_true")
    args = parser.parse_args()
    with hv.start(name="bench-http-versions") as server:
        bench_round_trips(server)
        bench_headers(server)
        bench_hol(server, args.seeds)
    if not args.no_notebook:
        bench_notebook()


if __name__ == "__main__":
    main()
