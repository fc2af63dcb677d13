"""The queues lab (notebooks/07-queues-vs-direct.ipynb): direct calls vs NATS JetStream.

::

    from labsupport.labs import queues
    broker = queues.start()          # or queues.start(cluster=3)
"""

from .broker import BrokerHandle, BrokerNotFound, find_server_binary, start

__all__ = ["BrokerHandle", "BrokerNotFound", "find_server_binary", "start"]
