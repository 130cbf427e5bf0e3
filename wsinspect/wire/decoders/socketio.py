"""Engine.IO and Socket.IO over the WebSocket transport, sans-IO.

Engine.IO (protocol v4, and v3: ``EIO=3`` in the query) wraps every message in a packet whose
first character is its type: ``0`` open (with its JSON: ``sid``, ``pingInterval``...), ``1``
close, ``2``/``3`` ping/pong (``2probe``/``3probe`` during an upgrade), ``4`` message, ``5``
upgrade, ``6`` noop. A binary WebSocket message is a binary Engine.IO message (v3 prefixes it
with the byte ``0x04``).

A ``4`` message carries a Socket.IO packet (protocol v5, and v4):
``<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]`` with the types 0 CONNECT,
1 DISCONNECT, 2 EVENT, 3 ACK, 4 CONNECT_ERROR, 5 BINARY_EVENT, 6 BINARY_ACK. A binary packet
(``451-["upload",{"_placeholder":true,"num":0}]``) is followed, in the same direction, by its
attachments, one binary message each: the packet and every attachment but the last decode as
``continued``; the last one's ``Decoded`` carries the whole event, each placeholder replaced by
a description of its bytes (length and the first bytes in hex).

Fields: ``eio`` (the Engine.IO packet: ``open``, ``ping``, ``message``...), ``type`` (the
Socket.IO packet, lower case: ``event``, ``ack``, ``binary_event``...), ``ns``, ``ack`` (the ack
id), ``event`` (the event's name), ``attachments``. Filter prefix ``sio``: ``sio:event=chat``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from wsinspect.wire.decoders import Decoded, FieldValue, Handshake, equal_field, register
from wsinspect.wire.decoders._text import describe_bytes, parse_json, text_of
from wsinspect.wire.sides import Direction

__all__ = ["SocketIO", "SocketIOConnection"]

PROTOCOL = "socket.io"
ENGINE_TYPES = {"0": "open", "1": "close", "2": "ping", "3": "pong", "4": "message",
                "5": "upgrade", "6": "noop"}
SOCKET_TYPES = {"0": "connect", "1": "disconnect", "2": "event", "3": "ack",
                "4": "connect_error", "5": "binary_event", "6": "binary_ack"}
MAX_ATTACHMENTS = 1000  # more is a malformed count, not a real packet
MAX_DIGITS = 18  # an ack id or a count longer than this is not one


def _is_number(text: str) -> bool:
    return 0 < len(text) <= MAX_DIGITS and text.isascii() and text.isdigit()


def _error(why: str, what: str = "an Engine.IO packet") -> Decoded:
    return Decoded(PROTOCOL, "error", f"{PROTOCOL}: not {what} ({why})", error=why)


def _replace_placeholders(value: Any, attachments: list[dict[str, Any]]) -> Any:
    """``value`` with every ``{"_placeholder": true, "num": N}`` replaced by attachment N."""
    if isinstance(value, list):
        return [_replace_placeholders(v, attachments) for v in value]
    if isinstance(value, dict):
        num = value.get("num")
        if value.get("_placeholder") is True and isinstance(num, int) and 0 <= num < len(attachments):
            return {"_binary": attachments[num]}
        return {k: _replace_placeholders(v, attachments) for k, v in value.items()}
    return value


@dataclass(slots=True)
class _Pending:
    """A binary packet waiting for its attachments."""

    packet: dict[str, Any]
    expected: int
    attachments: list[dict[str, Any]] = field(default_factory=list)


class SocketIOConnection:
    """One connection's decoder: remembers, per direction, a binary packet whose attachments
    have not all arrived."""

    def __init__(self, eio: int = 4) -> None:
        self.eio = eio
        self._pending: dict[Direction, _Pending] = {}

    def decode(self, direction: Direction, opcode: int, payload: bytes) -> Decoded:
        if opcode == 2:
            return self._binary(direction, payload)
        self._pending.pop(direction, None)  # a text packet abandons unfinished attachments
        text, why = text_of(payload)
        if text is None:
            return _error(why or "")
        if not text:
            return _error("empty message")
        eio = ENGINE_TYPES.get(text[0])
        if eio is None:
            return _error(f"unknown packet type {text[0]!r}")
        rest = text[1:]
        if eio == "message":
            return self._socket(direction, rest)
        fields: dict[str, FieldValue] = {"eio": eio}
        body: dict[str, Any] = {"eio": eio}
        summary = f"engine.io {eio}"
        if eio == "open":
            value, why = parse_json(rest)
            if not isinstance(value, dict):
                return _error(why or "the open packet's data is not a JSON object")
            body["data"] = value
            if isinstance(value.get("sid"), str):
                summary += f" sid={value['sid']}"
        elif rest:
            body["data"] = rest
            summary += f" {rest[:40]}"
        return Decoded(PROTOCOL, eio, summary, fields, body)

    def _binary(self, direction: Direction, payload: bytes) -> Decoded:
        data = payload[1:] if self.eio == 3 and payload[:1] == b"\x04" else payload
        pending = self._pending.get(direction)
        if pending is None:
            body = {"eio": "message", "binary": describe_bytes(data)}
            return Decoded(PROTOCOL, "binary", f"engine.io binary message {len(data)} bytes",
                           {"eio": "message"}, body)
        pending.attachments.append(describe_bytes(data))
        packet = pending.packet
        fields = _packet_fields(packet)
        have, want = len(pending.attachments), pending.expected
        if have < want:
            return Decoded(PROTOCOL, "attachment", f"socket.io attachment {have}/{want}"
                           f" {len(data)} bytes", fields, {"attachment": have - 1,
                           "binary": describe_bytes(data)}, continued=True)
        del self._pending[direction]
        whole = dict(packet)
        try:
            whole["data"] = _replace_placeholders(packet.get("data"), pending.attachments)
        except RecursionError:  # nested as deep as the JSON parser allows: shown as sent
            whole["attachments_bytes"] = pending.attachments
        if packet["type"] == "binary_event" and isinstance(whole["data"], list):
            whole["args"] = whole.pop("data")[1:]
        return Decoded(PROTOCOL, packet["type"], _summary(packet), fields, whole)

    def _socket(self, direction: Direction, text: str) -> Decoded:
        what = "a Socket.IO packet"
        if not text:
            return _error("empty message packet", what)
        kind = SOCKET_TYPES.get(text[0])
        if kind is None:
            return _error(f"unknown packet type {text[0]!r}", what)
        i, n = 1, len(text)
        attachments = 0
        if kind in ("binary_event", "binary_ack"):
            j = text.find("-", i)
            if j < 0 or not _is_number(text[i:j]):
                return _error("no attachment count before '-'", what)
            attachments = int(text[i:j])
            if attachments > MAX_ATTACHMENTS:
                return _error(f"{attachments} attachments", what)
            i = j + 1
        ns = "/"
        if i < n and text[i] == "/":
            j = text.find(",", i)
            ns, i = (text[i:], n) if j < 0 else (text[i:j], j + 1)
        j = i
        while j < n and _is_number(text[j]):
            j += 1
        if j - i > MAX_DIGITS:
            return _error(f"an ack id of {j - i} digits", what)
        ack = int(text[i:j]) if j > i else None
        packet: dict[str, Any] = {"eio": "message", "type": kind, "ns": ns}
        if ack is not None:
            packet["ack"] = ack
        if attachments:
            packet["attachments"] = attachments
        if j < n:
            data, why = parse_json(text[j:])
            if why is not None:
                return _error(why, what)
            packet["data"] = data
        data = packet.get("data")
        if kind in ("event", "binary_event"):
            if not (isinstance(data, list) and data and isinstance(data[0], str)):
                return _error("an event's data is not [name, ...args]", what)
            packet["event"] = data[0]
        elif kind in ("ack", "binary_ack") and not isinstance(data, list):
            return _error("an ack's data is not a list", what)
        if attachments:
            self._pending[direction] = _Pending(packet, attachments)
            return Decoded(PROTOCOL, kind, _summary(packet) + " (waiting)",
                           _packet_fields(packet), packet, continued=True)
        if kind == "event":
            packet["args"] = packet.pop("data")[1:]
        return Decoded(PROTOCOL, kind, _summary(packet), _packet_fields(packet), packet)


def _packet_fields(packet: dict[str, Any]) -> dict[str, FieldValue]:
    fields: dict[str, FieldValue] = {"eio": "message", "type": packet["type"], "ns": packet["ns"]}
    for key in ("event", "ack", "attachments"):
        if key in packet:
            fields[key] = packet[key]
    return fields


def _summary(packet: dict[str, Any]) -> str:
    kind = packet["type"]
    words = [PROTOCOL, "event" if kind == "binary_event" else kind]
    if "event" in packet:
        words.append(f'"{packet["event"]}"')
    words.append(f"ns={packet['ns']}")
    if "ack" in packet:
        words.append(f"ack={packet['ack']}")
    if "attachments" in packet:
        words.append(f"attachments={packet['attachments']}")
    data = packet.get("data")
    if kind == "connect" and isinstance(data, dict) and isinstance(data.get("sid"), str):
        words.append(f"sid={data['sid']}")
    elif kind == "connect_error":
        message = data.get("message") if isinstance(data, dict) else data
        if isinstance(message, str):
            words.append(f'"{message[:60]}"')
    return " ".join(words)


def _eio_version(path: str) -> int | None:
    values = parse_qs(urlsplit(path).query).get("EIO")
    if not values:
        return None
    return int(values[0]) if _is_number(values[0]) else 4


class SocketIO:
    """The Socket.IO decoder: chosen by ``EIO=`` in the request's query, or ``--decode socketio``."""

    name = "socketio"
    filter_prefix = "sio"
    subprotocols: tuple[str, ...] = ()

    def recognises(self, handshake: Handshake) -> bool:
        return _eio_version(handshake.path) is not None

    def start(self, handshake: Handshake) -> SocketIOConnection:
        return SocketIOConnection(_eio_version(handshake.path) or 4)

    def field_matches(self, decoded: Decoded, key: str, value: str) -> bool:
        return equal_field(decoded, key, value)


register(SocketIO())
