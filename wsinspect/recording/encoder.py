"""The recording's line encoder: events to their JSON lines, fast.

``json_line(event)`` is exactly ``format.dumps(format.to_dict(event))`` (the recording's text for
an event, unredacted), several times cheaper for the frame and message events that make up
almost all of a recording: those lines are built directly in one f-string each
(:func:`frame_line`, :func:`message_line`), and big payloads are never copied into the text
of their line (their base64 or escaped text goes to the file as it is; a copy of a fresh
megabyte costs about a millisecond). The uncommon cases (close frames, violations, truncated
or undelivered frames, messages with a note, every other event type) take the general path.

``tests/recording/test_encoder.py`` holds the fast lines equal to the general path, byte for
byte, with and without the C helpers, and a golden recording keeps the format from drifting.
If an event type gains a field, :data:`FAST_LINE_FIELDS` and that test say so loudly: teach
the builders about it.
"""

from __future__ import annotations

from binascii import b2a_base64
from collections.abc import Callable
from json.encoder import encode_basestring as _json_str
from typing import Any

from wsinspect import speedups
from wsinspect.events import Event, FrameSeen, MessageSeen
from wsinspect.recording.format import dumps, to_dict
from wsinspect.recording.format_v2 import header_fields, merges
from wsinspect.wire.frames import Frame
from wsinspect.wire.messages import Message

__all__ = [
    "BIG",
    "FAST_LINE_FIELDS",
    "Base64Of",
    "Line",
    "encode_lines",
    "encode_lines_v2",
    "frame_line",
    "frame_line_v2",
    "json_line",
    "line_text",
    "message_line",
    "piece_bytes",
]

_B = ("false", "true")
CHUNK_BYTES = 1 << 20  # big payload serialised by one ``encode_lines`` call, at most (about)
#: Payloads from this size on are serialised to bytes pieces that go to the file as they are.
BIG = 1 << 14



class Base64Of:
    """The base64 of a big binary payload, not computed yet: a piece of a v2 line that
    becomes its bytes (:meth:`encode`) only where the line is written. The recorder writes in
    a thread of its own, where the C encoder runs without holding the GIL: the base64 of big
    payloads (the bulk of a recording's CPU time) then runs beside the relay, on another core,
    instead of in the relay's thread. ``len()`` is the length of the base64."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __len__(self) -> int:
        return 4 * ((len(self.data) + 2) // 3)

    def encode(self) -> bytes:
        """The base64 (standard, padded, no newline)."""
        return _base64(self.data)


#: A piece of serialised text to write: bytes, or the base64 of a payload still to compute.
Piece = bytes | Base64Of
#: A serialised line: its text, or for a big payload its pieces ``[text, piece..., text]`` (the
#: payload's JSON in the middle, never copied into the text around it).
Line = str | list[str | Piece]
#: A payload value in JSON: a string literal, or the pieces of a big one.
_Value = str | list[str | Piece]

# "fin":...,"rsv1":...,"rsv2":...,"rsv3":...,"opcode":... for each first header byte (§5.2).
_FLAGS = [
    f'"fin":{_B[b >> 7]},"rsv1":{_B[b >> 6 & 1]},"rsv2":{_B[b >> 5 & 1]},'
    f'"rsv3":{_B[b >> 4 & 1]},"opcode":{b & 15}'
    for b in range(256)
]
_UNMASKED = ',"masked":false,"mask":null,"len":'


# Base64 of a big payload (``b2a_base64`` without the newline). The C version where built:
# binascii encodes bit by bit, 4x slower on a MiB, and base64 of big binary payloads is most of
# a recording's CPU time. (Small payloads: binascii, no call to pay for.)
_base64 = speedups.b64encode


def _payload_json(payload: bytes, text: bool) -> tuple[_Value, str]:
    """``format.encode_payload``, already as JSON: ``(value, encoding)``.

    A big payload's value is a list of bytes pieces (quotes and base64, or the escaped UTF-8
    text), so that the megabyte is not copied again into a line, a batch and its encoding: each
    copy of a fresh megabyte costs about a millisecond in page faults.
    """
    if text:
        try:
            s = payload.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            if len(payload) < BIG:
                return _json_str(s), '"text"'
            return [_json_str(s).encode("utf-8")], '"text"'
    if len(payload) < BIG:
        return '"' + b2a_base64(payload, newline=False).decode("ascii") + '"', '"base64"'
    return [b'"', _base64(payload), b'"'], '"base64"'


def piece_bytes(piece: Piece) -> bytes:
    """A piece's bytes (the base64 computed now, for a :class:`Base64Of`)."""
    return piece if isinstance(piece, bytes) else piece.encode()


