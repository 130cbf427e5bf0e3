"""Acting on whole messages: the one path by which anything but the peers writes frames.

A *message gate* (``relay.hooks.MessageGate``; breakpoints implement it) is installed on a
direction with ``Session.set_gate``. The direction's pump then collects each data message the
gate ``wants`` (its frames, and the control frames its sender interleaves: everything behind a
held message waits, in order), and when the message is complete asks the gate to ``decide``:

- ``FORWARD``: the collected frames go on exactly as they came (same frames, mask keys, bits),
  through the direction's frame stage (faults) as any frame would;
- ``Replace(payload)``: the message's frames are not delivered; one FIN frame of the proxy's
  carries ``payload`` instead (``written="edited"``), then one for each message of ``more``;
- ``DROP``: the message's frames are not delivered (interleaved control frames still are).

``Session.inject`` writes a message of the proxy's (``written="injected"``): a data message at
the next message boundary of its direction, never between another message's fragments; a
control frame at the next frame boundary (RFC 6455 §5.4 allows it between fragments).

What the proxy writes is framed here (``encode_written``): one FIN frame, masked with a fresh
random key toward the upstream (RFC 6455 §5.3), unmasked toward the client, and uncompressed
(RSV1 clear: RFC 7692 lets a sender choose per message, and an uncompressed message leaves both
compression windows alone). Dropping or replacing a compressed message under context takeover
is the one case that needs more: see ``wire.compress``; from then on the pump re-compresses the
direction's compressed messages (``written="recompressed"``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

from wsinspect.relay.hooks import FrameIn
from wsinspect.wire.closecodes import is_valid_close_code
from wsinspect.wire.frames import encode_frame, mask
from wsinspect.wire.sides import C2S, Direction

__all__ = [
    "DROP",
    "FORWARD",
    "Decision",
    "Drop",
    "Forward",
    "HeldMessage",
    "Replace",
    "close_payload",
    "encode_written",
    "frame_payload",
]


@dataclass(frozen=True, slots=True)
class Forward:
    """Let the message go on as it came."""


@dataclass(frozen=True, slots=True)
class Drop:
    """Deliver none of the message's frames."""


@dataclass(frozen=True, slots=True)
class Replace:
    """Send ``payload`` instead, as one FIN frame of ``opcode`` (the message's own when
    ``None``), then the messages of ``more`` (``(opcode, payload)`` each), in order."""

    payload: bytes
    opcode: int | None = None
    more: tuple[tuple[int, bytes], ...] = ()


Decision = Forward | Drop | Replace
FORWARD: Final = Forward()
DROP: Final = Drop()


def frame_payload(item: FrameIn) -> bytes:
    """The whole unmasked payload of a frame from its wire bytes (not cut at the capture
    limit, unlike ``frame.payload``)."""
    body = item.raw[len(item.frame.header) :]
    key = item.frame.mask_key
    return mask(body, key) if key is not None else body


@dataclass(slots=True)
class HeldMessage:
    """A complete data message collected for a gate's decision.

    ``items`` are all the frames collected, in order: the message's data frames and the control
    frames its sender sent between them. ``payload`` is what the application sees (inflated
    when compressed, then at most the capture limit: ``complete`` says whether it is all of
    it); ``compressed`` whether it went with RSV1."""

    conn: int
    direction: Direction
    items: list[FrameIn]
    opcode: int
    message_no: int
    payload: bytes
    length: int
    compressed: bool
    complete: bool
    received: float  # trio.current_time() when it was complete
    id: int = 0  # given by whoever holds it

    @classmethod
    def of(cls, conn: int, direction: Direction, items: list[FrameIn]) -> HeldMessage:
        data = [i for i in items if i.frame.opcode < 8]
        last = data[-1].frame
        message = last.message
        if message is not None and message.compressed:
            payload, length, complete = message.payload, message.length, not message.truncated
        else:
            payload = b"".join(frame_payload(i) for i in data)
            length, complete = len(payload), True
        return cls(
            conn, direction, items, data[0].frame.opcode, last.message_no, payload, length,
            data[0].frame.rsv1, complete, items[-1].received,
        )


def encode_written(direction: Direction, opcode: int, payload: bytes, *,
                   compressed: bool = False) -> bytes:
    """One FIN frame of the proxy's toward ``direction``'s receiver: masked with a fresh
    random key toward the upstream (the proxy is its client), unmasked toward the client;
    ``compressed`` sets RSV1 (a payload compressed by ``wire.compress``)."""
    key = os.urandom(4) if direction == C2S else None
    return encode_frame(opcode, payload, rsv1=compressed, mask_key=key)


def close_payload(code: int | None, reason: str = "") -> bytes:
    """The payload of a close frame the proxy sends; ``ValueError`` for a code that may not
    be sent (1005, 1006, 1015, unassigned or out of range: RFC 6455 §7.4) or a reason over the
    123 bytes a control frame leaves."""
    if code is None:
        if reason:
            raise ValueError("a close reason needs a close code")
        return b""
    if not is_valid_close_code(code):
        raise ValueError(f"close code {code} may not be sent in a close frame (RFC 6455 §7.4)")
    data = code.to_bytes(2, "big") + reason.encode()
    if len(data) > 125:
        raise ValueError("a close reason is at most 123 bytes (RFC 6455 §5.5)")
    return data
