"""RFC 6455 / RFC 7692 conformance checks that turn frames into ``Violation``s.

``Checker`` is a small state machine for one direction of one connection. It is fed every frame
in order (``check``) and, for compressed text messages, the inflated bytes (``check_text``), and
says which rules each frame breaks, whose fault it is (the sender of that direction) and the close
code a strict peer would answer with. It never changes a frame: the relay forwards violations
unchanged, so the user sees what the real peer does with them.

Rules (stable ids; docs/violations.md is generated from RULES):

=============================  ===================  ====  =========================================
rule                           section              code  what
=============================  ===================  ====  =========================================
unmasked-client-frame          RFC 6455 §5.1        1002  client frame without a mask
masked-server-frame            RFC 6455 §5.1        1002  server frame with a mask
reserved-opcode                RFC 6455 §5.2        1002  opcode 0x3-0x7 or 0xB-0xF
rsv-without-extension          RFC 6455 §5.2        1002  RSV bit no negotiated extension defines
rsv1-on-control-frame          RFC 7692 §6          1002  RSV1 on a control frame (deflate on)
rsv1-on-continuation           RFC 7692 §6          1002  RSV1 on a non-first fragment
non-minimal-length             RFC 6455 §5.2        1002  length not in its shortest encoding
length-msb-set                 RFC 6455 §5.2        1002  64-bit length with the top bit set
control-frame-too-long         RFC 6455 §5.5        1002  control payload over 125 bytes
fragmented-control-frame       RFC 6455 §5.5        1002  control frame without FIN
continuation-without-message   RFC 6455 §5.4        1002  continuation with no message started
data-frame-inside-message      RFC 6455 §5.4        1002  new text/binary inside a fragmented one
invalid-utf8                   RFC 6455 §8.1        1007  text message is not UTF-8
close-payload-1-byte           RFC 6455 §5.5.1      1002  close body of exactly one byte
invalid-close-code             RFC 6455 §7.4        1002  reserved or out-of-range close code
invalid-close-reason           RFC 6455 §5.5.1      1007  close reason is not UTF-8
frame-after-close              RFC 6455 §5.5.1      1002  anything sent after a close frame
message-too-big                RFC 6455 §7.4.1      1009  message over ``max_message_size``
inflate-error                  RFC 7692 §7.2.2      1002  compressed payload does not inflate
not-decodable (notice)         RFC 7692 §7.1.1      1002  context lost: message cannot be inflated
=============================  ===================  ====  =========================================

Notices (``severity="notice"``) describe a limit of the inspector, not a fault of the peer: a
``--strict`` relay must not close a connection for them.

``message-too-big`` counts a message's payload bytes (inflated bytes when compressed; a
compressed frame longer than the limit on the wire is over it too). ``Checker.check_start``
says, from the header of a frame still arriving, which rules stop that frame before any of its
payload goes on: ``frame-after-close``, ``message-too-big`` for a declared length over the
limit, ``length-msb-set`` and ``control-frame-too-long``, the lengths a peer must not wait for.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wsinspect.wire.closecodes import is_valid_close_code
from wsinspect.wire.sides import Direction

if TYPE_CHECKING:
    from wsinspect.wire.frames import Frame

__all__ = ["SIDES", "Checker", "Violation", "notice", "violation"]

# Who sends the frames of a direction, hence who is at fault for them.
SIDES = {"c2s": "client", "s2c": "server"}


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: ``rule`` is a stable id (``unmasked-client-frame``), ``section`` the RFC
    section (``RFC 6455 §5.1``), ``side`` who is at fault (``client`` or ``server``), ``message`` a
    human sentence, ``close_code`` what a strict peer would close with (1002, 1007, 1009).
    ``severity`` is ``error`` for a peer's fault and ``notice`` for an inspector limit (a
    decompression bomb not inflated past the limit, say) that must not trigger ``--strict``."""

    rule: str
    section: str
    side: str
    message: str
    close_code: int = 1002
    severity: str = "error"

    @property
    def is_notice(self) -> bool:
        return self.severity == "notice"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "rule": self.rule,
            "section": self.section,
            "side": self.side,
            "message": self.message,
            "close_code": self.close_code,
        }
        if self.severity != "error":
            d["severity"] = self.severity
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Violation:
        return cls(
            d["rule"],
            d["section"],
            d["side"],
            d["message"],
            d.get("close_code", 1002),
            d.get("severity", "error"),
        )