def line_text(line: Line) -> str:
    """A line's whole text (``json_line`` and the tests)."""
    if isinstance(line, str):
        return line
    return "".join(p if isinstance(p, str) else piece_bytes(p).decode("utf-8") for p in line)


# The last payload serialised, its JSON form and the message of its frame: a one-frame message
# carries the very same bytes object as its frame, so its message line reuses the frame's (base64
# of 1 MiB costs ~1 ms). Only for that very message: another one may share the bytes object (b""
# always does) and not its opcode.
_last_payload: list[Any] = [None, "", "", None]
# The last timestamp and its text: float repr costs ~0.5 µs, and the relay gives every frame of
# one received chunk (and its message events) the same timestamp.
_last_ts: list[Any] = [None, "null"]


_DIRS = {"c2s": '"c2s"', "s2c": '"s2c"'}


def _ts_json(ts: float) -> str:
    """``ts`` as the json module writes a float; the frames of one chunk share a timestamp,
    so the last one is remembered."""
    lts = _last_ts
    if ts != lts[0]:
        lts[1] = repr(ts)
        lts[0] = ts
    text: str = lts[1]
    return text


def frame_line(e: FrameSeen) -> Line | None:
    """The JSON line of a common frame event, built directly: the same text as encoding
    ``to_dict(e)`` (a test holds them equal) at a fraction of the cost, since this runs once per
    frame. ``None`` for the uncommon cases (close frames, violations, truncated, undelivered,
    no header bytes), which take the general path.

    Written for speed (every attribute read and call counts at ~1 µs a line): small payloads
    are encoded inline and the line is one f-string.
    """
    f = e.frame
    header = f.header
    if (f.violations or f.opcode == 8 or f.sha256 is not None or not e.delivered or not header
            or e.written is not None):
        return None
    key = f.mask_key
    if key is None:
        mask = ',"masked":true,"mask":null,"len":' if f.masked else _UNMASKED
    else:
        mask = f',"masked":{_B[f.masked]},"mask":"{key.hex()}","len":'
    data = f.payload
    text = f.text and f.opcode < 8  # control payloads: base64 (see format.to_dict)
    payload: _Value | None = None
    if len(data) < BIG:
        if text:
            try:
                payload = _json_str(data.decode("utf-8"))
            except UnicodeDecodeError:
                payload = None  # not UTF-8 after all (a character cut between fragments)
        if payload is None:
            payload = '"' + b2a_base64(data, newline=False).decode("ascii") + '"'
            encoding = '"base64"'
        else:
            encoding = '"text"'
    else:
        payload, encoding = _payload_json(data, text)
    message = f.message
    if message is not None and text == (message.opcode == 1):
        last = _last_payload
        last[0] = data
        last[1] = payload
        last[2] = encoding
        last[3] = message
    ts_text = _ts_json(e.ts)
    d = e.direction
    # The flags come from the header byte they were parsed from: one lookup, not five.
    head = (
        f'{{"type":"frame","conn":{e.conn!r},"seq":{e.seq!r},"dir":{_DIRS.get(d) or _json_str(d)},'
        f'"ts":{ts_text},{_FLAGS[header[0]]}{mask}{f.length!r},"header":"{header.hex()}",'
        '"payload":'
    )
    tail = (
        f',"encoding":{encoding},"truncated":{_B[len(data) < f.length]},'
        f'"message":{f.message_no!r},"fragment":{f.fragment_index!r},"violations":[]}}'
    )
    if payload.__class__ is str:
        return f"{head}{payload}{tail}"
    return [head, *payload, tail]


