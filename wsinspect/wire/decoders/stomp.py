"""STOMP 1.0, 1.1 and 1.2 frames over WebSocket, sans-IO.

A frame is a command line, header lines ``name:value``, an empty line, the body and a NUL
(``^@``); lines end in LF or CRLF. The body ends at the NUL, or after ``content-length`` bytes
when that header is there (a body may then contain NULs). Header names and values are escaped
(``\\r`` from 1.2, ``\\n``, ``\\c``, ``\\\\`` from 1.1) except in CONNECT (and STOMP) and CONNECTED
frames; an undefined escape is an error (STOMP 1.2, "Value Encoding"). A repeated header keeps its first
value. A message of end-of-lines only is a heart-beat; one message may hold several frames, and
a frame split across messages (as stomp.js sends large frames) is joined: its first parts
decode as ``continued``.

The version comes from the subprotocol (``v10.stomp``...), then from the CONNECTED frame's
``version`` header; 1.2 when neither says.

Fields (of the message's first frame): ``command``, ``dest`` (``destination``), ``id``,
``subscription``, ``receipt`` (``receipt`` or ``receipt-id``), ``frames`` (when more than
one). A filter matches any frame of the message. Filter prefix ``stomp``:
``stomp:dest=/queue/a``.
"""

from __future__ import annotations

from typing import Any

from wsinspect.wire.decoders import Decoded, FieldValue, Handshake, register
from wsinspect.wire.decoders._text import describe_bytes, text_of
from wsinspect.wire.sides import Direction

__all__ = ["Stomp", "StompConnection", "StompFrame", "parse_frames"]

PROTOCOL = "stomp"
COMMANDS = frozenset({"CONNECT", "STOMP", "SEND", "SUBSCRIBE", "UNSUBSCRIBE", "ACK", "NACK",
                      "BEGIN", "COMMIT", "ABORT", "DISCONNECT", "CONNECTED", "MESSAGE",
                      "RECEIPT", "ERROR"})
VERSIONS = {"v10.stomp": "1.0", "v11.stomp": "1.1", "v12.stomp": "1.2"}
ESCAPES = {"1.1": {"n": "\n", "c": ":", "\\": "\\"},
           "1.2": {"r": "\r", "n": "\n", "c": ":", "\\": "\\"}}
MAX_PENDING = 1 << 20  # a frame split across messages is joined up to this size

StompFrame = dict[str, Any]  # {"command", "headers", "body"}


class _Incomplete(Exception):
    """The data ends inside a frame."""


class _Bad(Exception):
    """The data is not STOMP (the message says why)."""


