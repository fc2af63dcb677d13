"""The choosing lab (notebooks/08-choosing-a-protocol.ipynb): the decision matrix, measured.

- :mod:`.driver` runs the same scenario over every protocol, against a raw TCP
  floor measured in the same run (:class:`~.driver.Run`), counting bytes with
  :class:`labsupport.wire.WireTap` (the shared wire layer);
- :mod:`.experiments` and :mod:`.resources` measure each row of the matrix,
  :mod:`.matrix` judges the document's verdicts, :func:`pick` recommends a protocol.
"""

from .picker import Pick, Recommendation, Requirements, pick

__all__ = ["Pick", "Requirements", "Recommendation", "pick"]
