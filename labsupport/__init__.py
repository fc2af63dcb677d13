"""Protocol Lab's support library: lab servers, shared data and exercises.

In a notebook::

    from labsupport import rest, check, hint, solution, progress
    server = rest.start()
"""

from .display import show
from .engine import check, hint, progress, reveal, solution
from .harness import running, stop_all

__all__ = ["check", "hint", "solution", "progress", "reveal", "running", "stop_all", "show"]