def _unescape(text: str, version: str) -> str:
    table = ESCAPES.get(version)
    if table is None or "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            nxt = text[i + 1] if i + 1 < len(text) else ""
            if nxt not in table:
                raise _Bad(f"undefined escape \\{nxt} in a header")
            out.append(table[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _line(data: bytes, pos: int) -> tuple[str, int]:
    end = data.find(b"\n", pos)
    if end < 0:
        raise _Incomplete
    raw = data[pos:end].removesuffix(b"\r")
    text, why = text_of(raw)
    if text is None:
        raise _Bad(why or "")
    return text, end + 1


def _frame(data: bytes, pos: int, version: str) -> tuple[StompFrame, int]:
    if data.find(b"\n", pos) < 0:  # the command line itself is cut: could it be one?
        start = data[pos:pos + 16].removesuffix(b"\r").decode("latin-1")
        if not any(c.startswith(start) for c in COMMANDS):
            raise _Bad(f"unknown command {start!r}")
    command, pos = _line(data, pos)
    if command not in COMMANDS:
        raise _Bad(f"unknown command {command[:40]!r}")
    escaped = command not in ("CONNECT", "STOMP", "CONNECTED")
    headers: dict[str, str] = {}
    while True:
        line, pos = _line(data, pos)
        if not line:
            break
        name, sep, value = line.partition(":")
        if not sep:
            raise _Bad(f"header line without ':' ({line[:40]!r})")
        if escaped:
            name, value = _unescape(name, version), _unescape(value, version)
        headers.setdefault(name, value)
    length = headers.get("content-length", "")
    if length.isascii() and length.isdigit() and len(length) < 16:
        end = pos + int(length)
        if end >= len(data):
            raise _Incomplete
        if data[end] != 0:
            raise _Bad("no NUL after content-length bytes of body")
    else:
        end = data.find(b"\x00", pos)
        if end < 0:
            raise _Incomplete
    raw = data[pos:end]
    text, _ = text_of(raw)
    body: Any = text if text is not None else describe_bytes(raw)
    return {"command": command, "headers": headers, "body": body}, end + 1


def parse_frames(data: bytes, version: str = "1.2") -> list[StompFrame]:
    """The frames in ``data`` (empty: a heart-beat); raises ``_Incomplete`` or ``_Bad``."""
    frames, pos = [], 0
    while pos < len(data):
        if data[pos] in b"\r\n":  # heart-beats, and EOLs after a frame's NUL
            pos += 1
            continue
        frame, pos = _frame(data, pos, version)
        frames.append(frame)
    return frames


def frame_fields(frame: StompFrame) -> dict[str, FieldValue]:
    headers = frame["headers"]
    fields: dict[str, FieldValue] = {"command": frame["command"]}
    for name, key in (("destination", "dest"), ("id", "id"), ("subscription", "subscription"),
                      ("receipt", "receipt"), ("receipt-id", "receipt")):
        if name in headers:
            fields.setdefault(key, headers[name])
    return fields


def _frame_summary(frame: StompFrame) -> str:
    headers = frame["headers"]
    words = [frame["command"]]
    if "destination" in headers:
        words.append(headers["destination"])
    for name, shown in (("id", "id"), ("subscription", "sub"), ("receipt", "receipt"),
                        ("receipt-id", "receipt"), ("version", "version")):
        if name in headers:
            words.append(f"{shown}={headers[name]}")
    if frame["command"] == "ERROR" and "message" in headers:
        words.append(f'"{headers["message"][:60]}"')
    return " ".join(words)


class StompConnection:
    """One connection's decoder: the version in use and, per direction, the start of a frame
    split across messages."""

    def __init__(self, version: str = "1.2") -> None:
        self.version = version
        self._pending: dict[Direction, bytes] = {}

    def decode(self, direction: Direction, opcode: int, payload: bytes) -> Decoded:
        data = self._pending.pop(direction, b"") + payload
        try:
            frames = parse_frames(data, self.version)
        except _Incomplete:
            if len(data) > MAX_PENDING:
                why = f"a frame longer than {MAX_PENDING} bytes without its NUL"
                return Decoded(PROTOCOL, "error", f"{PROTOCOL}: not a STOMP frame ({why})",
                               error=why)
            self._pending[direction] = data
            return Decoded(PROTOCOL, "partial", f"{PROTOCOL} part of a frame ({len(data)} bytes"
                           " so far)", body={"partial": len(data)}, continued=True)
        except _Bad as exc:
            return Decoded(PROTOCOL, "error", f"{PROTOCOL}: not a STOMP frame ({exc})",
                           error=str(exc))
        if not frames:
            return Decoded(PROTOCOL, "heartbeat", f"{PROTOCOL} heart-beat", {"command": "heartbeat"})
        for frame in frames:
            if frame["command"] == "CONNECTED" and frame["headers"].get("version") in ESCAPES:
                self.version = frame["headers"]["version"]
        first = frames[0]
        fields = frame_fields(first)
        summary = f"{PROTOCOL} {_frame_summary(first)}"
        if len(frames) > 1:
            fields["frames"] = len(frames)
            summary += f" (+{len(frames) - 1} frame{'s' if len(frames) > 2 else ''})"
        return Decoded(PROTOCOL, first["command"], summary, fields, {"frames": frames})


class Stomp:
    """The STOMP decoder: chosen by the ``v1x.stomp`` subprotocols, or ``--decode stomp``."""

    name = "stomp"
    filter_prefix = "stomp"
    subprotocols: tuple[str, ...] = tuple(VERSIONS)

    def recognises(self, handshake: Handshake) -> bool:
        return False

    def start(self, handshake: Handshake) -> StompConnection:
        return StompConnection(VERSIONS.get((handshake.subprotocol or "").lower(), "1.2"))

    def field_matches(self, decoded: Decoded, key: str, value: str) -> bool:
        frames = decoded.body.get("frames", []) if isinstance(decoded.body, dict) else []
        candidates = [frame_fields(f) for f in frames] or [decoded.fields]
        return any(key in f and str(f[key]) == value for f in candidates)


register(Stomp())
