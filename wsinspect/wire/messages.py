"""Reassembly of data messages from frames (RFC 6455 §5.4), bounded by the capture limit.

With permessage-deflate (RFC 7692) the assembler hands the frames of a compressed message (RSV1
on its first frame) to the direction's ``Inflater`` and the message carries the inflated bytes.
A frame longer than the capture limit is inflated from the pieces of its payload as they stream
through the parser (``stream``), before it completes, so every message inflates to its end.
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
    lost compression context); ``payload`` is then what could be inflated (empty when nothing
    could) and ``length`` the inflated size reached, never compressed bytes.

    ``sha256`` is set on a compressed message inflated to its end whose inflated size exceeds
    the capture limit (``truncated``): the SHA-256 (hex) of the whole inflated message.
    """

    opcode: int
    payload: bytes
    length: int
    wire_len: int
    frames: int
    truncated: bool = False
    compressed: bool = False
    note: str | None = None
    sha256: str | None = None


class MessageAssembler:
    """Numbers frames into messages and joins their payloads; one per direction.

    Control frames and reserved opcodes belong to no message (``message_no`` 0). A continuation
    frame without a started message is numbered as a message of its own so nothing is lost;
    ``wire.checks`` reports it. ``count`` is the number of messages started so far (the
    inspector's fast path numbers complete single-frame messages itself by incrementing it).

    With an ``inflater``, a message whose first frame has RSV1 is compressed: its frames are
    inflated as they come and ``piece`` holds the inflated bytes the last ``add`` produced. A frame
    longer than the capture limit is inflated from its payload's pieces: ``stream(frame, piece)``
    as they arrive, then ``add(frame)`` when it completes (``piece`` then holds the output kept
    from all of its pieces, and ``status_before`` the inflater's status before its first one).

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
        "_streamed",
        "_streaming",
        "_text",
        "count",
        "piece",
        "status_before",
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
        self._streaming: Frame | None = None  # the long frame whose pieces are being inflated
        self._streamed: list[bytes] = []  # the output kept from its pieces (capture-limited)
        self.status_before = "ok"  # the inflater's status before the frame last added

    @property
    def in_message(self) -> bool:
        return self._opcode is not None

    @property
    def compressed(self) -> bool:
        """Whether the message of the last data frame added is compressed."""
        return self._compressed

    def stream(self, frame: Frame, piece: bytes) -> None:
        """Inflate ``piece``, the next unmasked piece of ``frame``'s payload, while ``frame``
        (longer than the capture limit) is still arriving, when it belongs to a compressed
        message; otherwise ignore it. ``add(frame)`` must follow when ``frame`` completes, and
        no other frame may be added in between."""
        if frame is not self._streaming:
            if frame.opcode > 2:
                return  # a control frame or a reserved opcode: not part of a message
            self._streaming = frame
            self._streamed = []
            if frame.opcode != 0 or self._opcode is None:
                self._start(frame)
            if self._compressed:
                assert self._inflater is not None
                self.status_before = self._inflater.status
        if self._compressed:
            assert self._inflater is not None
            out = self._inflater.feed(piece, final=False)
            if out:
                self._streamed.append(out)

    def _start(self, frame: Frame) -> None:
        """Start a new message with ``frame`` (a data frame)."""
        opcode = frame.opcode
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

    def add(self, frame: Frame) -> Message | None:
        """Number ``frame``; return the message it completes, if any."""
        opcode = frame.opcode
        self.piece = None
        if opcode > 2:
            # Ping/pong application data is often a readable token; close frames carry their
            # reason in close_reason; reserved opcodes are unknown bytes.
            frame.text = (opcode == 9 or opcode == 10) and not frame.rsv1
            return None
        streamed = frame is self._streaming
        if streamed:
            self._streaming = None  # ``stream`` saw it start (and started its message)
        elif opcode != 0 or self._opcode is None:
            # A new message (a data frame inside a message also starts one: §5.4 violation).
            self._start(frame)
        frame.message_no = self.count
        frame.fragment_index = self._frames
        frame.text = self._text and not frame.rsv1
        self._frames += 1
        self._length += frame.length
        if self._compressed:
            return self._add_compressed(frame, streamed)
        room = self._capture_limit - self._size
        if room > 0 and frame.payload:
            part = frame.payload[:room]
            self._parts.append(part)
            self._size += len(part)
        if not frame.fin:
            return None
        payload = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        assert self._opcode is not None  # a data frame started or continued the message
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

    def _add_compressed(self, frame: Frame, streamed: bool) -> Message | None:
        inflater = self._inflater
        assert inflater is not None and self._opcode is not None
        if streamed:
            # Its payload was inflated piece by piece as it arrived: only the end is left.
            pieces = self._streamed
            self._streamed = []
            last = inflater.feed(b"", final=True) if frame.fin else b""
            if last:
                pieces.append(last)
            self.piece = b"".join(pieces)
        else:
            self.status_before = inflater.status
            self.piece = inflater.feed(frame.payload, final=frame.fin)
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
            inflater.sha256,
        )
        self._opcode = None
        return message
