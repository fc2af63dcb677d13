"""Named network profiles: the round-trip time, bandwidth each way, jitter and loss of a link.

A :class:`WireTap` given ``profile=`` shapes what it relays to match one (see
:mod:`.shaping`). The numbers are the published ones of the tools people already
use to emulate networks, so a figure measured here can be compared with theirs:

- WebPageTest's connectivity profiles, ``www/settings/connectivity.ini.sample`` in
  https://github.com/WPO-Foundation/webpagetest (``bwIn``/``bwOut`` in bit/s,
  ``latency`` = the round-trip time in ms, ``plr`` = packet loss in %);
- Lighthouse's ``mobileSlow4G`` throttling preset (``core/config/constants.js`` in
  https://github.com/GoogleChrome/lighthouse: ``rttMs: 150``, 1.6 Mbit/s down,
  750 kbit/s up), its default for mobile runs and the one PageSpeed Insights uses;
- Firefox DevTools' throttling table
  (``devtools/client/shared/components/throttling/profiles.js``): "Wi-Fi" is
  30 Mbit/s down, 15 Mbit/s up, 2 ms minimum latency;
- a geostationary satellite link: the FCC's *Measuring Broadband America* fixed
  reports measure satellite ISPs at about 600 ms round-trip latency (physics sets a
  floor of about 480 ms: four legs of 35,786 km at the speed of light); 25/3 Mbit/s
  is the common advertised satellite plan of those reports.

Per-direction bandwidth is what the application's bytes get: the tap does not add
IP and TCP headers (about 40 bytes a 1,460-byte segment, under 3 %).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NetworkProfile", "PROFILES", "profile"]


@dataclass(frozen=True)
class NetworkProfile:
    """A link: ``rtt`` (s), ``down``/``up`` (bit/s, ``None`` = unlimited), ``jitter`` (s,
    the standard deviation of each one-way delay), ``loss`` (probability a TCP segment
    is lost), and where the numbers come from."""

    name: str
    rtt: float
    down: float | None
    up: float | None
    jitter: float = 0.0
    loss: float = 0.0
    source: str = ""

    @property
    def one_way(self) -> float:
        """Half the round trip: each direction's delay (s)."""
        return self.rtt / 2

    def model_time(self, round_trips: float, bytes_up: int = 0, bytes_down: int = 0) -> float:
        """The first-order model of an exchange on this link:
        ``round_trips × RTT + bytes up ÷ bandwidth up + bytes down ÷ bandwidth down`` (s)."""
        seconds = round_trips * self.rtt
        if self.up:
            seconds += 8 * bytes_up / self.up
        if self.down:
            seconds += 8 * bytes_down / self.down
        return seconds

    def __str__(self) -> str:
        def rate(bits: float | None) -> str:
            if bits is None:
                return "unlimited"
            return f"{bits / 1e6:g} Mbit/s" if bits >= 1e6 else f"{bits / 1e3:g} kbit/s"
        text = (f"{self.name}: RTT {self.rtt * 1000:g} ms, {rate(self.down)} down, "
                f"{rate(self.up)} up")
        if self.jitter:
            text += f", jitter {self.jitter * 1000:g} ms"
        if self.loss:
            text += f", {self.loss:.1%} segment loss"
        return text


_WPT = "WebPageTest connectivity.ini.sample"

PROFILES: dict[str, NetworkProfile] = {p.name: p for p in (
    NetworkProfile("loopback", 0.0, None, None, source="no shaping: this machine's loopback"),
    NetworkProfile("lan", 0.002, 30e6, 15e6,
                   source="Firefox DevTools 'Wi-Fi': 30/15 Mbit/s, 2 ms"),
    NetworkProfile("cable", 0.028, 5e6, 1e6, source=f"{_WPT} [Cable]: 5/1 Mbit/s, 28 ms RTT"),
    NetworkProfile("4g", 0.170, 9e6, 9e6, source=f"{_WPT} [4G]: 9 Mbit/s, 170 ms RTT"),
    NetworkProfile("lte", 0.070, 12e6, 12e6, source=f"{_WPT} [LTE]: 12 Mbit/s, 70 ms RTT"),
    NetworkProfile("slow-4g", 0.150, 1.6e6, 750e3,
                   source="Lighthouse mobileSlow4G: 150 ms RTT, 1.6 Mbit/s / 750 kbit/s"),
    NetworkProfile("3g", 0.300, 1.6e6, 768e3,
                   source=f"{_WPT} [3G]: 1.6 Mbit/s / 768 kbit/s, 300 ms RTT"),
    NetworkProfile("satellite", 0.600, 25e6, 3e6,
                   source="FCC Measuring Broadband America: geostationary satellite ~600 ms; "
                          "25/3 Mbit/s plan"),
)}


def profile(name: str | NetworkProfile) -> NetworkProfile:
    """The profile called ``name`` (a :class:`NetworkProfile` is returned as it is)."""
    if isinstance(name, NetworkProfile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"no network profile {name!r}: choose from "
                         f"{', '.join(PROFILES)}") from None
