"""Reassembly of data messages from frames (RFC 6455 §5.4), bounded by the capture limit.

With permessage-deflate (RFC 7692) the assembler hands the frames of a compressed message (RSV1
on its first frame) to the direction's ``Inflater`` and the message carries the inflated bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from wsinspect.wire.frames import DEFAULT_CAPTURE_LIMIT, Frame

if TYPE_CHECKING:
    from wsinspect.wire.deflate import Inflater

__all__ = ["Message", "MessageAssembler"]


# Not ``frozen``: a frozen dataclass's ``__init__`` costs ~5x more, and one Message is built per
# message on the relay's hot path. Treat it as immutable all the same (hence the value hash).
@dataclass(slots=True, unsafe_hash=True)
class Message:
    """A complete data message: ``payload`` is what the application sees (inflated when
    permessage-deflate applies), cut at the capture limit; ``length`` is its full size and
    ``wire_len`` the size of the frame payloads that carried it (differs only when compressed).

    ``note`` says why a compressed message is shown incompletely or not at all (inflate error,
    inflate limit, lost compression context); ``payload`` is then what could be inflated (empty
    when nothing could) and ``length`` the inflated size reached, never compressed bytes.
    """

    opcode: int
    payload: bytes
    length: int
    wire_len: int
    frames: int
    truncated: bool = False
    compressed: bool = False
    note: str | None = None


class MessageAssembler:
    """Numbers frames into messages and joins their payloads; one per direction.

    Control frames and reserved opcodes belong to no message (``message_no`` 0). A continuation
    frame without a started message is numbered as a message of its own so nothing is lost;
    ``wire.checks`` reports it. ``count`` is the number of messages started so far (the
    inspector's fast path numbers complete single-frame messages itself by incrementing it).

    With an ``inflater``, a message whose first frame has RSV1 is compressed: its frames are
    inflated as they come and ``piece`` holds the inflated bytes the last ``add`` produced.

    ``add`` also sets ``frame.text`` (see ``Frame``): the frames of a text message whose first
    frame has no RSV1 (RFC 7692 §6: RSV1 there marks a compressed message, negotiated or not),
    except a frame that sets RSV1 itself, and ping/pong frames without RSV1.
    """

    __slots__ = (
        "_capture_limit",
        "_compressed",
        "_frames",
        "_inflater",
        "_length",
        "_opcode",
        "_parts",
        "_size",
        "_text",
        "count",
        "piece",
    )

    def __init__(
        self, capture_limit: int = DEFAULT_CAPTURE_LIMIT, inflater: Inflater | None = None
    ) -> None:
        self._capture_limit = capture_limit
        self._inflater = inflater
        self.count = 0  # messages started so far
        self._opcode: int | None = None  # opcode of the message in progress
        self._compressed = False
        self._text = False  # the message in progress is an uncompressed text message
        self._parts: list[bytes] = []
        self._size = 0  # captured bytes in _parts
        self._length = 0  # full wire length so far
        self._frames = 0
        self.piece: bytes | None = None

    @property
    def in_message(self) -> bool:
        return self._opcode is not None

    @property
    def compressed(self) -> bool:
        """Whether the message of the last data frame added is compressed."""
        return self._compressed

    def add(self, frame: Frame) -> Message | None:
        """Number ``frame``; return the message it completes, if any."""
        opcode = frame.opcode
        self.piece = None
        if opcode > 2:
            # Ping/pong application data is often a readable token; close frames carry their
            # reason in close_reason; reserved opcodes are unknown bytes.
            frame.text = (opcode == 9 or opcode == 10) and not frame.rsv1
            return None
        if opcode != 0 or self._opcode is None:
            # A new message (a data frame inside a message also starts one: §5.4 violation).
            self.count += 1
            self._opcode = opcode
            self._parts = []
            self._size = 0
            self._length = 0
            self._frames = 0
            self._compressed = opcode != 0 and frame.rsv1 and self._inflater is not None
            # An orphan continuation (opcode 0 here) continues nothing known: bytes.
            self._text = opcode == 1 and not frame.rsv1
            if self._compressed:
                assert self._inflater is not None
                self._inflater.begin()
        frame.message_no = self.count
        frame.fragment_index = self._frames
        frame.text = self._text and not frame.rsv1
        self._frames += 1
        self._length += frame.length
        if self._compressed:
            return self._add_compressed(frame)
        room = self._capture_limit - self._size
        if room > 0 and frame.payload:
            part = frame.payload[:room]
            self._parts.append(part)
            self._size += len(part)
        if not frame.fin:
            return None
        payload = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        message = Message(
            self._opcode,
            payload,
            self._length,
            self._length,
            self._frames,
            len(payload) < self._length,
        )
        self._opcode = None
        self._parts = []
        return message

    def _add_compressed(self, frame: Frame) -> Message | None:
        inflater = self._inflater
        assert inflater is not None and self._opcode is not None
        self.piece = inflater.feed(frame.payload, final=frame.fin, gap=frame.truncated)
        if not frame.fin:
            return None
        ok = inflater.status == "ok"
        message = Message(
            self._opcode,
            inflater.payload(),
            inflater.length,
            self._length,
            self._frames,
            inflater.truncated,
            True,
            None if ok else inflater.detail,
        )
        self._opcode = None
        return message
