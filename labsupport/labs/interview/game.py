"""Q6's game-state server: 8 players, 20 ticks a second, on WebSockets.

The server owns the world (players walking between waypoints, some standing
still) and steps it ``TICK_RATE`` times a second. Each spectator connection
chooses how it is sent the world, with ``?mode=``:

- ``moves``: the document's message, one ``player_move`` per player per tick;
- ``full``: the whole state in one message per tick;
- ``delta``: only the players that moved, positions in tenths as integers;
- ``batched``: the deltas of ``BATCH_TICKS`` ticks in one message.

``start(encoder=..., send_every=...)`` plugs a learner's encoding in instead
(the ``interview.game-update`` exercise). ``measure(server, seconds)``
connects one client per mode at once and counts the frames and bytes each
receives.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.sync.client import connect

from ...harness import LOOPBACK, AsyncioHandle, serve_asyncio

__all__ = [
    "TICK_RATE", "PLAYERS", "BATCH_TICKS", "MODES", "World", "Positions", "encode_delta",
    "decode_delta", "start", "measure", "ws_frame_header", "TCP_IP_HEADER", "GameHandle",
]

TICK_RATE = 20
PLAYERS = 8
BATCH_TICKS = 3
MODES = ("moves", "full", "delta", "batched")
SPEED = 120.0          # units a second
MAP_SIZE = 1000.0
HISTORY_TICKS = 200    # authoritative states kept, for checks and lag compensation
TCP_IP_HEADER = 52     # IPv4 (20) + TCP with timestamps (32) per segment

Positions = dict[str, tuple[float, float]]
Encoder = Callable[[Positions, Positions], str | bytes]


@dataclass
class Player:
    id: str
    x: float
    y: float
    target: tuple[float, float]
    resting: int = 0   # ticks left standing still


class World:
    """The authoritative game state, stepped deterministically from a seed."""

    def __init__(self, players: int = PLAYERS, seed: int = 6) -> None:
        self.rng = random.Random(seed)
        self.tick = 0
        self.players = [
            Player(f"p{n}", *self._point(), target=self._point()) for n in range(1, players + 1)
        ]
        for player in self.players[::2]:    # some players start standing still
            player.resting = self.rng.randint(20, 60)

    def _point(self) -> tuple[float, float]:
        return (self.rng.uniform(0, MAP_SIZE), self.rng.uniform(0, MAP_SIZE))

    def step(self, dt: float = 1 / TICK_RATE) -> None:
        """Advance one tick: walk toward the waypoint, rest a while on arrival."""
        self.tick += 1
        for player in self.players:
            if player.resting:
                player.resting -= 1
                continue
            dx, dy = player.target[0] - player.x, player.target[1] - player.y
            distance = math.hypot(dx, dy)
            if distance <= SPEED * dt:
                player.x, player.y = player.target
                player.target = self._point()
                player.resting = self.rng.randint(5, 40)
            else:
                player.x += dx / distance * SPEED * dt
                player.y += dy / distance * SPEED * dt

    def positions(self) -> Positions:
        return {p.id: (p.x, p.y) for p in self.players}

    def full_state(self) -> dict[str, Any]:
        return {"type": "state", "tick": self.tick, "timestamp": int(time.time() * 1000),
                "players": [{"id": p.id, "position": {"x": p.x, "y": p.y}}
                            for p in self.players]}

    def moves(self) -> list[dict[str, Any]]:
        """The document's ``player_move`` message, one per player."""
        now = int(time.time() * 1000)
        return [{"type": "player_move", "player_id": p.id,
                 "position": {"x": p.x, "y": p.y}, "timestamp": now} for p in self.players]


def _tenths(value: float) -> int:
    return round(value * 10)


def encode_delta(previous: Positions, current: Positions) -> str:
    """The players whose position changed, as ``[id, x*10, y*10]`` integers.

    A player absent from ``previous`` is sent too. Over WebSocket (TCP) every
    message arrives in order, so a delta against the last message sent is safe.
    """
    changed = [
        [id, _tenths(x), _tenths(y)] for id, (x, y) in current.items()
        if id not in previous or (_tenths(x), _tenths(y)) != tuple(map(_tenths, previous[id]))
    ]
    return json.dumps(changed, separators=(",", ":"))


def decode_delta(previous: Positions, message: str | bytes) -> Positions:
    """Apply one :func:`encode_delta` message to ``previous``."""
    state = dict(previous)
    for id, x, y in json.loads(message):
        state[id] = (x / 10, y / 10)
    return state


