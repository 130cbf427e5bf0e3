"""One direction's inspection pipeline: bytes → frames → checks → messages (→ inflated).

The relay feeds every chunk it forwards to ``Inspector.feed`` and gets back the frames that the
chunk completed, each with its violations, message number, ``text`` flag (whether its payload
is uncompressed text of a text message, so it may be shown as text: see ``Frame``) and, on the
last frame of a data message, the completed ``Message`` (inflated when permessage-deflate
compressed it).

``feed`` is on the relay's hot path, so the common case costs a few integer comparisons: a
complete, unfragmented, well-formed data frame of at most 125 bytes arriving while no message is
in progress changes no checker state, so it skips ``Checker.check`` and becomes a message
directly (text is UTF-8-checked with one ``isascii``, or one ``decode`` when not ASCII).
Everything else takes the full path.
"""

from __future__ import annotations

from wsinspect.wire.checks import Checker, Violation, notice, violation
from wsinspect.wire.deflate import DeflateParams, ExtensionError, Inflater, negotiated_deflate
from wsinspect.wire.frames import DEFAULT_CAPTURE_LIMIT, Frame, FrameParser
from wsinspect.wire.messages import Message, MessageAssembler
from wsinspect.wire.sides import Direction

__all__ = ["Inspector"]

# Inflater status → the rule that reports it on the frame where it happened.
_STATUS_RULES = {
    "error": "inflate-error",
    "lost": "not-decodable",
}


