"""09's practices on many long-lived connections: the measurement behind them, references
passing and wrong answers failing with their message, whatever the seed."""

from __future__ import annotations

import json
import math
import random
import time

from exercise_helpers import assert_fails, assert_passes
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from labsupport.labs.interview import capacity, connections, draining

# --- the measurement and the arithmetic ------------------------------------------------------


def test_an_idle_websocket_costs_the_server_memory_and_every_one_stays_open():
    measured = capacity.measured_websocket()
    assert measured.all_open and measured.connections == 300
    assert 500 < measured.per_connection < 500_000, measured
    during = measured.during
    # /proc/net/sockstat is read (Linux), but its rise is not asserted: it counts the whole
    # machine, and another test worker closing its sockets meanwhile hides ours (seen under
    # pytest -n 2: 604 -> 618 sockets in use while these 300 connections were open)
    if during["open"]:
        assert during["open"]["inuse"] > 0 and during["before"]["inuse"] > 0


def test_the_kernel_limits_are_read_and_add_up():
    limits = capacity.kernel_limits()
    assert limits.kernel_bytes == limits.tcp_rmem[0] + limits.tcp_wmem[0] > 0
    low, high = limits.ip_local_port_range
    assert limits.ephemeral_ports == high - low + 1
    assert capacity.source_ips_needed(1_000_000, limits.ephemeral_ports) * limits.ephemeral_ports \
        >= 1_000_000


def test_servers_for_rounds_up_keeps_headroom_and_counts_descriptors():
    gib = 2**30
    assert capacity.servers_for(1_000_000, 20_000, 8_192, 16 * gib, 0.3, 1_048_576) == 3
    assert capacity.servers_for(1_000_000, 20_000, 8_192, 64 * gib, 0.3, 65_536) == 16
    assert capacity.servers_for(1, 20_000, 8_192, 16 * gib, 0.3, 65_536) == 1


def test_every_drawn_set_of_cases_catches_and_tells_apart_every_mistake():
    for seed in range(200):
        drawn = connections.draw_cases(random.Random(seed), 18_000, 8_192)
        right = [connections._answers(case) for case in drawn]
        for how, _ in connections.MISTAKES.values():
            assert any(not (connections._answers(case, **how) & want)
                       for case, want in zip(drawn, right, strict=True)), (seed, how)


# --- interview.capacity ----------------------------------------------------------------------


def test_capacity_reference_passes():
    assert_passes("interview.capacity")


def test_capacity_total_memory_first_passes_too():
    """The other careful order: total bytes over usable bytes, then the descriptor bound."""
    def servers_for(connections, user_bytes, kernel_bytes, server_memory, headroom, max_fds):
        by_memory = math.ceil(connections * (user_bytes + kernel_bytes)
                              / (server_memory * (1 - headroom)))
        return max(by_memory, math.ceil(connections / max_fds))

    assert_passes("interview.capacity", servers_for)