# rule id → (section, close code); one table that docs/gen_violations.py turns into docs/violations.md.
RULES: dict[str, tuple[str, int]] = {
    "unmasked-client-frame": ("RFC 6455 §5.1", 1002),
    "masked-server-frame": ("RFC 6455 §5.1", 1002),
    "reserved-opcode": ("RFC 6455 §5.2", 1002),
    "rsv-without-extension": ("RFC 6455 §5.2", 1002),
    "rsv1-on-control-frame": ("RFC 7692 §6", 1002),
    "rsv1-on-continuation": ("RFC 7692 §6", 1002),
    "non-minimal-length": ("RFC 6455 §5.2", 1002),
    "length-msb-set": ("RFC 6455 §5.2", 1002),
    "control-frame-too-long": ("RFC 6455 §5.5", 1002),
    "fragmented-control-frame": ("RFC 6455 §5.5", 1002),
    "continuation-without-message": ("RFC 6455 §5.4", 1002),
    "data-frame-inside-message": ("RFC 6455 §5.4", 1002),
    "invalid-utf8": ("RFC 6455 §8.1", 1007),
    "close-payload-1-byte": ("RFC 6455 §5.5.1", 1002),
    "invalid-close-code": ("RFC 6455 §7.4", 1002),
    "invalid-close-reason": ("RFC 6455 §5.5.1", 1007),
    "frame-after-close": ("RFC 6455 §5.5.1", 1002),
    "message-too-big": ("RFC 6455 §7.4.1", 1009),
    "inflate-error": ("RFC 7692 §7.2.2", 1002),
    "not-decodable": ("RFC 7692 §7.1.1", 1002),
}
NOTICES = frozenset({"not-decodable"})
# Header rules about a frame's length: a frame that breaks one may never end, so a ``--strict``
# relay acts on its header (``Checker.check_start``) instead of waiting for its payload.
LENGTH_RULES = frozenset({"length-msb-set", "control-frame-too-long"})


def violation(rule: str, side: str, message: str) -> Violation:
    """Build the ``Violation`` for ``rule`` (section and close code from the rule table)."""
    section, code = RULES[rule]
    return Violation(rule, section, side, message, code, "notice" if rule in NOTICES else "error")


notice = violation  # readability at call sites that raise inspector notices

_new_utf8_decoder = codecs.getincrementaldecoder("utf-8")


def _header_length(length: int) -> int:
    """Bytes of the shortest base header (no mask key) for a payload of ``length`` (§5.2)."""
    if length < 126:
        return 2
    if length < 1 << 16:
        return 4
    return 10


