"""GraphQL subscriptions over WebSocket, speaking ``graphql-transport-ws``.

That subprotocol (from the ``graphql-ws`` project) is what GraphiQL, Apollo
Client and Python's ``gql`` speak. One connection carries many operations::

    client                                   server
    connection_init            ->
                               <-            connection_ack
    subscribe {id, payload}    ->
                               <-            next {id, payload}   (one per event)
    complete {id}              ->            (or the server sends complete)
    ping                       ->
                               <-            pong

Protocol errors close the socket with the subprotocol's codes: 4400 invalid
message, 4401 subscribe before ack, 4408 no
``connection_init`` in time, 4409 an id already in use, 4429 a second init.
A client that does not offer the subprotocol is refused at the handshake (HTTP 400).

:class:`PostBus` carries "a post was created" from a mutation (any thread) to
every subscriber (each on its own event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from typing import Any

from graphql import ExecutionResult
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from ...harness import LOOPBACK, ServerHandle, serve_asyncio

__all__ = ["PostBus", "serve_graphql_ws", "PROTOCOL", "is_request_error"]

PROTOCOL = Subprotocol("graphql-transport-ws")
INIT_TIMEOUT = 3.0
MAX_MESSAGE_BYTES = 64 * 1024

_quiet = logging.getLogger("labsupport.graphql_ws")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


class PostBus:
    """Fan-out of new post ids to listeners on any event loop, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Weak: a subscription dropped before it ever ran (so before its generator's
        # ``finally`` could close the listener) must not stay subscribed forever.
        self._listeners: weakref.WeakSet[_Listener] = weakref.WeakSet()

    def listen(self) -> _Listener:
        """Start listening now (call it inside the listener's event loop)."""
        listener = _Listener(self)
        with self._lock:
            self._listeners.add(listener)
        return listener

    def listening(self) -> int:
        """How many listeners there are now."""
        with self._lock:
            return len(self._listeners)

    def publish(self, post_id: int) -> int:
        """Announce a new post to every listener; returns how many there were."""
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener.deliver(post_id)
        return len(listeners)

    def _forget(self, listener: _Listener) -> None:
        with self._lock:
            self._listeners.discard(listener)


class _Listener:
    """One subscriber's queue of post ids; registered from the moment it exists."""

    def __init__(self, bus: PostBus) -> None:
        self._bus = bus
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[int] = asyncio.Queue()

    def deliver(self, post_id: int) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, post_id)
        except RuntimeError:  # that loop has closed
            self.close()

    def close(self) -> None:
        self._bus._forget(self)

    def __aiter__(self) -> _Listener:
        return self

    async def __anext__(self) -> int:
        return await self._queue.get()


def is_request_error(result: ExecutionResult) -> bool:
    """True when nothing ran: the document or its variables were refused."""
    return result.data is None and all(error.path is None for error in result.errors or [])


Subscriber = Callable[..., Awaitable["AsyncGenerator[ExecutionResult, None] | ExecutionResult"]]


class _Connection:
    """One client's ``graphql-transport-ws`` session."""

    def __init__(self, websocket: ServerConnection, subscribe: Subscriber) -> None:
        self.websocket = websocket
        self.subscribe = subscribe
        self.acknowledged = False
        self.operations: dict[str, asyncio.Task[None]] = {}

    async def send(self, message: dict[str, Any]) -> None:
        await self.websocket.send(json.dumps(message, separators=(",", ":")))

    async def run(self) -> None:
        try:
            async with asyncio.timeout(INIT_TIMEOUT):
                first = await self.websocket.recv()
        except TimeoutError:
            await self.websocket.close(4408, "Connection initialisation timeout")
            return
        try:
            await self.handle(first)
            async for raw in self.websocket:
                await self.handle(raw)
        finally:
            tasks = list(self.operations.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def handle(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
            kind = message["type"]
        except (ValueError, TypeError, KeyError):
            await self.websocket.close(4400, "Invalid message received")
            return
        if kind == "connection_init":
            if self.acknowledged:
                await self.websocket.close(4429, "Too many initialisation requests")
                return
            self.acknowledged = True
            await self.send({"type": "connection_ack"})
        elif kind == "ping":
            await self.send({"type": "pong"})
        elif kind == "pong":
            pass
        elif kind == "subscribe":
            await self.start_operation(message)
        elif kind == "complete":
            task = self.operations.pop(str(message.get("id")), None)
            if task is not None:
                task.cancel()
        else:
            await self.websocket.close(4400, f"Unknown message type {str(kind)[:50]!r}")

    async def start_operation(self, message: dict[str, Any]) -> None:
        if not self.acknowledged:
            await self.websocket.close(4401, "Unauthorized")
            return
        id, payload = message.get("id"), message.get("payload")
        if not (isinstance(id, str) and id and isinstance(payload, dict)
                and isinstance(payload.get("query"), str)
                and isinstance(payload.get("variables") or {}, dict)
                and isinstance(payload.get("operationName") or "", str)):
            await self.websocket.close(4400, "Invalid message received")
            return
        if id in self.operations:
            await self.websocket.close(4409, f"Subscriber for {id[:50]} already exists")
            return
        # Awaited here, before the next message is read: once the server has
        # answered a later ping, this subscription is listening.
        outcome = await self.subscribe(payload["query"], payload.get("variables"),
                                       payload.get("operationName"))
        if isinstance(outcome, ExecutionResult):
            if is_request_error(outcome):
                await self.send({"id": id, "type": "error",
                                 "payload": outcome.formatted["errors"]})
            else:
                await self.send({"id": id, "type": "next", "payload": outcome.formatted})
                await self.send({"id": id, "type": "complete"})
            return
        self.operations[id] = asyncio.create_task(self.stream(id, outcome))

    async def stream(self, id: str, results: AsyncGenerator[ExecutionResult, None]) -> None:
        try:
            async for result in results:
                await self.send({"id": id, "type": "next", "payload": result.formatted})
            await self.send({"id": id, "type": "complete"})
        except ConnectionClosed:
            pass
        finally:
            self.operations.pop(id, None)
            await results.aclose()


def serve_graphql_ws(name: str, subscribe: Subscriber) -> ServerHandle:
    """Serve ``graphql-transport-ws`` on 127.0.0.1 (a free port), on its own event loop.

    ``subscribe(query, variables, operation_name)`` returns an async iterator
    of results for a subscription, or one result for a query or mutation.
    """

    async def handler(websocket: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            await _Connection(websocket, subscribe).run()

    async def start() -> tuple[int, Callable[[], Coroutine[Any, Any, None]]]:
        server = await serve(handler, LOOPBACK, 0, subprotocols=[PROTOCOL],
                             max_size=MAX_MESSAGE_BYTES, logger=_quiet)
        port = server.sockets[0].getsockname()[1]

        async def aclose() -> None:
            server.close()
            await server.wait_closed()
            # Let every subscription's generators finish before the loop stops.
            others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        return port, aclose

    return serve_asyncio(name, start, scheme="ws")