def message_line(e: MessageSeen) -> Line | None:
    """The JSON line of a message event, built directly (same text as ``to_dict(e)``);
    ``None`` for a message with a ``note`` (general path)."""
    m = e.message
    if m.note:
        return None
    last = _last_payload
    payload: _Value
    if m.payload is last[0] and m is last[3]:
        payload, encoding = last[1], last[2]
    else:
        payload, encoding = _payload_json(m.payload, m.opcode == 1)
    last[0] = last[3] = None
    ts_text = _ts_json(e.ts)
    d = e.direction
    wire = f',"wire_len":{m.wire_len!r}' if m.compressed else ""
    if m.sha256 is not None:
        wire += f',"sha256":{_json_str(m.sha256)}'
    head = (
        f'{{"type":"message","conn":{e.conn!r},"dir":{_DIRS.get(d) or _json_str(d)},'
        f'"ts":{ts_text},"message":{e.message_no!r},"opcode":{m.opcode!r},"len":{m.length!r},'
        '"payload":'
    )
    tail = f',"encoding":{encoding},"frames":{m.frames!r},"truncated":{_B[m.truncated]}{wire}}}'
    if payload.__class__ is str:
        return f"{head}{payload}{tail}"
    return [head, *payload, tail]


#: The fields the fast lines were written for, per type. ``tests/recording/test_encoder.py``
#: fails when an event type's fields differ: a field added to ``to_dict`` must be taught to
#: :func:`frame_line` / :func:`message_line` too, or their lines would miss it.
FAST_LINE_FIELDS = {
    FrameSeen: ("conn", "seq", "direction", "ts", "frame", "delivered", "written"),
    MessageSeen: ("conn", "direction", "ts", "message", "message_no"),
    Frame: ("fin", "rsv1", "rsv2", "rsv3", "opcode", "masked", "mask_key", "length", "header",
            "payload", "start", "sha256", "violations", "message_no", "fragment_index", "message",
            "text"),
    Message: ("opcode", "payload", "length", "wire_len", "frames", "truncated", "compressed",
              "note", "sha256"),
}


# Event type → its fast line builder. Exact types: a subclass may add fields the fast lines do
# not know.
_FAST_LINES: dict[type, Callable[[Any], Line | None]] = {
    FrameSeen: frame_line,
    MessageSeen: message_line,
}


def json_line(event: Event) -> str:
    """``event``'s dict form as one compact JSON line (no newline), unredacted: the recording's
    text for it, as ``--log-format json`` prints it. Frame and message events take the fast
    lines (several times cheaper than ``to_dict`` and ``json``)."""
    fast = _FAST_LINES.get(event.__class__)
    line = fast(event) if fast is not None else None
    if line is None:
        return dumps(to_dict(event))
    return line_text(line)


def encode_lines(serialise: Callable[[Event], Line], events: list[Event | tuple[bytes, int]], pos: int,
                 stop: int) -> tuple[list[Piece], int, int]:
    """Serialise ``events[pos:stop]`` to the bytes to write, newline after each line; stop early
    once ``CHUNK_BYTES`` of big payloads are done. Returns the bytes, where it stopped and how
    many lines they hold. Frame and message events take the fast lines; the rest (and the fast
    lines' uncommon cases) go through ``serialise``; lines that came serialised
    (``publish_lines``) go out as they are.

    Small lines are joined and encoded once; a big payload's pieces go out as they are.
    """
    out: list[Piece] = []
    lines: list[str] = []
    big = 0
    count = stop - pos
    fast_line = _FAST_LINES.get
    while pos < stop:
        event = events[pos]
        pos += 1
        if isinstance(event, tuple):  # (lines serialised already, how many)
            if lines:  # the text so far, each line with its newline
                lines.append("")
                out.append("\n".join(lines).encode("utf-8"))
                lines = []
            out.append(event[0])
            count += event[1] - 1
            continue
        # Exact types: a subclass may add fields the fast lines do not know.
        fast = fast_line(event.__class__)
        line = fast(event) if fast is not None else None
        if line is None:
            line = serialise(event)
        if line.__class__ is str:
            lines.append(line)
            continue
        lines, added = _put_pieces(line, lines, out)  # type: ignore[arg-type]
        big += added
        if big >= CHUNK_BYTES:
            break
    if lines:
        lines.append("")
        out.append("\n".join(lines).encode("utf-8"))
    return out, pos, count - (stop - pos)


def _put_pieces(line: list[Any], lines: list[str], out: list[Any]) -> tuple[list[str], int]:
    """A line in pieces, ``[head, payload pieces..., tail]``: the head ends the text so far
    (written to ``out`` with ``lines``), the payload pieces go to ``out`` as they are, the tail
    starts the next text. The new ``lines`` and the payload bytes added."""
    lines.append(line[0])
    out.append("\n".join(lines).encode("utf-8"))
    added = 0
    for piece in line[1:-1]:
        out.append(piece)
        added += len(piece)
    return [line[-1]], added


