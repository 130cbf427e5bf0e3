"""Lossless, incremental WebSocket frame codec (RFC 6455 §5.2).

An inspector must show exactly what crossed the wire, so this parser never rejects, repairs or
drops anything: reserved opcodes, RSV bits, non-minimal lengths, unmasked client frames and
oversized control frames all come out as frames, and ``wire.checks`` says what they break.

``FrameParser.feed`` takes bytes in chunks of any size and returns the frames completed so far.
Any split of the same stream gives the same frames, because the only state carried between
chunks is a partial header (at most 13 bytes) and the progress through one payload. Payloads are
captured (and unmasked) up to ``capture_limit`` bytes; a longer payload is cut there, and its full
length and the SHA-256 of the full unmasked payload are kept, so memory stays flat whatever the
declared length (up to 2**63 - 1, or even the 2**64 - 1 that §5.2 forbids).

With ``streaming`` set, the unmasked payload of every frame longer than the capture limit is also
handed out in pieces as it arrives (``pieces``, the pieces of the last ``feed`` only), so a
consumer (the inflater of permessage-deflate) sees all of it without the parser keeping it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from wsinspect import speedups

if TYPE_CHECKING:
    from wsinspect.wire.checks import Violation
    from wsinspect.wire.messages import Message

__all__ = [
    "DEFAULT_CAPTURE_LIMIT",
    "Frame",
    "FrameParser",
    "Opcode",
    "encode_frame",
    "mask",
    "opcode_from_name",
    "opcode_name",
]

DEFAULT_CAPTURE_LIMIT = 1 << 20


class Opcode(IntEnum):
    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


_OPCODE_NAMES = {0: "cont", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}
_NAME_OPCODES = {name: code for code, name in _OPCODE_NAMES.items()}
_NAME_OPCODES["continuation"] = 0


def opcode_name(opcode: int) -> str:
    """Short lower-case name of an opcode; reserved ones read ``reserved-0x3``."""
    return _OPCODE_NAMES.get(opcode) or f"reserved-0x{opcode:x}"


def opcode_from_name(name: str) -> int:
    """Inverse of :func:`opcode_name` (also accepts ``continuation``); raises ``ValueError``."""
    if name in _NAME_OPCODES:
        return _NAME_OPCODES[name]
    if name.startswith("reserved-0x"):
        return int(name[len("reserved-0x") :], 16)
    raise ValueError(f"unknown opcode name {name!r}")


#: XOR ``data`` with the 4-byte mask ``key`` (§5.3); masking and unmasking are the same.
#: ``mask(data, key, offset=0)``: ``offset`` is the position of ``data[0]`` within the payload,
#: so a payload can be unmasked in pieces. The C version where built (1 MiB: 0.1 ms), else
#: ``speedups.unmask_py`` (1 MiB: ~1 ms); bound once, here.
mask = speedups.unmask


@dataclass(slots=True, eq=False)
class Frame:
    """One frame as it crossed the wire.

    ``header`` holds the raw header bytes and ``payload`` the unmasked payload, cut at the capture
    limit (``truncated`` tells, ``sha256`` then holds the digest of the whole unmasked payload).
    ``start`` is the offset of the first header byte in its direction's byte stream. The last
    five fields are filled by ``wire.inspector`` after parsing.

    ``text`` says whether the payload may be shown as text (where it decodes as UTF-8): true for
    a text frame and the continuations of a text message (RFC 6455 §5.6) when the message is not
    compressed (no RSV1 on its first frame, RFC 7692 §6), and for ping and pong frames, whose
    application data is often a readable token. False for binary messages, compressed messages
    (their payload is deflate output), close frames (``close_code``/``close_reason`` carry what
    is readable) and reserved opcodes. The frame alone cannot tell (a continuation does not say
    what it continues), so only the inspector, which follows the message, sets it; a frame built
    anywhere else keeps the safe default, bytes shown as hex or base64. Every consumer (the
    recording, the renderer, the TUI) reads this one flag.
    """

    fin: bool
    rsv1: bool
    rsv2: bool
    rsv3: bool
    opcode: int
    masked: bool
    mask_key: bytes | None
    length: int
    header: bytes
    payload: bytes
    start: int = 0
    sha256: str | None = None
    violations: tuple[Violation, ...] = ()
    message_no: int = 0
    fragment_index: int = 0
    message: Message | None = None
    text: bool = False

    @property
    def truncated(self) -> bool:
        return len(self.payload) < self.length

    @property
    def end(self) -> int:
        """Stream offset just past this frame."""
        return self.start + len(self.header) + self.length

    @property
    def wire_size(self) -> int:
        return len(self.header) + self.length

    @property
    def is_control(self) -> bool:
        return self.opcode >= 8

    @property
    def opcode_name(self) -> str:
        return opcode_name(self.opcode)

    @property
    def close_code(self) -> int | None:
        """Status code of a close frame (§5.5.1), ``None`` when absent or not a close frame."""
        if self.opcode != Opcode.CLOSE or len(self.payload) < 2:
            return None
        return int.from_bytes(self.payload[:2], "big")

    @property
    def close_reason(self) -> str | None:
        """Reason of a close frame, decoded leniently (``checks`` flags bad UTF-8)."""
        if self.opcode != Opcode.CLOSE or len(self.payload) < 2:
            return None
        return self.payload[2:].decode("utf-8", "replace")

    @property
    def wire_bytes(self) -> bytes:
        """The frame's bytes as sent (header and re-masked payload); exact unless truncated."""
        body = mask(self.payload, self.mask_key) if self.mask_key else self.payload
        return self.header + body


