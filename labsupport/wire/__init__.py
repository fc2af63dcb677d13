"""The wire layer: what crossed the wire between a client and a lab server.

Any lab may use it; this is its stable API (names kept, meanings kept)::

    from labsupport.wire import WireTap
    with WireTap(server.port) as tap:              # a recording TCP proxy to the server
        requests.get(f"{tap.url}/api/v1/users/101")
    tap.bytes_up, tap.bytes_down, tap.total_bytes  # bytes TCP carried each way
    tap.connections                                # list[Connection], each with its chunks
    tap.messages()                                 # list[Message], parsed as below
    tap.show()                                     # a sequence diagram (matplotlib Figure)
    tap.show(ends=True)                            # ... with how each connection ended
    tap.save_pcap("exchange.pcap")                 # a capture for Wireshark / tshark
    tap.cut(tap.connections[0]), tap.cut_all()     # reset live connections (a dropped link)
    tap.reset()                                    # count afresh from now on

- :class:`WireTap` (``tap``): ``WireTap(port, target_host=..., record=True)``;
  ``.url``, ``.address`` (a gRPC target), ``.port``; a context manager, or ``close()``.
- :class:`Connection`, :class:`Chunk`, :data:`UP`, :data:`DOWN` (``records``): what the
  tap records; ``connection.stream(UP)`` is every byte the client sent on it, and
  ``connection.end`` how it ended, one of :data:`ENDS`: a FIN or a reset (RST) from the
  client or the server, cut by the tap (``tap.cut``: a reset to both sides), or closed by
  the tap (``tap.close()``); ``tap.settle()`` waits until the ends already sent are recorded.
- :class:`Message`, :func:`parse_connections`, :func:`parse_connection`, :func:`totals`
  (``parsers``): HTTP/1.1 with h11, HTTP/2 frames with hyperframe and hpack, WebSocket
  frames with wsproto, anything else raw; each message with its exact size and time.
- :func:`sequence_diagram` (``diagram``): client on the left, server on the right.
- :class:`NetworkProfile`, :data:`PROFILES`, :func:`profile` (``profiles``): named links
  with published numbers (loopback, lan, cable, 4g, lte, slow-4g, 3g, satellite) and the
  model ``round trips × RTT + bytes ÷ bandwidth``; ``WireTap(port, profile="4g", seed=1)``
  shapes what it relays (``shaping``: delay, jitter, bandwidth each way, a model of
  TCP loss), and ``tap.stalls`` lists the losses it applied.
- :class:`LossPattern` (``shaping``): which packets are lost, by number, from a seed;
  ``WireTap(port, loss=LossPattern(0.015, seed=1))`` loses those segments of what the
  server sends (the TCP model), and a UDP relay may ask it about datagrams.
- :class:`Counts`, :func:`count` (``counts``): connections, requests, round trips, bytes and
  messages each way, of what a tap saw: counts before clocks; ``counts.ends`` and
  ``counts.endings()`` say how its connections ended; ``count(tap, without=TIMING_FRAMES)``
  leaves out HTTP/2's WINDOW_UPDATE and PING frames, whose number follows the timing.

Its modules import downwards only: ``records``, ``profiles`` <- ``parsers``, ``shaping``
``pcap`` <- ``diagram`` <- ``tap`` <- ``counts``.
"""

from .counts import TIMING_FRAMES, Counts, count
from .diagram import sequence_diagram
from .parsers import Message, parse_connection, parse_connections, totals
from .profiles import PROFILES, NetworkProfile, profile
from .records import DOWN, ENDS, UP, Chunk, Connection
from .shaping import LossPattern
from .tap import WireTap

__all__ = ["WireTap", "Connection", "Chunk", "UP", "DOWN", "ENDS", "Message", "parse_connections",
           "parse_connection", "totals", "sequence_diagram", "NetworkProfile", "PROFILES",
           "profile", "LossPattern", "Counts", "count", "TIMING_FRAMES"]
