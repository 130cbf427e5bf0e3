"""Reassembly of data messages from frames (RFC 6455 §5.4), bounded by the capture limit."""

from __future__ import annotations

from dataclasses import dataclass

from wsinspect.wire.frames import DEFAULT_CAPTURE_LIMIT, Frame

__all__ = ["Message", "MessageAssembler"]


@dataclass(frozen=True, slots=True)
class Message:
    """A complete data message: ``payload`` is what the application sees (inflated when
    permessage-deflate applies), cut at the capture limit; ``length`` is its full size and
    ``wire_len`` the size of the frame payloads that carried it (differs only when compressed).
    """

    opcode: int
    payload: bytes
    length: int
    wire_len: int
    frames: int
    truncated: bool = False
    compressed: bool = False


class MessageAssembler:
    """Numbers frames into messages and joins their payloads; one per direction.

    Control frames belong to no message (``message_no`` 0). A continuation frame without a
    started message is numbered as a message of its own so nothing is lost; ``wire.checks``
    reports it.
    """

    __slots__ = ("_capture_limit", "_count", "_frames", "_length", "_opcode", "_parts", "_size")

    def __init__(self, capture_limit: int = DEFAULT_CAPTURE_LIMIT) -> None:
        self._capture_limit = capture_limit
        self._count = 0  # messages started so far
        self._opcode: int | None = None  # opcode of the message in progress
        self._parts: list[bytes] = []
        self._size = 0  # captured bytes in _parts
        self._length = 0  # full wire length so far
        self._frames = 0

    @property
    def in_message(self) -> bool:
        return self._opcode is not None

    def add(self, frame: Frame) -> Message | None:
        """Number ``frame``; return the message it completes, if any."""
        if frame.opcode >= 8:
            return None
        if frame.opcode != 0 or self._opcode is None:
            # A new message (a data frame inside a message also starts one: §5.4 violation).
            self._count += 1
            self._opcode = frame.opcode or 0
            self._parts = []
            self._size = 0
            self._length = 0
            self._frames = 0
        frame.message_no = self._count
        frame.fragment_index = self._frames
        self._frames += 1
        self._length += frame.length
        room = self._capture_limit - self._size
        if room > 0 and frame.payload:
            part = frame.payload[:room]
            self._parts.append(part)
            self._size += len(part)
        if not frame.fin:
            return None
        payload = b"".join(self._parts)
        message = Message(
            opcode=self._opcode,
            payload=payload,
            length=self._length,
            wire_len=self._length,
            frames=self._frames,
            truncated=len(payload) < self._length,
        )
        self._opcode = None
        self._parts = []
        return message
