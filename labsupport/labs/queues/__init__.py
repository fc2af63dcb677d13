"""The queues lab (notebooks/07-queues-vs-direct.ipynb): direct calls vs NATS JetStream.

::

    from labsupport import queues
    broker = queues.start()                    # or queues.start(cluster=3)
    app = queues.pipeline.start(broker)        # Q5: POST /orders -> JetStream -> worker -> SSE

The pieces: ``broker`` (the nats-server child process), ``bus`` (a NATS
connection for threads), ``direct`` (the HTTP way, with timeouts, retries and
a circuit breaker), ``worker`` (the idempotent notification worker and its
dead-letter stream), ``outbox`` (the transactional outbox and its relay),
``subjects`` (subjects from user input), ``pipeline`` (Q5 end to end).
"""

from . import direct, outbox, pipeline, subjects, worker
from .broker import BrokerHandle, BrokerNotFound, find_server_binary, start
from .bus import Bus
from .subjects import InvalidSubject
from .worker import Message, Worker, ensure_streams

__all__ = [
    "start", "BrokerHandle", "BrokerNotFound", "find_server_binary", "Bus", "Worker", "Message",
    "ensure_streams", "InvalidSubject", "direct", "outbox", "pipeline", "subjects", "worker",
]
