"""Measure the WebSockets lab's chat: round trips on loopback and broadcast fan-out.

    python -m tools.bench_websockets [--rounds 200]

Prints medians and 95th percentiles, and the ratios that matter: a chat message's
round trip (stored in SQLite, then broadcast) against a bare ping/pong, and the
time for a message to reach all 20 members of a room against reaching one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from websockets.asyncio.client import connect

from labsupport import chat

FAN_OUT = 20


def summary(samples: list[float]) -> tuple[float, float]:
    """Median and 95th percentile, in milliseconds."""
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000


async def joined(server, user_id: int, room_id: str):
    ws = await connect(f"{server.ws_url}?token={server.token_for(user_id)}", open_timeout=5)
    await ws.recv()
    await ws.send(json.dumps({"type": "join_chat", "room_id": room_id}))
    return ws


async def until(ws, kind: str) -> dict:
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if event["type"] == kind:
            return event


async def ping_round_trips(ws, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await asyncio.wait_for(await ws.ping(), 5)
        samples.append(time.perf_counter() - started)
    return samples


async def message_round_trips(ws, room_id: str, rounds: int) -> list[float]:
    samples = []
    for n in range(rounds):
        started = time.perf_counter()
        await ws.send(json.dumps({"type": "send_message", "room_id": room_id,
                                  "message": f"bench {n}"}))
        await until(ws, "new_message")
        samples.append(time.perf_counter() - started)
    return samples


async def fan_out_times(members: list, room_id: str, rounds: int) -> list[float]:
    """Seconds from one member's send until the last of them has the message."""
    sender = members[0]
    samples = []
    for n in range(rounds):
        started = time.perf_counter()
        await sender.send(json.dumps({"type": "send_message", "room_id": room_id,
                                      "message": f"fan-out {n}"}))
        await asyncio.gather(*(until(ws, "new_message") for ws in members))
        samples.append(time.perf_counter() - started)
    return samples


async def measure(server, rounds: int) -> dict[str, list[float]]:
    solo = await joined(server, 101, "solo")
    await until(solo, "user_joined")
    results = {
        "ping -> pong": await ping_round_trips(solo, rounds),
        "send_message -> new_message (1 member)": await message_round_trips(solo, "solo", rounds),
    }
    await solo.close()
    members = [await joined(server, 101 + i, "crowd") for i in range(FAN_OUT)]
    while len(server.app.members("crowd")) < FAN_OUT:
        await asyncio.sleep(0.01)
    for ws in members:  # drain the user_joined notices
        while True:
            try:
                await asyncio.wait_for(ws.recv(), 0.05)
            except TimeoutError:
                break
    results[f"send_message -> all {FAN_OUT} members"] = await fan_out_times(
        members, "crowd", rounds)
    for ws in members:
        await ws.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    started = time.perf_counter()
    server = chat.start(name="websockets-bench")
    start_up = time.perf_counter() - started
    try:
        results = asyncio.run(measure(server, args.rounds))
    finally:
        server.stop()
    print(f"chat.start() took {start_up * 1000:.1f} ms (fresh database included)")
    print(f"{args.rounds} rounds each, on loopback:")
    medians = {}
    for name, samples in results.items():
        median, p95 = summary(samples)
        medians[name] = median
        print(f"  {name:<40} median {median:7.3f} ms   p95 {p95:7.3f} ms")
    ping, one, many = medians.values()
    print(f"a chat message's round trip is {one / ping:.1f}x a ping's "
          "(JSON, a SQLite commit, the broadcast)")
    print(f"reaching all {FAN_OUT} members takes {many / one:.1f}x reaching one "
          f"({many / FAN_OUT:.3f} ms per member)")


if __name__ == "__main__":
    main()