class GameServer:
    """Steps the world and sends every connection its chosen encoding."""

    def __init__(self, encoder: Encoder | None, send_every: int) -> None:
        self.world = World()
        self.encoder = encoder
        self.send_every = send_every
        self.history: deque[tuple[int, Positions]] = deque(maxlen=HISTORY_TICKS)
        self.connections: dict[ServerConnection, dict[str, Any]] = {}
        self.errors: list[str] = []
        self.sent: deque[tuple[int, Positions]] = deque(maxlen=HISTORY_TICKS)  # custom mode

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        mode = parse_qs(urlsplit(request.path).query).get("mode", ["full"])[0]
        allowed = ("custom",) if self.encoder else MODES
        if mode not in allowed:
            body = f"mode must be one of {', '.join(allowed)}, got {mode[:40]!r}\n".encode()
            return Response(400, "Bad Request", Headers({"Content-Type": "text/plain"}), body)
        return None

    async def handler(self, connection: ServerConnection) -> None:
        assert connection.request is not None   # the handshake has happened
        mode = parse_qs(urlsplit(connection.request.path).query).get("mode", ["full"])[0]
        self.connections[connection] = {"mode": mode, "sent": {}, "pending": []}
        try:
            await connection.wait_closed()
        finally:
            self.connections.pop(connection, None)

    def _messages(self, state: dict[str, Any]) -> list[str | bytes]:
        world, positions = self.world, self.world.positions()
        mode = state["mode"]
        if mode == "moves":
            return [json.dumps(move) for move in world.moves()]
        if mode == "full":
            return [json.dumps(world.full_state())]
        if mode == "custom":
            if world.tick % self.send_every:
                return []
            assert self.encoder is not None   # "custom" is only accepted with an encoder
            try:
                message = self.encoder(state["sent"], positions)
            except Exception as exc:  # the learner's encoder: kept for the check's message
                self.errors.append(f"{type(exc).__name__}: {exc}")
                return []
            state["sent"] = positions
            self.sent.append((world.tick, positions))
            return [message]
        delta = json.dumps({"tick": world.tick, "players": json.loads(
            encode_delta(state["sent"], positions))}, separators=(",", ":"))
        state["sent"] = positions
        if mode == "delta":
            return [delta]
        state["pending"].append(delta)
        if len(state["pending"]) < BATCH_TICKS:
            return []
        batch, state["pending"] = "[" + ",".join(state["pending"]) + "]", []
        return [batch]

    async def run(self) -> None:
        next_tick = time.monotonic()
        while True:
            next_tick += 1 / TICK_RATE
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
            self.world.step()
            self.history.append((self.world.tick, self.world.positions()))
            for connection, state in list(self.connections.items()):
                for message in self._messages(state):
                    try:
                        await connection.send(message)
                    except Exception:
                        break  # closed meanwhile: its handler removes it


class GameHandle(AsyncioHandle):
    """The game server: ``game`` is its :class:`GameServer`, ``ws_url`` its address."""

    game: GameServer

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/"


def start(*, name: str = "game", encoder: Encoder | None = None,
          send_every: int = 1) -> GameHandle:
    """Start the game server; ``handle.ws_url`` takes ``?mode=`` (see the module doc).

    With ``encoder`` (``encoder(previous_sent, current) -> message``) the one
    mode is ``custom``: the encoder's message every ``send_every`` ticks.
    ``handle.game.history`` holds the recent authoritative ``(tick, positions)``,
    ``handle.game.sent`` those the custom encoder was given to send.
    """
    game = GameServer(encoder, send_every)

    async def listen() -> tuple[int, Callable[[], Any]]:
        server = await serve(game.handler, LOOPBACK, 0, process_request=game.process_request,
                             close_timeout=1, compression=None)
        ticker = asyncio.get_running_loop().create_task(game.run())

        async def aclose() -> None:
            ticker.cancel()
            server.close()
            await asyncio.wait_for(server.wait_closed(), 5)

        return server.sockets[0].getsockname()[1], aclose

    return serve_asyncio(name, listen, app=game, handle=GameHandle, game=game)


def ws_frame_header(payload: int) -> int:
    """Bytes of a server-to-client WebSocket frame header (RFC 6455 §5.2, unmasked)."""
    return 2 if payload < 126 else 4 if payload < 65536 else 10


def receive(url: str, seconds: float) -> list[str | bytes]:
    """Every message a client receives from ``url`` within ``seconds``."""
    messages: list[str | bytes] = []
    deadline = time.monotonic() + seconds
    with connect(url, compression=None, open_timeout=5, close_timeout=1) as websocket:
        while (left := deadline - time.monotonic()) > 0:
            try:
                messages.append(websocket.recv(timeout=left))
            except TimeoutError:
                break
    return messages


def measure(server: GameHandle, seconds: float = 1.0,
            modes: tuple[str, ...] = MODES) -> list[dict[str, Any]]:
    """One client per mode, all at once for ``seconds``: frames and bytes per second each."""
    received: dict[str, list[str | bytes]] = {}

    def run(mode: str) -> None:
        received[mode] = receive(f"{server.ws_url}?mode={mode}", seconds)

    threads = [threading.Thread(target=run, args=(mode,), daemon=True) for mode in modes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 10)
    rows = []
    for mode in modes:
        sizes = [len(m.encode() if isinstance(m, str) else m) for m in received.get(mode, [])]
        framing = sum(ws_frame_header(size) for size in sizes)
        rows.append({
            "mode": mode, "frames_per_s": len(sizes) / seconds,
            "payload_bytes_per_s": sum(sizes) / seconds,
            "wire_bytes_per_s": (sum(sizes) + framing + TCP_IP_HEADER * len(sizes)) / seconds,
        })
    return rows