class Inspector:
    """Inspection state for one direction of one connection.

    ``direction`` is ``"c2s"`` (frames from the client: must be masked) or ``"s2c"``.
    ``extensions`` is the negotiated ``Sec-WebSocket-Extensions`` value (the server's answer, or
    ``None``); when it accepts permessage-deflate, compressed messages are inflated with this
    direction's window bits and context-takeover rule. An answer that does not validate
    (``extension_error`` then says why) is still used, leniently, so the payloads show.
    ``max_message_size`` flags longer messages (RFC 6455 §7.4.1, 1009).

    Every compressed message is inflated to its end, however long (see ``wire.deflate``): the
    parser streams the payload of frames longer than the capture limit (``FrameParser.pieces``)
    and each piece goes to the inflater in stream order, between the frames completed around it.
    """

    __slots__ = (
        "_assembler",
        "_checker",
        "_fast_hlen",
        "_fast_max",
        "_inflater",
        "_parser",
        "direction",
        "extension_error",
        "extensions",
    )

    def __init__(
        self,
        direction: Direction,
        *,
        capture_limit: int = DEFAULT_CAPTURE_LIMIT,
        extensions: str | None = None,
        max_message_size: int | None = None,
    ) -> None:
        if direction not in ("c2s", "s2c"):
            raise ValueError(f"direction must be 'c2s' or 's2c', not {direction!r}")
        self.direction = direction
        self.extensions = extensions
        self.extension_error: str | None = None
        self._inflater: Inflater | None = None
        if extensions and "permessage-deflate" in extensions.lower():
            params: DeflateParams | None
            try:
                params = negotiated_deflate(extensions)
            except ExtensionError as exc:
                # The peers may still go ahead (a lax client); show what can be shown.
                self.extension_error = str(exc)
                params = DeflateParams()
            if params is not None:
                bits, no_takeover = params.for_direction(direction)
                self._inflater = Inflater(
                    bits, no_context_takeover=no_takeover, capture_limit=capture_limit
                )
        self._parser = FrameParser(capture_limit, streaming=self._inflater is not None)
        self._checker = Checker(
            direction, deflate=self._inflater is not None, max_message_size=max_message_size
        )
        self._assembler = MessageAssembler(capture_limit, self._inflater)
        # Fast path: a header of exactly this length is a 7-bit length (so minimal and at
        # most 125) with the right mask bit for this direction.
        self._fast_hlen = 6 if direction == "c2s" else 2
        if capture_limit < 125:
            self._fast_hlen = -1  # payloads may be cut: always take the full path
        self._fast_max = 125 if max_message_size is None else min(125, max_message_size)

    @property
    def parser(self) -> FrameParser:
        return self._parser

    @property
    def checker(self) -> Checker:
        return self._checker

    @property
    def compressed(self) -> bool:
        """Whether permessage-deflate applies to this direction."""
        return self._inflater is not None

    @property
    def at_rest(self) -> bool:
        """Between frames and between messages, nothing compressed and no close seen: then a
        run of complete, unfragmented, valid data frames changes nothing here but the counts,
        so it may be inspected elsewhere (the C scan of ``wsinspect.speedups``) and
        accounted with :meth:`skip`."""
        return self._inflater is None and self._checker.idle and not self._parser.pending

    @property
    def in_message(self) -> bool:
        """Between the fragments of a data message (its last complete frame had no FIN)."""
        return self._assembler.in_message

    @property
    def messages(self) -> int:
        """Messages started so far (the last message number given)."""
        return self._assembler.count

    def skip(self, n: int, messages: int) -> None:
        """Account for ``n`` bytes of frames inspected elsewhere while :attr:`at_rest`, which
        were ``messages`` complete messages."""
        self._parser.skip(n)
        self._assembler.count += messages

    def pending(self) -> tuple[Frame, list[Violation]] | None:
        """The frame still arriving (header parsed, payload incomplete) and its header's
        violations, for reporting when the connection ends before it completes."""
        frame = self._parser.current
        if frame is None:
            return None
        return frame, self._checker.check_header(frame)

    def feed(self, data: bytes) -> list[Frame]:
        """Parse ``data`` (any chunk of this direction's stream); return the completed frames,
        checked and numbered, in order."""
        parser = self._parser
        frames = parser.feed(data)
        if parser.pieces:
            self._feed_streamed(frames, parser.pieces)
            return frames
        self._inspect(frames)
        return frames

    def _feed_streamed(self, frames: list[Frame], pieces: list[tuple[int, Frame, bytes]]) -> None:
        """Inspect ``frames`` with the payload ``pieces`` of long frames in stream order: the
        pieces with index ``i`` go to the inflater before ``frames[i]`` is inspected."""
        assembler = self._assembler
        done = 0
        for index, frame, piece in pieces:
            if index > done:
                self._inspect(frames[done:index])
                done = index
            assembler.stream(frame, piece)
        if done < len(frames):
            self._inspect(frames[done:] if done else frames)

    def _inspect(self, frames: list[Frame]) -> None:
        """Check, number and reassemble ``frames``, in order."""
        checker = self._checker
        assembler = self._assembler
        fast_hlen = self._fast_hlen
        fast_max = self._fast_max
        for frame in frames:
            header = frame.header
            b0 = header[0]
            if (
                (b0 == 0x82 or b0 == 0x81)
                and len(header) == fast_hlen
                and checker.idle
                and frame.length <= fast_max
            ):
                payload = frame.payload
                if b0 == 0x81 and not payload.isascii():
                    try:
                        payload.decode("utf-8")
                    except UnicodeDecodeError:
                        self._full(frame)
                        continue
                assembler.count += 1
                frame.message_no = assembler.count
                n = frame.length
                frame.message = Message(b0 & 0x0F, payload, n, n, 1)
                frame.text = b0 == 0x81  # an uncompressed text message (no RSV bits)
                continue
            self._full(frame)

    def _full(self, frame: Frame) -> None:
        """The full path: every check, reassembly, inflating."""
        checker = self._checker
        violations = checker.check(frame)
        assembler = self._assembler
        inflater = self._inflater
        frame.message = assembler.add(frame)
        if inflater is not None and assembler.compressed and frame.message_no:
            violations.extend(
                self._check_inflated(frame, inflater, assembler.status_before, assembler.piece)
            )
        if violations:
            frame.violations = tuple(violations)

    def _check_inflated(
        self, frame: Frame, inflater: Inflater, before: str, piece: bytes | None
    ) -> list[Violation]:
        """Violations and notices from inflating ``frame``'s part of a compressed message."""
        checker = self._checker
        out: list[Violation] = []
        side = checker.side
        status = inflater.status
        first = frame.fragment_index == 0
        if status != "ok" and (first or before == "ok"):
            # Reported once, on the frame where decoding stopped (or the first frame of a
            # message that could not be decoded at all).
            rule = _STATUS_RULES[status]
            make = violation if rule == "inflate-error" else notice
            out.append(make(rule, side, inflater.detail))
        if piece is not None:
            cut = status != "ok" or (frame.fin and inflater.truncated)
            if piece or frame.fin:
                out.extend(checker.check_text(piece, final=frame.fin, cut=cut))
            out.extend(checker.check_inflated_size(inflater.length))
        return out
