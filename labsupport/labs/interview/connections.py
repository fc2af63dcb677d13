"""09's practices on holding many long-lived connections, each judged against a measurement.

- ``interview.capacity``: servers for N open connections, judged on cases drawn at check
  time from the memory one idle WebSocket measurably costs (:mod:`.capacity`) and this
  machine's socket buffer minimums.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...engine import NotAttempted, Unmet, cases, exercise, expect
from . import capacity

NOTEBOOK = "09-interview-questions"
GIB = 2**30

# --- servers for a million connections ------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One question: ``connections`` to hold on servers of ``server_memory`` bytes."""

    connections: int
    user_bytes: int
    kernel_bytes: int
    server_memory: int
    headroom: float
    max_fds: int

    def args(self) -> tuple[int, int, int, int, float, int]:
        return (self.connections, self.user_bytes, self.kernel_bytes, self.server_memory,
                self.headroom, self.max_fds)

    def __str__(self) -> str:
        return (f"{self.connections:,} connections at {self.user_bytes:,} B in the process + "
                f"{self.kernel_bytes:,} B in the kernel each, {self.server_memory // GIB} GiB "
                f"servers kept {self.headroom:.0%} free, at most {self.max_fds:,} descriptors "
                "per process")


def _answers(case: Case, *, kernel: bool = True, headroom: bool = True, fds: bool = True,
             rounding: Callable[[float], int] = math.ceil) -> set[int]:
    """The servers ``case`` needs, computed both ways a careful answer may (per-server count
    first, or total memory first), with one step optionally left out."""
    per = case.user_bytes + (case.kernel_bytes if kernel else 0)
    usable = case.server_memory * (1 - (case.headroom if headroom else 0))
    limit = case.max_fds if fds else math.inf
    per_server = min(math.floor(usable / per), limit)
    return {rounding(case.connections / per_server),
            max(rounding(case.connections * per / usable),
                rounding(case.connections / limit) if fds else 0)}


#: Each mistake a clever learner makes, and what the check says about it.
MISTAKES: dict[str, tuple[dict[str, Any], str]] = {
    "kernel": ({"kernel": False}, "that is the figure without the kernel's share: every open "
               "socket also holds kernel buffers (kernel_bytes), outside the process's memory"),
    "round-down": ({"rounding": math.floor}, "you rounded down: a fraction of a server's worth "
                   "of connections still needs a whole server (round up)"),
    "headroom": ({"headroom": False}, "that fills every byte of each server: keep the headroom "
                 "free (use server_memory * (1 - headroom))"),
    "fds": ({"fds": False}, "that ignores the descriptor limit: each connection is one open "
            "file, and a process holds at most max_fds of them"),
}


def draw_cases(draw: random.Random, user_bytes: int, kernel_bytes: int, count: int = 6
               ) -> list[Case]:
    """``count`` cases in which every mistake gives a wrong answer somewhere, and no two
    mistakes the same answers everywhere (so each can be named)."""
    for _ in range(500):
        drawn = [Case(connections=draw.randrange(200, 10_000) * 1000, user_bytes=user_bytes,
                      kernel_bytes=kernel_bytes,
                      server_memory=draw.choice((4, 8, 16, 32, 64)) * GIB,
                      headroom=draw.choice((0.2, 0.25, 0.3, 0.4, 0.5)),
                      max_fds=draw.choice((65_536, 262_144, 1_048_576)))
                 for _ in range(count)]
        right = [_answers(case) for case in drawn]
        wrong = {name: [_answers(case, **how) for case in drawn]
                 for name, (how, _) in MISTAKES.items()}
        caught = all(any(not (w & r) for w, r in zip(values, right, strict=True))
                     for values in wrong.values())
        told_apart = all(any(not (a & b) for a, b in zip(wrong[x], wrong[y], strict=True))
                         for x in wrong for y in wrong if x < y)
        if caught and told_apart and len(set.union(*right)) > 2:
            return drawn
    raise RuntimeError("no discriminating cases drawn")  # never seen: 500 tries


@exercise(
    "interview.capacity",
    title="Q5: servers for a million open connections, from the measured memory per connection",
    notebook=NOTEBOOK,
    hints=[
        "One connection costs user_bytes in the server process plus kernel_bytes in the "
        "kernel's socket buffers: add them.",
        "A server may use server_memory * (1 - headroom); divide by the bytes per connection "
        "for the connections one server holds, but never more than max_fds (one descriptor "
        "each).",
        "connections / per-server, rounded up (math.ceil): 2.1 servers' worth is 3 servers.",
    ],
    reference=capacity.servers_for,
    timeout=60,
)
def check_capacity(servers_for: Any) -> str:
    measured, limits = capacity.measured_websocket(), capacity.kernel_limits()
    user_bytes = max(1, round(measured.per_connection))
    drawn = draw_cases(cases(), user_bytes, limits.kernel_bytes)
    said = [servers_for(*case.args()) for case in drawn]
    if all(answer is None for answer in said):
        raise NotAttempted("servers_for returns None")
    for case, answer in zip(drawn, said, strict=True):
        expect(isinstance(answer, int) and not isinstance(answer, bool),
               f"for {case}: you returned {answer!r}; return a whole number of servers "
               "(math.ceil gives one)")
    right = [_answers(case) for case in drawn]
    if len(set(said)) == 1 and not all(said[0] in r for r in right):
        raise Unmet(f"you said {said[0]} for all {len(drawn)} cases, which need from "
                    f"{min(map(min, right))} to {max(map(max, right))} servers")
    for case, answer, want in zip(drawn, said, right, strict=True):
        if answer in want:
            continue
        why = ""
        for how, message in MISTAKES.values():
            if all(s in _answers(c, **how) for s, c in zip(said, drawn, strict=True)):
                why = f": {message}"
                break
        raise Unmet(f"for {case}: you said {answer:,} servers, it takes {min(want):,}{why}")
    return (f"{len(drawn)} drawn cases right, from {user_bytes:,} B per WebSocket measured in "
            f"the chat server's process and {limits.kernel_bytes:,} B of minimum socket buffers")
