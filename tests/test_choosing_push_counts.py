"""The push rows' counts (chat, live updates, gaming) are the same run after run.

Each row's counted exchange (:func:`labsupport.labs.choosing.experiments.counted`) runs
in two fresh runs, as two Run-Alls of notebook 08 would, and every count must match:
connections, requests (so round trips), bytes and messages each way.
"""

from __future__ import annotations

import pytest

from labsupport.labs.choosing import driver, experiments

KINDS = ("websockets", "grpc", "long-polling", "sse")
SERVERS = ("websockets", "relay", "long-polling", "sse")


def _chat(k: int, sender: int) -> dict:
    return {"tag": f"chat-{k:04d}", "from": f"c{sender}", "text": f"message {k}"}


def _state(k: int, sender: int) -> dict:
    return {"tag": f"{sender}-{k // 4}", "from": f"c{sender}", "x": k // 4, "y": sender}


def _update(k: int, sender: int) -> dict:
    return {"tag": f"live-{k:04d}", "value": k}


EXCHANGES = {  # row: (clients, room, messages, payload)
    "chat": (5, "chat", 6, _chat),
    "gaming": (4, "arena", 8, _state),
    "live": (1, "live", 6, _update),
}


def _counts_of_a_fresh_run() -> dict:
    with driver.Run(only=SERVERS, prefix="push-counts") as run:
        return {(row, kind): experiments.counted(run, kind, *exchange)
                for row, exchange in EXCHANGES.items() for kind in KINDS}


@pytest.fixture(scope="module")
def two_runs() -> tuple[dict, dict]:
    return _counts_of_a_fresh_run(), _counts_of_a_fresh_run()


@pytest.mark.parametrize("row", list(EXCHANGES))
@pytest.mark.parametrize("kind", KINDS)
def test_every_push_count_is_identical_run_after_run(two_runs, row, kind):
    (first, delivered), (second, again) = two_runs[0][row, kind], two_runs[1][row, kind]
    clients, _, messages, _ = EXCHANGES[row]
    assert delivered == again == messages * max(clients - 1, 1)
    assert first == second, f"{row} over {kind}: {first} then {second}"
    assert first.bytes > 0 and first.messages_down >= delivered


def test_long_polling_pays_a_poll_per_delivery_and_sse_a_post_per_message(two_runs):
    counts = two_runs[0]
    chat_clients, _, chat_messages, _ = EXCHANGES["chat"]
    polls, _ = counts["chat", "long-polling"]
    # One POST per message, and each client's poll answered and sent again per message.
    assert polls.requests == chat_messages * (1 + chat_clients)
    posts, _ = counts["chat", "sse"]
    assert posts.requests == chat_messages
    streams, _ = counts["chat", "websockets"]
    assert streams.requests == 0 and streams.messages_up == chat_messages
