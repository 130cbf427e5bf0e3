"""Recording format v2 (docs/recording-format-v2.md): one line per frame, each payload once.

A v2 recording is JSON Lines like v1, and most lines are v1's: the header (``"version": 2``)
and every event but frames and messages keep their v1 dict form (``format.to_dict``). What
changes is the frame line, which carries the bulk of a recording:

* the frame's flags, opcode, mask key and length are not repeated: they are all in its header
  bytes (``"hdr"``, hex), which the reader parses (RFC 6455 §5.2). Only a frame whose fields do
  not match its header bytes (a frame built by hand, an imported one) spells them out, with
  v1's names;
* the payload is stored once, under ``"text"`` (UTF-8 text, as itself) or ``"b64"`` (base64);
  the key says the encoding;
* the message a frame completes (``MessageSeen``, published right after its last frame) goes
  on that frame's line as ``"end"``: an object with only the message fields that differ from
  what the frame says. A one-frame message is its frame: ``"end":{}``. A fragmented or
  compressed message stores its (inflated, reassembled) payload there, since each line must be
  readable alone (``reader.events_at``) and the inflater's state is not in the line.
* rare fields keep v1's names and are written only when they say something: ``fragment``
  (not 0), ``violations``, ``sha256``, ``delivered`` (false), ``written``.

A message that comes without its frame (a HAR import, say) keeps its v1 line (``"type":
"message"``).

``line_dict(frame_event, message_event)`` is the canonical dict form of a frame line: the fast
lines of ``recording.encoder`` and the C module's ``scan_lines`` are held equal to
``dumps(line_dict(...))`` by tests, byte for byte. ``events_from_dict(d)`` is its inverse:
the very events v1 would give back.
"""

from __future__ import annotations

import base64
from typing import Any

from wsinspect.events import Event, FrameSeen, MessageSeen, Written
from wsinspect.recording.format import (
    _one_of,
    encode_payload,
    event_from_dict,
    to_dict,
)
from wsinspect.wire.checks import Violation
from wsinspect.wire.frames import Frame
from wsinspect.wire.messages import Message
from wsinspect.wire.sides import Direction

__all__ = [
    "FORMAT_VERSION_2",
    "HeaderFields",
    "events_from_dict",
    "header_fields",
    "line_dict",
    "merges",
    "to_line_dict",
]

FORMAT_VERSION_2 = 2

#: ``(fin, rsv1, rsv2, rsv3, opcode, masked, mask_key, length)`` as a frame header says them.
HeaderFields = tuple[bool, bool, bool, bool, int, bool, bytes | None, int]


def header_fields(header: bytes) -> HeaderFields | None:
    """The fields a frame's header bytes say (RFC 6455 §5.2), or ``None`` when they are not
    exactly one whole header (too short, too long)."""
    if len(header) < 2:
        return None
    b0, b1 = header[0], header[1]
    n = b1 & 0x7F
    masked = b1 >= 0x80
    ext = 2 if n == 126 else 8 if n == 127 else 0
    if len(header) != 2 + ext + 4 * masked:
        return None
    length = int.from_bytes(header[2 : 2 + ext], "big") if ext else n
    return (
        b0 >= 0x80, bool(b0 & 0x40), bool(b0 & 0x20), bool(b0 & 0x10), b0 & 15, masked,
        header[-4:] if masked else None, length,
    )


def _fields_of(f: Frame) -> HeaderFields:
    return (f.fin, f.rsv1, f.rsv2, f.rsv3, f.opcode, f.masked, f.mask_key, f.length)


def merges(frame: FrameSeen, event: Event) -> bool:
    """Whether ``event`` is the message ``frame`` completes (it then goes on the frame's
    line): the very ``Message`` the inspector attached to the frame, same connection,
    direction and number."""
    return (
        event.__class__ is MessageSeen
        and event.message is frame.frame.message
        and frame.frame.message is not None
        and event.conn == frame.conn
        and event.direction == frame.direction
        and event.message_no == frame.frame.message_no
    )


def _payload_item(d: dict[str, Any], payload: bytes, text: bool) -> None:
    value, encoding = encode_payload(payload, text)
    d["text" if encoding == "text" else "b64"] = value


