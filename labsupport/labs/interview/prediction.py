"""Client-side prediction and lag compensation, simulated tick by tick.

One player holds "right" for a second, then "left", on a link with a one-way
latency. The server applies inputs when they arrive and sends its state every
tick; the client either waits for that state (no prediction) or moves at once
and reconciles with each state it receives (prediction). Lag compensation:
the server checks a shot against where the target *was* when the shooter saw
it, from its history of states.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Trace", "simulate", "shot_hits"]

TICK = 0.05          # the game server's 20 Hz
SPEED = 120.0        # units a second
STEP = 0.005         # simulation resolution, 5 ms


@dataclass
class Trace:
    """Positions over time (seconds) as the server and the two clients show them."""

    times: list[float]
    server: list[float]
    no_prediction: list[float]
    prediction: list[float]


def _input_at(ms: int) -> int:
    """The direction held at ``ms`` milliseconds: right for 1 s, then left, then still."""
    return 1 if 0 <= ms < 1000 else -1 if 1000 <= ms < 1600 else 0


def simulate(latency: float = 0.1, seconds: float = 2.0) -> Trace:
    """Positions every 5 ms over ``seconds`` with ``latency`` seconds each way."""
    lag, tick, step = round(latency * 1000), round(TICK * 1000), round(STEP * 1000)
    per_ms = SPEED / 1000
    times, server_xs, waiting_xs, predicted_xs = [], [], [], []
    server_x, shown = 0.0, 0.0
    states: list[tuple[int, float, int]] = []   # (arrives at client, server x, inputs up to)
    for now in range(0, round(seconds * 1000) + 1, step):
        if now and now % tick == 0:
            # the server applies the tick of input that has just reached it
            sent = now - lag - tick
            if sent >= 0:
                server_x += _input_at(sent) * per_ms * tick
            states.append((now + lag, server_x, max(0, now - lag)))
        arrived = [state for state in states if state[0] <= now]
        acked = 0
        if arrived:
            _, shown, acked = arrived[-1]
        # prediction: the server's last word plus the inputs it has not applied yet
        pending = sum(_input_at(ms) for ms in range(acked, now)) * per_ms
        times.append(now / 1000)
        server_xs.append(server_x)
        waiting_xs.append(shown)
        predicted_xs.append(shown + pending)
    return Trace(times, server_xs, waiting_xs, predicted_xs)


def shot_hits(latency: float, *, interpolation: float = 0.1, speed: float = SPEED,
              radius: float = 10.0, rewind: bool = True, latency_error: float = 0.0) -> bool:
    """Does a shot aimed exactly at a moving target hit, as the server judges it?

    The shooter's screen shows the target ``latency + interpolation`` seconds
    in the past, and the shot reaches the server ``latency`` seconds after it
    is fired. Without ``rewind`` the server tests it against where the target
    is when the shot arrives; with it, against where the target was when the
    shooter saw it, using its estimate of the latency (off by ``latency_error``).
    """
    def target_x(t: float) -> float:
        return speed * t

    fired = 10.0
    aimed_at = target_x(fired - latency - interpolation)
    arrives = fired + latency
    estimate = latency + latency_error
    judged_at = arrives - estimate - (estimate + interpolation) if rewind else arrives
    return abs(target_x(judged_at) - aimed_at) <= radius
