"""Compressing a message the proxy sends itself, when it must (RFC 7692).

The relay forwards compressed frames as they came and does not compress what it writes (an
uncompressed message is always allowed, and it leaves both peers' compression windows alone).
One case needs more: under context takeover, once a compressed message did not reach the
receiver as it was sent (a breakpoint dropped or edited it, a fault dropped it), the sender's
later messages may refer back to text the receiver never inflated. From then on the proxy
sends that direction's compressed messages itself, compressed again from the inflated text.

Each such message is compressed on its own, with an empty history: it refers to nothing before
it, so whatever the receiver's window holds (and whatever a fault does next to the message:
drop it, send it twice) its decompressor inflates it correctly and stays in sync.
"""

from __future__ import annotations

import zlib

__all__ = ["compress_message"]

_TRAILER = b"\x00\x00\xff\xff"  # the empty stored block a sync flush ends with (§7.2.1)


def compress_message(message: bytes, window_bits: int = 15) -> bytes:
    """The payload of one compressed message (RSV1 on its first frame) that refers to nothing
    outside itself. ``window_bits`` is the direction's negotiated window (below 9, 9: zlib's
    smallest raw window, as the peers' own zlib uses)."""
    c = zlib.compressobj(6, zlib.DEFLATED, -min(15, max(9, window_bits)))
    out = c.compress(message) + c.flush(zlib.Z_SYNC_FLUSH)
    return out[: -len(_TRAILER)] if out.endswith(_TRAILER) else out