class FrameParser:
    """Incremental frame parser for one direction of one connection.

    >>> p = FrameParser()
    >>> [f.payload for f in p.feed(encode_frame(Opcode.TEXT, b"hi")[:1])]
    []
    >>> [f.payload for f in p.feed(encode_frame(Opcode.TEXT, b"hi")[1:])]
    [b'hi']
    """

    __slots__ = (
        "_capture_limit",
        "_captured",
        "_cur",
        "_done",
        "_hasher",
        "_head",
        "_offset",
        "_remaining",
        "pieces",
        "streaming",
    )

    def __init__(
        self, capture_limit: int = DEFAULT_CAPTURE_LIMIT, *, streaming: bool = False
    ) -> None:
        self._capture_limit = capture_limit
        #: Whether to hand out the payloads of long frames in ``pieces``.
        self.streaming = streaming
        #: With ``streaming``: the unmasked payload pieces of frames longer than the capture
        #: limit that the last ``feed`` took, in order, as ``(index, frame, piece)``: ``index``
        #: is the number of frames that ``feed`` had completed before the piece, so the piece
        #: belongs to the frame at that index of the returned list, or to ``current`` when the
        #: list is no longer. Every payload byte of such a frame is in exactly one piece (its
        #: first capture-limit bytes too), whatever the chunking. Empty when there were none;
        #: held only until the next ``feed`` (at most the size of one chunk).
        self.pieces: list[tuple[int, Frame, bytes]] = []
        self._head = b""  # bytes of a header not complete yet
        self._offset = 0  # stream offset of the first byte of the next feed
        self._cur: Frame | None = None  # frame whose payload is still arriving
        self._remaining = 0  # payload bytes of ``_cur`` still to come
        self._done = 0  # payload bytes of ``_cur`` seen so far
        self._captured: list[bytes] = []
        self._hasher: hashlib._Hash | None = None

    @property
    def offset(self) -> int:
        """Bytes fed so far."""
        return self._offset

    @property
    def current(self) -> Frame | None:
        """The frame whose header is parsed but whose payload is still arriving, if any.

        Its ``payload`` is empty until it completes. Lets a caller report a frame that may never
        complete (a declared length of 2**63 and more, say) when the connection ends.
        """
        return self._cur

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame (header or payload) that are not yet in a frame."""
        if self._cur is not None:
            return len(self._cur.header) + self._done
        return len(self._head)

    def skip(self, n: int) -> None:
        """Account for ``n`` bytes of whole frames that were parsed elsewhere (the C scan of
        ``wsinspect.speedups``); only between frames."""
        assert self._cur is None and not self._head, "skip() inside a frame"
        self._offset += n

    def feed(self, data: bytes) -> list[Frame]:
        """Consume ``data`` and return the frames it completes, in order."""
        frames: list[Frame] = []
        if self.pieces:
            self.pieces = []
        base = self._offset
        self._offset += len(data)
        if self._head:
            base -= len(self._head)
            data = self._head + data
            self._head = b""
        pos = 0
        end = len(data)
        if self._cur is not None:
            pos = self._continue_payload(data, 0, frames)
        capture_limit = self._capture_limit
        while pos < end:
            # Header, parsed in place from the chunk.
            if end - pos < 2:
                self._head = data[pos:]
                return frames
            b0 = data[pos]
            b1 = data[pos + 1]
            length = b1 & 0x7F
            hlen = 2
            if length == 126:
                hlen = 4
                if end - pos < 4:
                    self._head = data[pos:]
                    return frames
                length = int.from_bytes(data[pos + 2 : pos + 4], "big")
            elif length == 127:
                hlen = 10
                if end - pos < 10:
                    self._head = data[pos:]
                    return frames
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
            key: bytes | None = None
            if b1 & 0x80:
                if end - pos < hlen + 4:
                    self._head = data[pos:]
                    return frames
                key = data[pos + hlen : pos + hlen + 4]
                hlen += 4
            start = base + pos
            header = data[pos : pos + hlen]
            pos += hlen
            if end - pos >= length and length <= capture_limit:
                # The whole frame is in this chunk: the common, fast case.
                body = data[pos : pos + length]
                pos += length
                frames.append(
                    Frame(
                        bool(b0 & 0x80),
                        bool(b0 & 0x40),
                        bool(b0 & 0x20),
                        bool(b0 & 0x10),
                        b0 & 0x0F,
                        key is not None,
                        key,
                        length,
                        header,
                        mask(body, key) if key is not None else body,
                        start,
                    )
                )
                continue
            self._cur = Frame(
                bool(b0 & 0x80),
                bool(b0 & 0x40),
                bool(b0 & 0x20),
                bool(b0 & 0x10),
                b0 & 0x0F,
                key is not None,
                key,
                length,
                header,
                b"",
                start,
            )
            self._remaining = length
            self._done = 0
            self._captured = []
            self._hasher = hashlib.sha256() if length > capture_limit else None
            pos = self._continue_payload(data, pos, frames)
        return frames

    def _continue_payload(self, data: bytes, pos: int, frames: list[Frame]) -> int:
        """Take the payload of the frame in progress from ``data[pos:]``; return the new pos."""
        cur = self._cur
        assert cur is not None
        take = min(self._remaining, len(data) - pos)
        piece = data[pos : pos + take]
        need_plain = self._hasher is not None
        room = self._capture_limit - self._done
        if room > 0 or need_plain:
            part = piece if need_plain else piece[:room]
            if cur.mask_key is not None:
                part = mask(part, cur.mask_key, self._done)
            if self._hasher is not None:
                self._hasher.update(part)
                if self.streaming and part:
                    self.pieces.append((len(frames), cur, part))
            if room > 0:
                self._captured.append(part[:room])
        self._done += take
        self._remaining -= take
        if self._remaining == 0:
            cur.payload = b"".join(self._captured)
            if self._hasher is not None:
                cur.sha256 = self._hasher.hexdigest()
            frames.append(cur)
            self._cur = None
            self._captured = []
            self._hasher = None
        return pos + take


def encode_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask_key: bytes | None = None,
) -> bytes:
    """Serialise one frame with the minimal length encoding; masked when ``mask_key`` is given."""
    b0 = (fin << 7) | (rsv1 << 6) | (rsv2 << 5) | (rsv3 << 4) | (opcode & 0x0F)
    n = len(payload)
    mbit = 0x80 if mask_key is not None else 0
    if n < 126:
        head = bytes((b0, mbit | n))
    elif n < 1 << 16:
        head = bytes((b0, mbit | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, mbit | 127)) + n.to_bytes(8, "big")
    if mask_key is None:
        return head + payload
    return head + mask_key + mask(payload, mask_key)
