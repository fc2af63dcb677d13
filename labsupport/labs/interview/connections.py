"""09's practices on holding many long-lived connections, each judged against a measurement.

- ``interview.capacity``: servers for N open connections, judged on cases drawn at check
  time from the memory one idle WebSocket measurably costs (:mod:`.capacity`) and this
  machine's socket buffer minimums.
- ``interview.draining``: a WebSocket client judged by the messages it lost and got twice
  while the backend holding it is drained (1012) and then stopped hard (1006), with
  message counts drawn at check time (:mod:`.draining`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...engine import NotAttempted, Unmet, cases, exercise, expect
from . import capacity, draining

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


# --- a client that survives a deploy -------------------------------------------------------


def _judge_deploy(outcome: dict[str, Any]) -> None:
    how = ("drained (close code 1012, service restart)" if outcome["how"] == "drain"
           else "stopped hard (no close frame: 1006)")
    before, gap, until = outcome["before"], outcome["gap"], outcome["until"]
    where = (f"the backend holding your connection was {how} after message {before}, and "
             f"messages {before + 1}-{before + gap} were published before you could reconnect")
    got, lost, twice = outcome["got"], outcome["lost"], outcome["repeated"]
    problem = outcome["problem"]
    expect(problem != "never connected", "follow() never connected: connect to the url given")
    expect(outcome["error"] is None,
           f"{where}; follow() raised {outcome['error']}: a close is not the end of the feed, "
           "reconnect (the same url: the balancer sends you to a backend that is up)")
    if got is not None and not isinstance(got, list):
        raise Unmet(f"return the list of message ids, got {got!r}")
    expect(problem not in ("did not reconnect", "did not return") or got is not None,
           f"{where}; follow() did not return message {until} in time: after the close, "
           "reconnect and go on until the message `until`")
    ids = got or []
    expect(not ids or max(ids) >= until,
           f"{where}; follow() returned after message {max(ids)}: a close is not the end of "
           f"the feed, reconnect and go on until message {until}")
    expect(not twice, f"{where}; messages {twice[:8]} arrived twice: resume after the last id "
                      "you received (?after=<that id>), not from the start")
    if lost == [before + 1]:
        raise Unmet(f"{where}; message {before + 1} was lost: ?after=<id> means the messages "
                    "after that id, so send the last id you received, not the next one")
    expect(not lost, f"{where}; messages {lost[:8]} were lost: reconnect with ?after=<the last "
                     "id you received>, and the backend replays what you missed")
    expect(ids == sorted(ids), f"the messages came in the order {ids[:12]}…, not as sent")


@exercise(
    "interview.draining",
    title="Q2: a WebSocket client that survives a deploy, nothing lost or twice",
    notebook=NOTEBOOK,
    hints=[
        "A close is not the end: catch websockets.exceptions.ConnectionClosed (whatever the "
        "code: 1012 from a drain, 1006 from a crash) and connect to the same url again; the "
        "balancer sends you to a backend that is up.",
        "Remember the id of the last message you received and reconnect to "
        "f'{url}?after={last_id}': the new backend replays what you missed.",
        "with connect(target, open_timeout=2) as ws: json.loads(ws.recv(timeout=2))['id'] in a "
        "loop, until you have received the id `until`; bound the whole thing with a deadline.",
    ],
    reference=draining.follow,
    timeout=60,
)
def check_draining(follow: Any) -> str:
    draw = cases()
    outcomes = []
    for n, how in enumerate(("drain", "hard")):
        outcome = draining.deploy(follow, how=how, before=draw.randrange(3, 13),
                                  gap=draw.randrange(2, 7), after=draw.randrange(2, 7),
                                  timeout=8, name=f"interview-draining-check-{n}")
        if n == 0 and outcome["got"] is None and outcome["problem"] == "never connected" \
                and outcome["error"] is None:
            raise NotAttempted("follow returns None")
        _judge_deploy(outcome)
        outcomes.append(outcome)
    drained, hard = outcomes
    return (f"a drain (1012) after message {drained['before']} and a hard stop (1006) after "
            f"message {hard['before']}: {drained['until']} and {hard['until']} messages, none "
            "lost, none twice")
