"""The recording format (docs/recording-format.md): its name and version, and every event's one
dict form.

``to_dict(event)`` is the dict form of an event: the recording line and the ``--log-format
json`` line once it is serialised with :func:`dumps`. ``event_from_dict(d)`` is its inverse. The
``type`` names and the field names are a contract: fields may be added, never renamed. Every
other writer of recording lines (``recording.encoder``'s fast lines, the C module's
``scan_lines``) is held equal to ``dumps(to_dict(event))`` by tests, byte for byte.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, get_args

from wsinspect.events import (
    ActionKind,
    ConnectionClosed,
    ConnectionOpened,
    Event,
    FaultInjected,
    FrameSeen,
    HandshakeRejected,
    HttpExchange,
    MessageAction,
    MessageSeen,
    Notice,
    Written,
)
from wsinspect.wire.checks import Violation
from wsinspect.wire.frames import Frame
from wsinspect.wire.messages import Message
from wsinspect.wire.refusal import RefusedBy
from wsinspect.wire.sides import Direction, Initiator

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "REDACTED",
    "REDACTED_HEADERS",
    "UnknownRecordType",
    "decode_payload",
    "dumps",
    "encode_payload",
    "event_from_dict",
    "redact_headers",
    "to_dict",
]

FORMAT_NAME = "wsinspect-recording"
FORMAT_VERSION = 1

#: Headers whose values carry credentials; their values are replaced unless ``--no-redact``.
REDACTED_HEADERS = frozenset({"cookie", "set-cookie", "authorization", "proxy-authorization"})
#: What a redacted value reads in the recording (``replay`` leaves such headers out).
REDACTED = "[redacted]"


class UnknownRecordType(ValueError):
    """A record of a type this version does not know (a newer writer's, say): skip it."""


#: The canonical text of a dict form: compact JSON, non-ASCII text as itself (readable and
#: smaller). One encoder for the process: ``json.dumps`` with options builds a new one per call,
#: which doubles the cost of a small line. (orjson was measured too: no faster here.)
dumps: Callable[[Any], str] = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def redact_headers(headers: list[list[str]]) -> list[list[str]]:
    """Return ``headers`` (the dict form, ``[[name, value], ...]``) with credential values
    replaced by :data:`REDACTED`; names and order are kept so the handshake stays readable."""
    return [
        [name, REDACTED] if name.lower() in REDACTED_HEADERS else [name, value]
        for name, value in headers
    ]


def encode_payload(payload: bytes, text: bool) -> tuple[str, str]:
    """Return ``(payload, encoding)``: UTF-8 text as itself for text data, base64 otherwise."""
    if text:
        try:
            return payload.decode("utf-8"), "text"
        except UnicodeDecodeError:
            pass
    return base64.b64encode(payload).decode("ascii"), "base64"


def decode_payload(value: str, encoding: str) -> bytes:
    return value.encode("utf-8") if encoding == "text" else base64.b64decode(value)


def _recorded_text(d: dict[str, Any]) -> bool:
    """``Frame.text`` of a recorded frame: stored as text, and of an opcode that may be text
    without RSV1. (Recordings made before the flag existed stored the continuations of binary
    messages as text when they decoded; those read back as text still.)"""
    return (
        d.get("encoding") == "text"
        and d.get("opcode") in (0, 1)
        and not d.get("rsv1", False)
    )


# ---- event → dict --------------------------------------------------------------------------


def _open_to_dict(e: ConnectionOpened) -> dict[str, Any]:
    return {
        "type": e.type,
        "conn": e.conn,
        "ts": e.ts,
        "client": e.client,
        "path": e.path,
        "upstream": e.upstream,
        "request_headers": [list(h) for h in e.request_headers],
        "status": e.status,
        "response_headers": [list(h) for h in e.response_headers],
        "subprotocol": e.subprotocol,
        "extensions": e.extensions,
    }


def _frame_to_dict(e: FrameSeen) -> dict[str, Any]:
    """In the dict form the payload is stored as text (``"encoding": "text"``) when
    ``frame.text`` says it may be text and it decodes as UTF-8, as base64 otherwise."""
    f = e.frame
    # The recording stores data frames' text as text; control payloads (ping/pong) are
    # base64 even where the screen shows them as text (format v1: "everything else base64").
    payload, encoding = encode_payload(f.payload, f.text and f.opcode < 8)
    d: dict[str, Any] = {
        "type": e.type,
        "conn": e.conn,
        "seq": e.seq,
        "dir": e.direction,
        "ts": e.ts,
        "fin": f.fin,
        "rsv1": f.rsv1,
        "rsv2": f.rsv2,
        "rsv3": f.rsv3,
        "opcode": f.opcode,
        "masked": f.masked,
        "mask": f.mask_key.hex() if f.mask_key is not None else None,
        "len": f.length,
        "header": f.header.hex(),
        "payload": payload,
        "encoding": encoding,
        "truncated": f.truncated,
        "message": f.message_no,
        "fragment": f.fragment_index,
        "violations": [v.to_dict() for v in f.violations],
    }
    if f.sha256 is not None:
        d["sha256"] = f.sha256
    if f.opcode == 8:
        d["close_code"] = f.close_code
        d["close_reason"] = f.close_reason
    if not e.delivered:
        d["delivered"] = False
    if e.written is not None:
        d["written"] = e.written
    return d


def _message_to_dict(e: MessageSeen) -> dict[str, Any]:
    m = e.message
    payload, encoding = encode_payload(m.payload, m.opcode == 1)
    d: dict[str, Any] = {
        "type": e.type,
        "conn": e.conn,
        "dir": e.direction,
        "ts": e.ts,
        "message": e.message_no,
        "opcode": m.opcode,
        "len": m.length,
        "payload": payload,
        "encoding": encoding,
        "frames": m.frames,
        "truncated": m.truncated,
    }
    if m.compressed:
        d["wire_len"] = m.wire_len
    if m.note:
        d["note"] = m.note
    if m.sha256 is not None:
        d["sha256"] = m.sha256
    return d


def _close_to_dict(e: ConnectionClosed) -> dict[str, Any]:
    d: dict[str, Any] = {
        "type": e.type,
        "conn": e.conn,
        "ts": e.ts,
        "initiator": e.initiator,
        "how": e.how,
        "code": e.code,
        "reason": e.reason,
        "client_close": list(e.client_close) if e.client_close else None,
        "upstream_close": list(e.upstream_close) if e.upstream_close else None,
        "duration": e.duration,
        "frames": dict(e.frames),
        "bytes": dict(e.bytes),
    }
    if e.detail:
        d["detail"] = e.detail
    return d


def _rejected_to_dict(e: HandshakeRejected) -> dict[str, Any]:
    return {
        "type": e.type,
        "conn": e.conn,
        "ts": e.ts,
        "client": e.client,
        "path": e.path,
        "status": e.status,
        "reason": e.reason,
        "origin": e.origin,
        "rule": e.rule,
        "by": e.by,
        "request_headers": [list(h) for h in e.request_headers],
    }


def _http_to_dict(e: HttpExchange) -> dict[str, Any]:
    return {
        "type": e.type,
        "conn": e.conn,
        "ts": e.ts,
        "client": e.client,
        "method": e.method,
        "path": e.path,
        "status": e.status,
        "size": e.size,
        "duration": e.duration,
    }


def _fault_to_dict(e: FaultInjected) -> dict[str, Any]:
    return {
        "type": e.type,
        "conn": e.conn,
        "ts": e.ts,
        "fault": e.fault,
        "action": e.action,
        "dir": e.direction,
        **({"detail": e.detail} if e.detail else {}),
    }


def _action_to_dict(e: MessageAction) -> dict[str, Any]:
    text = e.opcode == 1
    payload, encoding = encode_payload(e.payload, text)
    d: dict[str, Any] = {
        "type": e.type,
        "conn": e.conn,
        "ts": e.ts,
        "action": e.action,
        "dir": e.direction,
        "opcode": e.opcode,
        "len": e.length,
        "payload": payload,
        "encoding": encoding,
        "message": e.message_no,
    }
    if e.held is not None:
        d["held"] = e.held
    if e.original is not None:
        d["original"], d["original_encoding"] = encode_payload(e.original, text)
    if e.close_code is not None:
        d["close_code"] = e.close_code
        d["close_reason"] = e.close_reason or ""
    if e.by:
        d["by"] = e.by
    return d


def _notice_to_dict(e: Notice) -> dict[str, Any]:
    return {"type": e.type, "ts": e.ts, "level": e.level, "text": e.text, "conn": e.conn}


_TO_DICT: dict[type, Callable[[Any], dict[str, Any]]] = {
    ConnectionOpened: _open_to_dict,
    FrameSeen: _frame_to_dict,
    MessageSeen: _message_to_dict,
    ConnectionClosed: _close_to_dict,
    HandshakeRejected: _rejected_to_dict,
    HttpExchange: _http_to_dict,
    FaultInjected: _fault_to_dict,
    MessageAction: _action_to_dict,
    Notice: _notice_to_dict,
}


def to_dict(event: Event) -> dict[str, Any]:
    """The dict form of ``event`` (format v1): its recording line once serialised with
    :func:`dumps`. Unredacted (the writer redacts credentials unless told otherwise)."""
    try:
        convert = _TO_DICT[event.__class__]
    except KeyError:
        for cls, convert in _TO_DICT.items():  # a subclass: its base type's form
            if isinstance(event, cls):
                return convert(event)
        raise TypeError(f"not an event: {event!r}") from None
    return convert(event)


# ---- dict → event --------------------------------------------------------------------------


def _open_from_dict(d: dict[str, Any]) -> ConnectionOpened:
    return ConnectionOpened(
        conn=d["conn"],
        ts=d["ts"],
        client=d.get("client", ""),
        path=d.get("path", "/"),
        upstream=d.get("upstream", ""),
        request_headers=tuple((n, v) for n, v in d.get("request_headers", ())),
        status=d.get("status", 101),
        response_headers=tuple((n, v) for n, v in d.get("response_headers", ())),
        subprotocol=d.get("subprotocol"),
        extensions=d.get("extensions"),
    )


def _frame_from_dict(d: dict[str, Any]) -> FrameSeen:
    mask_hex = d.get("mask")
    header_hex = d.get("header")
    frame = Frame(
        fin=d["fin"],
        rsv1=d.get("rsv1", False),
        rsv2=d.get("rsv2", False),
        rsv3=d.get("rsv3", False),
        opcode=d["opcode"],
        masked=d.get("masked", mask_hex is not None),
        mask_key=bytes.fromhex(mask_hex) if mask_hex else None,
        length=d["len"],
        header=bytes.fromhex(header_hex) if header_hex else b"",
        payload=decode_payload(d.get("payload", ""), d.get("encoding", "base64")),
        sha256=d.get("sha256"),
        violations=tuple(Violation.from_dict(v) for v in d.get("violations", ())),
        message_no=d.get("message", 0),
        fragment_index=d.get("fragment", 0),
        text=_recorded_text(d),
    )
    return FrameSeen(
        conn=d["conn"],
        seq=d.get("seq", 0),
        direction=_one_of(Direction, d["dir"]),
        ts=d["ts"],
        frame=frame,
        delivered=d.get("delivered", True),
        written=None if d.get("written") is None else _one_of(Written, d["written"]),
    )


def _message_from_dict(d: dict[str, Any]) -> MessageSeen:
    length = d["len"]
    message = Message(
        opcode=d["opcode"],
        payload=decode_payload(d.get("payload", ""), d.get("encoding", "base64")),
        length=length,
        wire_len=d.get("wire_len", length),
        frames=d.get("frames", 1),
        truncated=d.get("truncated", False),
        compressed="wire_len" in d,
        note=d.get("note"),
        sha256=d.get("sha256"),
    )
    return MessageSeen(d["conn"], _one_of(Direction, d["dir"]), d["ts"], message, d.get("message", 0))


def _close_from_dict(d: dict[str, Any]) -> ConnectionClosed:
    cc = d.get("client_close")
    uc = d.get("upstream_close")
    return ConnectionClosed(
        conn=d["conn"],
        ts=d["ts"],
        initiator=_one_of(Initiator, d["initiator"]),
        how=d.get("how", "unknown"),
        code=d.get("code"),
        reason=d.get("reason"),
        client_close=(cc[0], cc[1]) if cc else None,
        upstream_close=(uc[0], uc[1]) if uc else None,
        duration=d.get("duration", 0.0),
        frames=dict(d.get("frames", {})),
        bytes=dict(d.get("bytes", {})),
        detail=d.get("detail"),
    )


def _rejected_from_dict(d: dict[str, Any]) -> HandshakeRejected:
    return HandshakeRejected(
        conn=d["conn"],
        ts=d["ts"],
        client=d.get("client", ""),
        path=d.get("path", ""),
        status=d["status"],
        reason=d.get("reason", ""),
        origin=d.get("origin"),
        rule=d.get("rule"),
        by=_one_of(RefusedBy, d.get("by", "proxy")),
        request_headers=tuple((n, v) for n, v in d.get("request_headers", ())),
    )


def _http_from_dict(d: dict[str, Any]) -> HttpExchange:
    return HttpExchange(
        d["conn"], d["ts"], d.get("client", ""), d["method"], d["path"], d["status"],
        d.get("size", 0), d.get("duration", 0.0),
    )


def _fault_from_dict(d: dict[str, Any]) -> FaultInjected:
    return FaultInjected(
        d["conn"], d["ts"], d["fault"], d.get("action", ""),
        None if d.get("dir") is None else _one_of(Direction, d["dir"]),
        dict(d.get("detail", {})),
    )


def _action_from_dict(d: dict[str, Any]) -> MessageAction:
    original = d.get("original")
    return MessageAction(
        conn=d["conn"],
        ts=d["ts"],
        action=_one_of(ActionKind, d["action"]),
        direction=_one_of(Direction, d["dir"]),
        opcode=d.get("opcode", 1),
        payload=decode_payload(d.get("payload", ""), d.get("encoding", "base64")),
        length=d.get("len", 0),
        held=d.get("held"),
        message_no=d.get("message", 0),
        original=None if original is None else decode_payload(
            original, d.get("original_encoding", "base64")),
        close_code=d.get("close_code"),
        close_reason=d.get("close_reason"),
        by=d.get("by", ""),
    )


def _one_of(kind: Any, value: Any) -> Any:
    """``value`` if it is one of the ``Literal`` type ``kind``'s values, else ``ValueError``
    (the reader skips the line as damaged)."""
    if value not in get_args(kind):
        raise ValueError(f"{value!r} is not one of {', '.join(get_args(kind))}")
    return value


def _notice_from_dict(d: dict[str, Any]) -> Notice:
    return Notice(d["ts"], d.get("level", "info"), d.get("text", ""), d.get("conn", 0))


_FROM_DICT: dict[str, Callable[[dict[str, Any]], Event]] = {
    ConnectionOpened.type: _open_from_dict,
    FrameSeen.type: _frame_from_dict,
    MessageSeen.type: _message_from_dict,
    ConnectionClosed.type: _close_from_dict,
    HandshakeRejected.type: _rejected_from_dict,
    HttpExchange.type: _http_from_dict,
    FaultInjected.type: _fault_from_dict,
    MessageAction.type: _action_from_dict,
    Notice.type: _notice_from_dict,
}


def event_from_dict(d: dict[str, Any]) -> Event:
    """Rebuild an event from its dict form: :class:`UnknownRecordType` for a type this version
    does not know, ``KeyError``/``ValueError`` on a malformed dict (a direction other than
    ``c2s``/``s2c``, say)."""
    convert = _FROM_DICT.get(d.get("type", ""))
    if convert is None:
        raise UnknownRecordType(f"unknown event type {d.get('type')!r}")
    return convert(d)