class Checker:
    """Conformance state for one direction of one connection.

    ``direction`` is ``c2s`` (the client sends: frames must be masked) or ``s2c`` (must not be).
    ``deflate`` says permessage-deflate was negotiated, which gives RSV1 a meaning on the first
    frame of a data message (RFC 7692 §6); compressed text is then UTF-8-checked by the caller
    feeding the inflated bytes to ``check_text``. ``max_message_size`` (optional) flags messages
    longer than that many bytes (inflated bytes when compressed).

    Edge cases: the UTF-8 check of a text message stops at the first frame whose payload was cut
    at the capture limit (the rest was never captured); a reserved opcode is flagged and takes no
    part in message sequencing; an orphan continuation starts a message of its own, so that its
    followers are not flagged again.
    """

    __slots__ = (
        "_closed",
        "_compressed",
        "_expect_masked",
        "_size",
        "_text",
        "_utf8",
        "_utf8_bad",
        "deflate",
        "idle",
        "in_message",
        "max_message_size",
        "side",
    )

    def __init__(
        self, direction: Direction, *, deflate: bool = False, max_message_size: int | None = None
    ) -> None:
        self.side = SIDES[direction]
        self._expect_masked = direction == "c2s"
        self.deflate = deflate
        self.max_message_size = max_message_size
        self.in_message = False  # a fragmented data message is in progress
        self._closed = False  # a close frame was sent in this direction
        # No message in progress and no close frame seen: a complete, well-formed data frame
        # then changes no state, which lets ``Inspector`` skip ``check`` for it. A plain
        # attribute (not a property) because the inspector reads it for every frame.
        self.idle = True
        self._compressed = False  # the message in progress has RSV1 (deflate)
        self._text = False  # the message in progress is text
        self._utf8: codecs.IncrementalDecoder | None = None
        self._utf8_bad = False  # stop checking after the first error in a message
        self._size = 0  # bytes of the message in progress (wire, or inflated when compressed)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def compressed(self) -> bool:
        """Whether the current (or just completed) data message has RSV1 set under deflate."""
        return self._compressed

    def check(self, frame: Frame) -> list[Violation]:
        """Every rule ``frame`` breaks, given the frames before it (empty list when none)."""
        out: list[Violation] = []
        if self._closed:
            out.append(violation("frame-after-close", self.side, "frame sent after a close frame"))
        out += self.check_header(frame)
        opcode = frame.opcode
        if opcode >= 8:
            if opcode <= 0xA:
                self._check_close(frame, out)
        elif opcode <= 2:
            self._check_data(frame, out)
        self.idle = not self.in_message and not self._closed
        return out

    def check_header(self, frame: Frame) -> list[Violation]:
        """The rules a frame header alone can break; changes no state.

        Usable on a frame whose payload is still arriving (``FrameParser.current``), which may
        never complete when its declared length is absurd.
        """
        out: list[Violation] = []
        side = self.side
        opcode = frame.opcode
        # Masking (§5.1).
        if frame.masked != self._expect_masked:
            if self._expect_masked:
                out.append(violation("unmasked-client-frame", side, "client frame is not masked"))
            else:
                out.append(violation("masked-server-frame", side, "server frame is masked"))
        # Length encoding (§5.2): the header must use the shortest form.
        base = len(frame.header) - (4 if frame.masked else 0)
        length = frame.length
        if length >> 63:
            out.append(
                violation("length-msb-set", side, "64-bit payload length has its top bit set")
            )
        elif base != _header_length(length):
            out.append(
                violation(
                    "non-minimal-length",
                    side,
                    f"length {length} encoded in {base - 2} extended-length bytes; the "
                    f"shortest form uses {_header_length(length) - 2}",
                )
            )
        is_control = opcode >= 8
        if 3 <= opcode <= 7 or opcode >= 0xB:
            out.append(violation("reserved-opcode", side, f"reserved opcode 0x{opcode:x}"))
        # RSV bits (§5.2; RFC 7692 §6 gives RSV1 to permessage-deflate).
        if frame.rsv2 or frame.rsv3:
            bits = "+".join(n for n, b in (("RSV2", frame.rsv2), ("RSV3", frame.rsv3)) if b)
            out.append(
                violation("rsv-without-extension", side, f"{bits} set but no extension defines it")
            )
        if frame.rsv1:
            if not self.deflate:
                out.append(
                    violation(
                        "rsv-without-extension",
                        side,
                        "RSV1 set but no extension was negotiated",
                    )
                )
            elif is_control:
                out.append(violation("rsv1-on-control-frame", side, "RSV1 set on a control frame"))
            elif opcode == 0:
                out.append(
                    violation(
                        "rsv1-on-continuation",
                        side,
                        "RSV1 set on a continuation frame (only the first frame may have it)",
                    )
                )
        if is_control:
            # Control frames (§5.5), reserved ones included: short and unfragmented.
            if frame.length > 125:
                out.append(
                    violation(
                        "control-frame-too-long",
                        side,
                        f"control frame payload of {frame.length} bytes (at most 125)",
                    )
                )
            if not frame.fin:
                out.append(violation("fragmented-control-frame", side, "control frame without FIN"))
        return out

    def check_start(self, frame: Frame) -> list[Violation]:
        """The rules the header of ``frame`` shows it breaks before any of its payload is
        read, given the frames before it; changes no state (``check`` still judges the
        frame when it completes, with the same result for these rules).

        A ``--strict`` relay acts on these at the header, before it forwards a byte of the
        frame: ``frame-after-close`` (a close frame is the last one, RFC 6455 §5.5.1: what
        follows is discarded), ``message-too-big`` when the declared length takes the message
        over ``max_message_size`` (a compressed frame: its own length), and the length rules
        (``length-msb-set``, ``control-frame-too-long``): a frame declaring 2**63 - 1 bytes
        would otherwise stream on for ever. Other header rules are left to ``check``.
        """
        out: list[Violation] = []
        if self._closed:
            out.append(violation("frame-after-close", self.side, "frame sent after a close frame"))
        out += [v for v in self.check_header(frame) if v.rule in LENGTH_RULES]
        limit = self.max_message_size
        if limit is not None and frame.opcode <= 2:
            size = frame.length
            if frame.opcode == 0 and self.in_message:
                if self._size < 0:
                    return out  # this message was flagged already
                if not self._compressed:
                    size += self._size  # (compressed: inflated bytes are counted as they come)
            if size > limit:
                out.append(self._too_big(limit))
        return out

    def _check_close(self, frame: Frame, out: list[Violation]) -> None:
        """Close frame body (§5.5.1, §7.4): 0 or 2+ bytes, a sendable code, a UTF-8 reason."""
        side = self.side
        if frame.opcode != 8:
            return
        self._closed = True
        payload = frame.payload
        if frame.length == 1:
            out.append(
                violation(
                    "close-payload-1-byte", side, "close payload of 1 byte (0, or 2 and more)"
                )
            )
        elif len(payload) >= 2:
            code = int.from_bytes(payload[:2], "big")
            if not is_valid_close_code(code):
                out.append(
                    violation("invalid-close-code", side, f"close code {code} may not be sent")
                )
            try:
                payload[2:].decode("utf-8")
            except UnicodeDecodeError as exc:
                if not (frame.truncated and exc.reason == "unexpected end of data"):
                    out.append(
                        violation(
                            "invalid-close-reason",
                            side,
                            f"close reason is not UTF-8 (byte {exc.start})",
                        )
                    )

    def _check_data(self, frame: Frame, out: list[Violation]) -> None:
        side = self.side
        opcode = frame.opcode
        if opcode == 0:
            if not self.in_message:
                out.append(
                    violation(
                        "continuation-without-message",
                        side,
                        "continuation frame without a message in progress",
                    )
                )
                self._start(opcode=0, compressed=False)
        else:
            if self.in_message:
                out.append(
                    violation(
                        "data-frame-inside-message",
                        side,
                        "new data frame while a fragmented message is in progress",
                    )
                )
            self._start(opcode, compressed=self.deflate and frame.rsv1)
        if not self._compressed:
            self._size += frame.length
            self._check_size(out)
            if self._text and not self._utf8_bad:
                bad = self._feed_utf8(frame.payload, frame.fin, frame.truncated)
                if bad is not None:
                    out.append(bad)
        elif (
            self.max_message_size is not None
            and frame.length > self.max_message_size
            and self._size >= 0
        ):
            # A compressed frame longer than the limit on the wire (as ``check_start`` saw).
            self._size = frame.length
            self._check_size(out)
        self.in_message = not frame.fin

    def _start(self, opcode: int, *, compressed: bool) -> None:
        self._compressed = compressed
        self._text = opcode == 1
        self._utf8 = None
        self._utf8_bad = False
        self._size = 0

    def _check_size(self, out: list[Violation]) -> None:
        limit = self.max_message_size
        if limit is not None and self._size > limit and self._size >= 0:
            out.append(self._too_big(limit))
            self._size = -(1 << 62)  # flag once per message

    def _too_big(self, limit: int) -> Violation:
        return violation(
            "message-too-big", self.side, f"message exceeds the maximum size of {limit} bytes"
        )

    def _feed_utf8(self, data: bytes, final: bool, truncated: bool) -> Violation | None:
        """Incremental §8.1 check; a text message split across frames may split a character."""
        if self._utf8 is None:
            if final and not truncated:
                # Whole message in one piece: one C-speed decode, no decoder object.
                if data.isascii():
                    return None
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError as exc:
                    self._utf8_bad = True
                    return violation(
                        "invalid-utf8", self.side, f"text is not UTF-8 (byte {exc.start})"
                    )
                return None
            self._utf8 = _new_utf8_decoder()
        try:
            self._utf8.decode(data, final and not truncated)
        except UnicodeDecodeError as exc:
            self._utf8_bad = True
            return violation("invalid-utf8", self.side, f"text is not UTF-8 ({exc.reason})")
        if truncated:
            # The rest of this payload was never captured: the check cannot go on.
            self._utf8_bad = True
        return None

    def check_text(self, data: bytes, *, final: bool, cut: bool = False) -> list[Violation]:
        """UTF-8-check inflated bytes of the compressed message in progress (when it is text).

        ``data`` is the next piece of the inflated message; ``final`` marks its end; ``cut``
        says the inflated output stopped short (the capture limit, an inflate error), so
        nothing after ``data`` can be checked.
        """
        out: list[Violation] = []
        if self._text and not self._utf8_bad:
            bad = self._feed_utf8(data, final, cut)
            if bad is not None:
                out.append(bad)
        return out

    def check_inflated_size(self, size: int) -> list[Violation]:
        """Check the inflated size so far of the compressed message in progress."""
        out: list[Violation] = []
        if self._size >= 0:
            self._size = size
            self._check_size(out)
        return out