def test_capacity_without_the_kernels_share_fails():
    """Requirement skipped: the process's memory only, as RSS shows it."""
    def servers_for(connections, user_bytes, kernel_bytes, server_memory, headroom, max_fds):
        per_server = min(server_memory * (1 - headroom) // user_bytes, max_fds)
        return math.ceil(connections / per_server)

    assert_fails("interview.capacity", servers_for, "without the kernel's share")


def test_capacity_rounded_down_fails():
    """Too loose: int() where a part of a server still needs a whole one."""
    def servers_for(connections, user_bytes, kernel_bytes, server_memory, headroom, max_fds):
        per_server = min(server_memory * (1 - headroom) // (user_bytes + kernel_bytes), max_fds)
        return int(connections // per_server)

    assert_fails("interview.capacity", servers_for, "you rounded down")


def test_capacity_without_headroom_fails():
    """Happy path only: every byte of the server used, nothing left for a spike or a deploy."""
    def servers_for(connections, user_bytes, kernel_bytes, server_memory, headroom, max_fds):
        return max(math.ceil(connections * (user_bytes + kernel_bytes) / server_memory),
                   math.ceil(connections / max_fds))

    assert_fails("interview.capacity", servers_for, "keep the headroom free")


def test_capacity_without_the_descriptor_limit_fails():
    """Requirement skipped: memory is the only limit."""
    def servers_for(connections, user_bytes, kernel_bytes, server_memory, headroom, max_fds):
        return math.ceil(connections * (user_bytes + kernel_bytes)
                         / (server_memory * (1 - headroom)))

    assert_fails("interview.capacity", servers_for, "ignores the descriptor limit")


def test_capacity_constant_fails():
    """Constant: the notebook's answer for a million connections, whatever is asked."""
    assert_fails("interview.capacity", lambda *args: 3, "you said 3 for all 6 cases")


def test_capacity_without_rounding_fails():
    """Too loose: a fraction of a server."""
    def servers_for(connections, user_bytes, kernel_bytes, server_memory, headroom, max_fds):
        return connections * (user_bytes + kernel_bytes) / (server_memory * (1 - headroom))

    assert_fails("interview.capacity", servers_for, "return a whole number of servers")


def test_capacity_stub_is_not_attempted():
    assert_fails("interview.capacity", lambda *args: None, "not solved yet")


# --- draining on deploy ----------------------------------------------------------------------


def test_a_drain_or_a_hard_stop_loses_nothing_for_a_resuming_client_and_the_gap_for_a_naive_one():
    """The notebook's table: counts that hold every run."""
    for how, code in (("drain", 1012), ("hard", 1006)):
        resumed = draining.deploy(draining.follow, how=how, name="test-feed")
        assert (resumed["close_code"], resumed["lost"], resumed["repeated"]) == (code, [], [])
        assert resumed["got"] == list(range(1, 21))
        naive = draining.deploy(draining.follow_naively, how=how, name="test-feed")
        assert (naive["close_code"], naive["lost"], naive["repeated"]) == \
            (code, [11, 12, 13, 14, 15], [])


def _client(target_for, *, on_close=None):
    """A client following the feed; ``target_for(url, got)`` says where to reconnect."""
    def follow(url, until):
        got: list[int] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with connect(target_for(url, got), open_timeout=2) as ws:
                    while True:
                        message = json.loads(ws.recv(timeout=2))
                        got.append(message["id"])
                        if message["id"] >= until:
                            return got
            except ConnectionClosed as closed:
                if on_close is not None and on_close(closed):
                    return got
                time.sleep(0.05)
        raise TimeoutError

    return follow


def test_draining_reference_passes():
    assert_passes("interview.draining")


def test_draining_without_resuming_fails():
    """Requirement skipped: it reconnects, but for what comes next (the naive client)."""
    assert_fails("interview.draining", _client(lambda url, got: url), "were lost: reconnect with "
                                                                     "?after=")


def test_draining_that_never_reconnects_fails():
    """Happy path only: a close ends the feed."""
    assert_fails("interview.draining", _client(lambda url, got: url, on_close=lambda c: True),
                 "a close is not the end of the feed")


def test_draining_that_resumes_from_the_start_fails():
    """Too loose: resuming means replaying everything."""
    assert_fails("interview.draining",
                 _client(lambda url, got: f"{url}?after=0" if got else url), "arrived twice")


def test_draining_that_resumes_after_the_next_id_fails():
    """Off by one: ?after= the id it expects next."""
    assert_fails("interview.draining",
                 _client(lambda url, got: f"{url}?after={got[-1] + 1}" if got else url),
                 "send the last id you received, not the next one")


def test_draining_that_gives_up_without_a_close_frame_fails():
    """Happy path only: it resumes after a drain's 1012, but a crash (1006, no frame) ends it."""
    def raise_on_crash(closed):
        if closed.rcvd is None:
            raise closed
        return False

    assert_fails("interview.draining",
                 _client(lambda url, got: f"{url}?after={got[-1]}" if got else url,
                         on_close=raise_on_crash),
                 "was stopped hard (no close frame: 1006)")


def test_draining_stub_is_not_attempted():
    assert_fails("interview.draining", lambda url, until: None, "not solved yet")
