"""The HTTP versions lab (notebooks/10-http-versions.ipynb): HTTP/1.1, /2 and /3 side by side.

- :func:`start` serves one app over all three with hypercorn (certificates from a local CA);
- :mod:`.handshakes` counts the round trips to the first byte of each handshake;
- :mod:`.compression` measures HPACK and QPACK header blocks request after request;
- :mod:`.hol` runs streams under loss: HTTP/2 through the wire tap's TCP loss model, HTTP/3
  through a UDP relay that really drops datagrams (:mod:`.loss`);
- :mod:`.waterfall` loads 30 resources on a shaped link: HTTP/1.1 on six connections, HTTP/2
  on one;
- :mod:`.trailers` shows trailers on the wire: the lab's own, and gRPC's ``grpc-status``
  (lab 03's server);
- :mod:`.replay` replays a 0-RTT request to a second node of a cluster;
- :mod:`.h2client` and :mod:`.h3client`: small sans-I/O clients (h2, aioquic) that show
  what they send.
"""

from .certs import authority
from .server import HTTPVersionsHandle, TicketStore, start

__all__ = ["start", "HTTPVersionsHandle", "TicketStore", "authority"]
