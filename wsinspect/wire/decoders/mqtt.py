"""MQTT 3.1, 3.1.1 and 5.0 control packets carried in WebSocket messages (subprotocol ``mqtt``).

MQTT 3.1.1 §6 / 5.0 §6: the packets travel in binary messages, and "a single WebSocket data
frame can contain multiple or partial MQTT Control Packets": each direction of a connection
keeps a buffer, every complete packet is decoded, and a message that ends inside a packet is
``continued``. A packet larger than :data:`MAX_PACKET` is not buffered whole: its start is
decoded as far as it goes (topic, ids, the first bytes of the payload) and the rest of it is
skipped as it arrives, so memory stays bounded whatever a peer declares.

The protocol level comes from the client's CONNECT (3 = 3.1, 4 = 3.1.1, 5 = 5.0); it decides
whether packets carry v5 properties. Before a CONNECT is seen (a decoder chosen mid-connection)
3.1.1 is assumed. A CONNECT's password is never shown (``password=***``), nor v5
authentication data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wsinspect.wire.decoders import Decoded, FieldValue, Handshake, equal_field, register
from wsinspect.wire.decoders._mqtt_packets import Session, parse
from wsinspect.wire.sides import Direction

__all__ = ["MAX_PACKET", "MqttConnection", "MqttDecoder", "topic_matches"]

MAX_PACKET = 1 << 20  # bytes of one packet buffered whole; larger ones are decoded from their start


@dataclass(slots=True)
class _Side:
    buf: bytearray = field(default_factory=bytearray)
    skip: int = 0  # bytes of an oversized packet still to come, not buffered


class MqttConnection:
    """One connection's decoder state: the protocol level and a buffer per direction."""

    def __init__(self) -> None:
        self.session = Session()
        self.sides: dict[Direction, _Side] = {"c2s": _Side(), "s2c": _Side()}

    def decode(self, direction: Direction, opcode: int, payload: bytes) -> Decoded:
        if opcode != 2:
            return Decoded("mqtt", "error", "mqtt: not MQTT (a text message)",
                           error="MQTT over WebSocket uses binary messages (MQTT 3.1.1 §6)")
        side = self.sides[direction]
        data = memoryview(payload)
        if side.skip:
            used = min(side.skip, len(data))
            side.skip -= used
            data = data[used:]
            if not data:
                return Decoded("mqtt", "continued",
                               f"mqtt (rest of a large packet, {side.skip} bytes to come)",
                               continued=side.skip > 0)
        side.buf += data
        packets: list[dict[str, Any]] = []
        errors: list[str] = []
        while side.buf:
            header = _fixed_header(side.buf)
            if header is None:
                break
            if isinstance(header, str):  # framing lost: drop what is buffered, resync next time
                errors.append(header)
                side.buf.clear()
                break
            start, length = header
            total = start + length
            if total > len(side.buf) and total <= MAX_PACKET:
                break  # wait for the rest
            chunk = bytes(side.buf[:total])
            del side.buf[:total]
            if total > len(chunk):
                side.skip = total - len(chunk)
            packets.append(parse(self.session, direction, chunk, start, length))
        return self._view(packets, errors, side)

    def _view(self, packets: list[dict[str, Any]], errors: list[str], side: _Side) -> Decoded:
        pending = len(side.buf) + side.skip
        if not packets:
            if errors:
                return Decoded("mqtt", "error", f"mqtt: malformed ({errors[0]})", error=errors[0])
            return Decoded("mqtt", "continued",
                           f"mqtt (part of a packet, {len(side.buf)} bytes so far)",
                           continued=True)
        first = packets[0]
        summary = "mqtt " + first["summary"]
        if len(packets) > 1:
            summary += f" (+{len(packets) - 1} more: " + ", ".join(
                p["type"] for p in packets[1:4]) + (", …" if len(packets) > 4 else "") + ")"
        if pending:
            summary += " (+ part of the next packet)"
        errs = [p["error"] for p in packets if "error" in p] + errors
        fields: dict[str, FieldValue] = first["fields"]
        body: Any = _body(first) if len(packets) == 1 else [_body(p) for p in packets]
        return Decoded("mqtt", first["type"], summary, fields, body,
                       error="; ".join(errs) if errs else None, continued=pending > 0)


def _fixed_header(buf: bytearray) -> tuple[int, int] | str | None:
    """``(header length, remaining length)``; ``None`` when more bytes are needed; a string
    saying why the bytes are not a fixed header (§2.2.3)."""
    length = 0
    for i in range(1, 5):
        if i >= len(buf):
            return None
        length |= (buf[i] & 0x7F) << (7 * (i - 1))
        if not buf[i] & 0x80:
            return i + 1, length
    return "remaining length longer than 4 bytes"


def _body(packet: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = packet["body"]
    if "error" in packet:
        body["error"] = packet["error"]
    return body



def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT 3.1.1 §4.7: ``+`` matches one level, a final ``#`` any number (its parent too);
    topics starting with ``$`` match no wildcard at their first level."""
    if pattern == topic:
        return True
    if topic.startswith("$") and pattern[:1] in ("+", "#"):
        return False
    want, have = pattern.split("/"), topic.split("/")
    for i, level in enumerate(want):
        if level == "#" and i == len(want) - 1:
            return True
        if i >= len(have) or (level != "+" and level != have[i]):
            return False
    return len(want) == len(have)


class MqttDecoder:
    """The ``mqtt`` decoder: filter prefix ``mqtt``; ``mqtt:topic=sensors/#`` matches topics
    with MQTT wildcards, other fields by equality."""

    name = "mqtt"
    filter_prefix = "mqtt"
    subprotocols: tuple[str, ...] = ("mqtt", "mqttv3.1")

    def recognises(self, handshake: Handshake) -> bool:
        return False

    def start(self, handshake: Handshake) -> MqttConnection:
        return MqttConnection()

    def field_matches(self, decoded: Decoded, key: str, value: str) -> bool:
        topic = decoded.fields.get("topic")
        if key == "topic" and isinstance(topic, str):
            return topic_matches(value, topic)
        return equal_field(decoded, key, value)


register(MqttDecoder())
