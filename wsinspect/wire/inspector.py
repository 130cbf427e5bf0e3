"""One direction's inspection pipeline: bytes → frames → checks → messages (→ inflated).

The relay feeds every chunk it forwards to ``Inspector.feed`` and gets back the frames that the
chunk completed, each with its violations, message number and, on the last frame of a data
message, the completed ``Message``.
"""

from __future__ import annotations

from wsinspect.wire.frames import DEFAULT_CAPTURE_LIMIT, Frame, FrameParser
from wsinspect.wire.messages import MessageAssembler

__all__ = ["Inspector"]


class Inspector:
    """Inspection state for one direction of one connection.

    ``direction`` is ``"c2s"`` (frames from the client: must be masked) or ``"s2c"``.
    ``extensions`` is the negotiated ``Sec-WebSocket-Extensions`` value (or ``None``).
    """

    __slots__ = ("_assembler", "_parser", "direction", "extensions")

    def __init__(
        self,
        direction: str,
        *,
        capture_limit: int = DEFAULT_CAPTURE_LIMIT,
        extensions: str | None = None,
        max_message_size: int | None = None,
    ) -> None:
        self.direction = direction
        self.extensions = extensions
        self._parser = FrameParser(capture_limit)
        self._assembler = MessageAssembler(capture_limit)

    @property
    def parser(self) -> FrameParser:
        return self._parser

    def feed(self, data: bytes) -> list[Frame]:
        frames = self._parser.feed(data)
        add = self._assembler.add
        for frame in frames:
            frame.message = add(frame)
        return frames
