"""The choosing lab (notebooks/08-choosing-a-protocol.ipynb): the decision matrix, measured.

- :class:`WireTap` records every byte between a client and a lab server, and
  ``tap.messages()`` / ``tap.show()`` say what crossed the wire;
- :mod:`.driver` runs the same scenario over every protocol, against a raw TCP
  floor measured in the same run;
- :mod:`.experiments` measures each row of the matrix, :mod:`.matrix` judges the
  document's verdicts, :mod:`.picker` recommends a protocol for requirements.
"""

from .tap import DOWN, UP, WireTap
from .wire import Message, parse_connections, totals

__all__ = ["WireTap", "Message", "parse_connections", "totals", "UP", "DOWN"]
