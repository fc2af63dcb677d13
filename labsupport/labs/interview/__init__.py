"""The interview-questions lab (notebooks/09-interview-questions.ipynb).

Its pieces, one job each: ``game`` (Q6's game-state server) and ``prediction``;
``versioning``, ``evolution``, ``graphql_deprecation`` and ``protodiff`` (Q7);
``idempotency`` and ``backpressure`` (the extra questions); ``evidence``
(measurements on the other labs' servers, with :mod:`labsupport.wire`); ``design`` (Q4's budgets);
``balancing`` (long-lived connections behind a balancer); ``draining`` (a deploy that
drains WebSocket backends); ``capacity`` (a million open connections, from measured memory);
``questions`` (``ask()``); ``onepage`` (the summary page and its export); ``exercises``,
``practice`` and ``connections`` (the checks).
"""

from .onepage import summary
from .questions import ask, practised

__all__ = ["ask", "practised", "summary"]
