"""The two directions of a relayed connection and the sides that send them.

A *direction* names a stream of frames: ``c2s`` (client to server: what the client sends and
the upstream receives) and ``s2c``. A *side* names a peer: ``client`` or ``upstream``; the
proxy itself is a third party that may end a connection (``Initiator``). ``PeerEnd`` is how a
peer's TCP stream ended without a close frame: ``fin`` (end of stream), ``rst`` (a reset) or
``error`` (another receive error); ``Ending`` is how the relay itself says a connection ended
(a fault that ends one names itself instead).
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = [
    "C2S",
    "DIRECTIONS",
    "OTHER",
    "RECEIVER",
    "S2C",
    "SENDER",
    "Direction",
    "Ending",
    "Initiator",
    "PeerEnd",
    "Side",
]

Direction = Literal["c2s", "s2c"]
Side = Literal["client", "upstream"]
Initiator = Literal["client", "upstream", "proxy"]
PeerEnd = Literal["fin", "rst", "error"]
Ending = Literal[PeerEnd, "close-handshake", "timeout", "strict", "shutdown", "closed-by-proxy"]

C2S: Final = "c2s"
S2C: Final = "s2c"
DIRECTIONS: Final[tuple[Direction, Direction]] = (C2S, S2C)
SENDER: Final[dict[Direction, Side]] = {C2S: "client", S2C: "upstream"}
RECEIVER: Final[dict[Direction, Side]] = {C2S: "upstream", S2C: "client"}
OTHER: Final[dict[Direction, Direction]] = {C2S: S2C, S2C: C2S}
