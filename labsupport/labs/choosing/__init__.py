"""The choosing lab (notebooks/08-choosing-a-protocol.ipynb): the decision matrix, measured.

- :mod:`.driver` runs the same scenario over every protocol, against a raw TCP
  floor measured in the same run (:class:`~.driver.Run`), counting bytes with
  :class:`labsupport.wire.WireTap` (the shared wire layer);
- :mod:`.experiments` and :mod:`.resources` measure each row of the matrix,
  :mod:`.matrix` judges the document's verdicts, :func:`pick` recommends a protocol.

The picker is imported on first use (PEP 562), so a server's child process
(:mod:`.serve`) imports only the servers it starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .picker import Pick, Recommendation, Requirements, pick

__all__ = ["Pick", "Requirements", "Recommendation", "pick"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import picker
        return getattr(picker, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
