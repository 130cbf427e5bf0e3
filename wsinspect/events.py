"""What the relay reports: immutable event types and their one dict form (recording format v1).

Every event is created by the relay (or a fault) in one place and turned into a dict in one
place, ``to_dict``; ``event_from_dict`` is the inverse. The dict form is the recording line and
the ``--log-format json`` line, so its ``type`` names and field names are a contract: fields may
be added, never renamed.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, ClassVar

from wsinspect.wire.checks import Violation
from wsinspect.wire.frames import Frame
from wsinspect.wire.messages import Message

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ConnectionClosed",
    "ConnectionOpened",
    "Event",
    "FaultInjected",
    "FrameSeen",
    "HandshakeRejected",
    "HttpExchange",
    "MessageSeen",
    "Notice",
    "decode_payload",
    "encode_payload",
    "event_from_dict",
]

FORMAT_NAME = "wsinspect-recording"
FORMAT_VERSION = 1

Headers = tuple[tuple[str, str], ...]


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


@dataclass(frozen=True, slots=True)
class ConnectionOpened:
    """Both handshakes completed; frames follow."""

    type: ClassVar[str] = "open"
    conn: int
    ts: float
    client: str
    path: str
    upstream: str
    request_headers: Headers = ()
    status: int = 101
    response_headers: Headers = ()
    subprotocol: str | None = None
    extensions: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "conn": self.conn,
            "ts": self.ts,
            "client": self.client,
            "path": self.path,
            "upstream": self.upstream,
            "request_headers": [list(h) for h in self.request_headers],
            "status": self.status,
            "response_headers": [list(h) for h in self.response_headers],
            "subprotocol": self.subprotocol,
            "extensions": self.extensions,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConnectionOpened:
        return cls(
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


# FrameSeen and MessageSeen are not ``frozen``: a frozen dataclass's ``__init__`` sets every
# field through ``object.__setattr__`` and costs ~4x more (600 vs 150 ns), and the relay builds
# one of each per frame and per message on its hot path when something records or shows them.
# Treat them as immutable all the same (nothing assigns to them after creation; the value hash
# stays, as for ``wire.messages.Message``).
@dataclass(slots=True, unsafe_hash=True)
class FrameSeen:
    """One frame that passed (or, with ``delivered=False``, was received and not passed on).

    In the dict form the payload is stored as text (``"encoding": "text"``) when ``frame.text``
    says it may be text and it decodes as UTF-8, as base64 otherwise.
    """

    type: ClassVar[str] = "frame"
    conn: int
    seq: int
    direction: str  # "c2s" or "s2c"
    ts: float
    frame: Frame
    delivered: bool = True

    def to_dict(self) -> dict[str, Any]:
        f = self.frame
        # The recording stores data frames' text as text; control payloads (ping/pong) are
        # base64 even where the screen shows them as text (format v1: "everything else base64").
        payload, encoding = encode_payload(f.payload, f.text and f.opcode < 8)
        d: dict[str, Any] = {
            "type": self.type,
            "conn": self.conn,
            "seq": self.seq,
            "dir": self.direction,
            "ts": self.ts,
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
        if not self.delivered:
            d["delivered"] = False
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FrameSeen:
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
        return cls(
            conn=d["conn"],
            seq=d.get("seq", 0),
            direction=d["dir"],
            ts=d["ts"],
            frame=frame,
            delivered=d.get("delivered", True),
        )


@dataclass(slots=True, unsafe_hash=True)  # not frozen: see FrameSeen
class MessageSeen:
    """A complete data message (reassembled, and inflated when compressed)."""

    type: ClassVar[str] = "message"
    conn: int
    direction: str
    ts: float
    message: Message
    message_no: int = 0

    def to_dict(self) -> dict[str, Any]:
        m = self.message
        payload, encoding = encode_payload(m.payload, m.opcode == 1)
        d: dict[str, Any] = {
            "type": self.type,
            "conn": self.conn,
            "dir": self.direction,
            "ts": self.ts,
            "message": self.message_no,
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
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MessageSeen:
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
        )
        return cls(d["conn"], d["dir"], d["ts"], message, d.get("message", 0))


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """Both sides of a relayed connection have ended.

    ``initiator`` is who ended it first (``client``, ``upstream`` or ``proxy``); ``how`` is
    ``close-handshake`` (both close frames passed), ``fin``, ``rst``, ``timeout``, ``error`` or a
    fault's name; ``code``/``reason`` are the first close frame's; ``client_close`` and
    ``upstream_close`` hold each side's ``(code, reason)`` when it sent a close frame.
    """

    type: ClassVar[str] = "close"
    conn: int
    ts: float
    initiator: str
    how: str
    code: int | None = None
    reason: str | None = None
    client_close: tuple[int | None, str] | None = None
    upstream_close: tuple[int | None, str] | None = None
    duration: float = 0.0
    frames: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "type": self.type,
            "conn": self.conn,
            "ts": self.ts,
            "initiator": self.initiator,
            "how": self.how,
            "code": self.code,
            "reason": self.reason,
            "client_close": list(self.client_close) if self.client_close else None,
            "upstream_close": list(self.upstream_close) if self.upstream_close else None,
            "duration": self.duration,
            "frames": dict(self.frames),
            "bytes": dict(self.bytes),
        }
        if self.detail:
            d["detail"] = self.detail
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConnectionClosed:
        cc = d.get("client_close")
        uc = d.get("upstream_close")
        return cls(
            conn=d["conn"],
            ts=d["ts"],
            initiator=d.get("initiator", "unknown"),
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


@dataclass(frozen=True, slots=True)
class HandshakeRejected:
    """A WebSocket handshake that did not complete: refused by wsinspect (bad request, Origin
    policy, fault) or by the upstream, or failed upstream (502/504). ``status`` is what the
    client was answered."""

    type: ClassVar[str] = "rejected"
    conn: int
    ts: float
    client: str
    path: str
    status: int
    reason: str
    origin: str | None = None
    rule: str | None = None
    by: str = "proxy"  # "proxy" or "upstream"
    request_headers: Headers = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "conn": self.conn,
            "ts": self.ts,
            "client": self.client,
            "path": self.path,
            "status": self.status,
            "reason": self.reason,
            "origin": self.origin,
            "rule": self.rule,
            "by": self.by,
            "request_headers": [list(h) for h in self.request_headers],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HandshakeRejected:
        return cls(
            conn=d["conn"],
            ts=d["ts"],
            client=d.get("client", ""),
            path=d.get("path", ""),
            status=d["status"],
            reason=d.get("reason", ""),
            origin=d.get("origin"),
            rule=d.get("rule"),
            by=d.get("by", "proxy"),
            request_headers=tuple((n, v) for n, v in d.get("request_headers", ())),
        )


@dataclass(frozen=True, slots=True)
class HttpExchange:
    """A plain HTTP request passed through to the upstream (or refused)."""

    type: ClassVar[str] = "http"
    conn: int
    ts: float
    client: str
    method: str
    path: str
    status: int
    size: int
    duration: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "conn": self.conn,
            "ts": self.ts,
            "client": self.client,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "size": self.size,
            "duration": self.duration,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HttpExchange:
        return cls(
            d["conn"], d["ts"], d.get("client", ""), d["method"], d["path"], d["status"],
            d.get("size", 0), d.get("duration", 0.0),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class FaultInjected:
    """A fault acted: ``fault`` names it (``idle-timeout``, ``latency``, ``origin``...),
    ``action`` says what it did in words a user reads in the log."""

    type: ClassVar[str] = "fault"
    conn: int
    ts: float
    fault: str
    action: str
    direction: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "conn": self.conn,
            "ts": self.ts,
            "fault": self.fault,
            "action": self.action,
            "dir": self.direction,
            **({"detail": self.detail} if self.detail else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FaultInjected:
        return cls(
            d["conn"], d["ts"], d["fault"], d.get("action", ""), d.get("dir"),
            dict(d.get("detail", {})),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should read that is not traffic: the proxy listening, a warning
    (``--insecure``, a public listen address), a recording write failure. ``conn`` is 0 when it
    concerns no connection."""

    type: ClassVar[str] = "notice"
    ts: float
    level: str  # "info", "warning" or "error"
    text: str
    conn: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "ts": self.ts, "level": self.level, "text": self.text,
                "conn": self.conn}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Notice:
        return cls(d["ts"], d.get("level", "info"), d.get("text", ""), d.get("conn", 0))


Event = (
    ConnectionOpened
    | FrameSeen
    | MessageSeen
    | ConnectionClosed
    | HandshakeRejected
    | HttpExchange
    | FaultInjected
    | Notice
)

_BY_TYPE: dict[str, Any] = {
    cls.type: cls
    for cls in (
        ConnectionOpened,
        FrameSeen,
        MessageSeen,
        ConnectionClosed,
        HandshakeRejected,
        HttpExchange,
        FaultInjected,
        Notice,
    )
}


def event_from_dict(d: dict[str, Any]) -> Event:
    """Rebuild an event from its dict form; ``KeyError``/``ValueError`` on a malformed dict."""
    cls = _BY_TYPE.get(d.get("type", ""))
    if cls is None:
        raise ValueError(f"unknown event type {d.get('type')!r}")
    event: Event = cls.from_dict(d)
    return event
