"""The choosing lab (notebooks/08-choosing-a-protocol.ipynb): the decision matrix, measured.

- :class:`WireTap` records every byte between a client and a lab server, and
  ``tap.messages()`` / ``tap.show()`` say what crossed the wire (stable API:
  other labs reuse it);
- :mod:`.driver` runs the same scenario over every protocol, against a raw TCP
  floor measured in the same run (:class:`~.driver.Run`);
- :mod:`.experiments` and :mod:`.resources` measure each row of the matrix,
  :mod:`.matrix` judges the document's verdicts, :func:`pick` recommends a protocol.
"""

from .picker import Pick, Recommendation, Requirements, pick
from .tap import DOWN, UP, WireTap
from .wire import Message, parse_connections, totals

__all__ = ["WireTap", "Message", "parse_connections", "totals", "UP", "DOWN",
           "Pick", "Requirements", "Recommendation", "pick"]