# ---- format v2 (format_v2): one line per frame, its message on it ---------------------------


def frame_line_v2(e: FrameSeen, m: MessageSeen | None) -> Line | None:
    """The v2 line of a common frame event and the message it completes (``m``, or ``None``),
    built directly: the same text as ``dumps(format_v2.line_dict(e, m))`` (a test holds them
    equal). ``None`` for the uncommon cases (violations, digests, undelivered or written frames,
    fields that differ from the header bytes, a message that is not simply its one frame),
    which take the general path."""
    f = e.frame
    header = f.header
    if f.violations or f.sha256 is not None or not e.delivered or e.written is not None:
        return None
    if header_fields(header) != (f.fin, f.rsv1, f.rsv2, f.rsv3, f.opcode, f.masked, f.mask_key,
                                 f.length):
        return None
    data = f.payload
    if m is None:
        end = "}"
    else:
        msg = m.message
        if (m.ts != e.ts or msg.opcode != f.opcode or msg.length != f.length
                or (msg.payload is not data and msg.payload != data) or msg.frames != 1
                or msg.truncated != (len(data) < f.length) or msg.compressed or msg.note
                or msg.sha256 is not None):
            return None
        end = ',"end":{}}'
    text = f.text and f.opcode < 8
    payload: _Value | None = None
    key = '"b64":'
    if len(data) < BIG:
        if text:
            try:
                payload = _json_str(data.decode("utf-8"))
                key = '"text":'
            except UnicodeDecodeError:
                payload = None
        if payload is None:
            payload = '"' + b2a_base64(data, newline=False).decode("ascii") + '"'
    else:
        if text:
            try:
                payload = [_json_str(data.decode("utf-8")).encode("utf-8")]
                key = '"text":'
            except UnicodeDecodeError:
                payload = None
        if payload is None:  # its base64 is made where the line is written (``Base64Of``)
            payload = [b'"', Base64Of(data), b'"']
    d = e.direction
    fragment = f.fragment_index
    head = (
        f'{{"type":"frame","conn":{e.conn!r},"seq":{e.seq!r},"dir":{_DIRS.get(d) or _json_str(d)},'
        f'"ts":{_ts_json(e.ts)},"hdr":"{header.hex()}",{key}'
    )
    if fragment:
        tail = f',"msg":{f.message_no!r},"fragment":{fragment!r}{end}'
    else:
        tail = f',"msg":{f.message_no!r}{end}'
    if payload.__class__ is str:
        return f"{head}{payload}{tail}"
    return [head, *payload, tail]


#: ``serialise(event, message)`` of ``encode_lines_v2``: the general path's line for ``event``
#: and, for a frame, the message it completes (``None``: none on this line).
SerialiseV2 = Callable[[Event, "MessageSeen | None"], Line]


def encode_lines_v2(serialise: SerialiseV2, events: list[Event | tuple[bytes, int]], pos: int,
                    stop: int) -> tuple[list[Piece], int, int]:
    """:func:`encode_lines` for format v2: a frame event and the message event right after it
    that it completes (``format_v2.merges``) make one line (the relay publishes them one after
    the other). Returns the pieces to write (:func:`piece_bytes` each), where it stopped and
    how many events they hold."""
    out: list[Piece] = []
    lines: list[str] = []
    big = 0
    count = 0
    end = len(events)
    while pos < stop:
        event = events[pos]
        pos += 1
        if event.__class__ is tuple:  # (lines serialised already, how many events)
            if lines:
                lines.append("")
                out.append("\n".join(lines).encode("utf-8"))
                lines = []
            out.append(event[0])
            count += event[1]
            continue
        count += 1
        line: Line | None
        if event.__class__ is FrameSeen:
            m = events[pos] if pos < end else None
            if m is not None and merges(event, m):  # type: ignore[arg-type]
                pos += 1
                count += 1
            else:
                m = None
            line = frame_line_v2(event, m)  # type: ignore[arg-type]
            if line is None:
                line = serialise(event, m)  # type: ignore[arg-type]
        else:
            line = serialise(event, None)  # type: ignore[arg-type]
        if line.__class__ is str:
            lines.append(line)
            continue
        lines, added = _put_pieces(line, lines, out)  # type: ignore[arg-type]
        big += added
        if big >= CHUNK_BYTES:
            break
    if lines:
        lines.append("")
        out.append("\n".join(lines).encode("utf-8"))
    return out, pos, count