def line_dict(e: FrameSeen, m: MessageSeen | None = None) -> dict[str, Any]:
    """The v2 dict form of a frame line: frame ``e`` and, when ``m`` is the message it
    completes (see :func:`merges`), that message's fields that differ from the frame's."""
    f = e.frame
    d: dict[str, Any] = {"type": e.type, "conn": e.conn, "seq": e.seq, "dir": e.direction,
                         "ts": e.ts, "hdr": f.header.hex()}
    if header_fields(f.header) != _fields_of(f):
        d.update(fin=f.fin, rsv1=f.rsv1, rsv2=f.rsv2, rsv3=f.rsv3, opcode=f.opcode,
                 masked=f.masked, mask=f.mask_key.hex() if f.mask_key is not None else None,
                 len=f.length)
    # As v1: data frames' text as text; control payloads (ping/pong) base64.
    _payload_item(d, f.payload, f.text and f.opcode < 8)
    d["msg"] = f.message_no
    if f.fragment_index:
        d["fragment"] = f.fragment_index
    if f.violations:
        d["violations"] = [v.to_dict() for v in f.violations]
    if f.sha256 is not None:
        d["sha256"] = f.sha256
    if not e.delivered:
        d["delivered"] = False
    if e.written is not None:
        d["written"] = e.written
    if m is not None:
        d["end"] = _end_dict(e, m)
    return d


def _end_dict(e: FrameSeen, m: MessageSeen) -> dict[str, Any]:
    f, msg = e.frame, m.message
    end: dict[str, Any] = {}
    if m.ts != e.ts:
        end["ts"] = m.ts
    if msg.opcode != f.opcode:
        end["opcode"] = msg.opcode
    if msg.length != f.length:
        end["len"] = msg.length
    if msg.payload is not f.payload and msg.payload != f.payload:
        _payload_item(end, msg.payload, msg.opcode == 1)
    if msg.frames != 1:
        end["frames"] = msg.frames
    if msg.truncated != f.truncated:
        end["truncated"] = msg.truncated
    if msg.compressed:
        end["wire_len"] = msg.wire_len
    if msg.note:
        end["note"] = msg.note
    if msg.sha256 is not None:
        end["sha256"] = msg.sha256
    return end


def _payload_of(d: dict[str, Any]) -> tuple[bytes, bool] | None:
    """A payload item: ``(bytes, stored as text)``, ``None`` when there is none."""
    text = d.get("text")
    if text is not None:
        return text.encode("utf-8"), True
    b64 = d.get("b64")
    if b64 is not None:
        return base64.b64decode(b64), False
    return None


def events_from_dict(d: dict[str, Any]) -> list[Event]:
    """The events of one v2 line's dict: a frame (and the message it completes), or the one
    event of any other line (v1's form). Raises as ``format.event_from_dict`` does on a
    malformed dict."""
    if d.get("type") != "frame":
        return [event_from_dict(d)]
    header = bytes.fromhex(d.get("hdr", ""))
    if "opcode" in d:
        mask_hex = d.get("mask")
        fields: HeaderFields | None = (
            d["fin"], d.get("rsv1", False), d.get("rsv2", False), d.get("rsv3", False),
            d["opcode"], d.get("masked", mask_hex is not None),
            bytes.fromhex(mask_hex) if mask_hex else None, d["len"],
        )
    else:
        fields = header_fields(header)
    if fields is None:
        raise ValueError(f"bad frame header {d.get('hdr')!r}")
    fin, rsv1, rsv2, rsv3, opcode, masked, key, length = fields
    item = _payload_of(d)
    payload, as_text = item if item is not None else (b"", False)
    viol = d.get("violations")
    frame = Frame(
        fin, rsv1, rsv2, rsv3, opcode, masked, key, length, header, payload,
        sha256=d.get("sha256"),
        violations=tuple(Violation.from_dict(v) for v in viol) if viol else (),
        message_no=d.get("msg", 0),
        fragment_index=d.get("fragment", 0),
        # As v1's reader: stored as text, and of an opcode that may be text without RSV1.
        text=as_text and opcode in (0, 1) and not rsv1,
    )
    direction = _one_of(Direction, d["dir"])
    written = d.get("written")
    ts = d["ts"]
    fe = FrameSeen(d["conn"], d.get("seq", 0), direction, ts, frame, d.get("delivered", True),
                   None if written is None else _one_of(Written, written))
    end = d.get("end")
    if end is None:
        return [fe]
    m_item = _payload_of(end)
    m_len = end.get("len", length)
    message = Message(
        opcode=end.get("opcode", opcode),
        payload=payload if m_item is None else m_item[0],
        length=m_len,
        wire_len=end.get("wire_len", m_len),
        frames=end.get("frames", 1),
        truncated=end.get("truncated", len(payload) < length),
        compressed="wire_len" in end,
        note=end.get("note"),
        sha256=end.get("sha256"),
    )
    return [fe, MessageSeen(d["conn"], direction, end.get("ts", ts), message, frame.message_no)]


def to_line_dict(event: Event) -> dict[str, Any]:
    """The v2 dict form of a line holding ``event`` alone (a frame without its message, or
    any other event: v1's form)."""
    if isinstance(event, FrameSeen):
        return line_dict(event)
    return to_dict(event)
