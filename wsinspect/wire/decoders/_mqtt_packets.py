"""The MQTT 3.1/3.1.1/5.0 control packets (§2-3 of each spec): the data types, the v5 properties
and reason codes, and one parser per packet type. Used by :mod:`wsinspect.wire.decoders.mqtt`,
which frames packets out of WebSocket messages."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from wsinspect.wire.sides import Direction

__all__ = ["Session", "parse"]

PREVIEW = 60  # characters of a payload in a summary

TYPES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
         7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
         12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH"}
# MQTT 5.0 §2.2.2.2: identifier → (name, type)
PROPERTIES: dict[int, tuple[str, str]] = {
    1: ("payload_format", "byte"), 2: ("message_expiry", "u32"), 3: ("content_type", "text"),
    8: ("response_topic", "text"), 9: ("correlation_data", "bin"),
    11: ("subscription_id", "varint"), 17: ("session_expiry", "u32"),
    18: ("assigned_client_id", "text"), 19: ("server_keep_alive", "u16"),
    21: ("auth_method", "text"), 22: ("auth_data", "secret"), 23: ("request_problem_info", "byte"),
    24: ("will_delay", "u32"), 25: ("request_response_info", "byte"),
    26: ("response_info", "text"), 28: ("server_reference", "text"), 31: ("reason", "text"),
    33: ("receive_maximum", "u16"), 34: ("topic_alias_maximum", "u16"), 35: ("topic_alias", "u16"),
    36: ("maximum_qos", "byte"), 37: ("retain_available", "byte"), 38: ("user", "pair"),
    39: ("maximum_packet_size", "u32"), 40: ("wildcard_sub_available", "byte"),
    41: ("sub_id_available", "byte"), 42: ("shared_sub_available", "byte"),
}
CONNACK_V3 = {0: "accepted", 1: "bad protocol version", 2: "client id rejected",
              3: "server unavailable", 4: "bad username or password", 5: "not authorized"}
REASONS = {0: "success", 1: "granted qos 1", 2: "granted qos 2", 4: "disconnect with will",
           16: "no matching subscribers", 17: "no subscription existed", 24: "continue auth",
           25: "re-authenticate", 128: "unspecified error", 129: "malformed packet",
           130: "protocol error", 131: "implementation specific error",
           132: "unsupported protocol version", 133: "client id not valid",
           134: "bad username or password", 135: "not authorized", 136: "server unavailable",
           137: "server busy", 141: "keep alive timeout", 142: "session taken over",
           143: "topic filter invalid", 144: "topic name invalid", 145: "packet id in use",
           146: "packet id not found", 149: "packet too large", 151: "quota exceeded",
           153: "payload format invalid", 158: "shared subscriptions not supported"}


class Malformed(Exception):
    """A packet that does not follow the MQTT grammar (caught inside this module)."""


class Reader:
    """Reads the MQTT data types (§1.5) from one packet's bytes; ``truncated`` packets (a start
    of an oversized one) may run out, which raises :class:`Malformed` like any short read."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n > self.left():
            raise Malformed(f"packet ends {n - self.left()} bytes early")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def byte(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def varint(self) -> int:
        value = 0
        for shift in range(0, 28, 7):
            b = self.byte()
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
        raise Malformed("variable byte integer longer than 4 bytes")

    def binary(self) -> bytes:
        return self.take(self.u16())

    def text(self) -> str:
        try:
            return self.binary().decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed("a string is not UTF-8") from None

    def properties(self) -> dict[str, Any]:
        end = self.varint()
        end += self.pos
        if end > len(self.data):
            raise Malformed("properties run past the packet")
        props: dict[str, Any] = {}
        while self.pos < end:
            ident = self.varint()
            if ident not in PROPERTIES:
                raise Malformed(f"unknown property 0x{ident:02x}")
            name, kind = PROPERTIES[ident]
            value: Any
            if kind == "pair":
                props.setdefault(name, []).append([self.text(), self.text()])
                continue
            if kind == "secret":
                value = f"*** ({len(self.binary())} bytes)"
            elif kind == "bin":
                value = self.binary().hex()
            else:
                value = getattr(self, kind)()
            props[name] = value
        return props


def _reason(code: int) -> str:
    return REASONS.get(code, f"0x{code:02x}")


def _payload(data: bytes, total: int) -> tuple[dict[str, Any], str]:
    """The body entries and the summary text of a payload (``total`` bytes, ``data`` of them
    at hand)."""
    cut = f" (first {len(data)} of {total} bytes)" if len(data) < total else ""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        hexed = data[:PREVIEW // 2].hex() + ("…" if len(data) > PREVIEW // 2 else "")
        return {"payload_hex": data.hex(), "payload_len": total}, f"{total} bytes {hexed}{cut}"
    short = text if len(text) <= PREVIEW else text[:PREVIEW] + "…"
    return {"payload": text, "payload_len": total}, json.dumps(short, ensure_ascii=False) + cut


@dataclass(slots=True)
class Session:
    """What packets of one connection depend on: the protocol level (from the CONNECT) and the
    v5 topic aliases of each direction."""

    level: int = 4
    aliases: dict[str, dict[int, str]] = field(default_factory=lambda: {"c2s": {}, "s2c": {}})


def parse(c: Session, direction: Direction, chunk: bytes, start: int, length: int) -> dict[str, Any]:
    """One whole packet (or the start of an oversized one: ``chunk`` shorter than ``start +
    length``) as ``{"type", "summary", "fields", "body"[, "error"]}``."""
    kind = chunk[0] >> 4
    name = TYPES.get(kind, f"reserved({kind})")
    body: dict[str, Any] = {"type": name}
    out: dict[str, Any] = {"type": name, "summary": name, "body": body,
                           "fields": {"type": name}}
    reader = Reader(chunk[start:])
    try:
        if kind == 0 or (kind == 15 and c.level < 5):
            raise Malformed(f"reserved packet type {kind}")
        words = _PARSERS[name](c, reader, chunk[0] & 0x0F, length, direction, body, out)
        if words:
            out["summary"] = f"{name} {words}"
        if len(chunk) - start < length:
            body["truncated"] = True
        elif reader.left() and name not in ("PUBLISH",):
            raise Malformed(f"{reader.left()} bytes after the packet's end")
    except Malformed as exc:
        if len(chunk) - start < length:  # the start of an oversized packet ran out
            body["truncated"] = True
            out["summary"] = f"{name} ({length} bytes, too large to decode whole)"
        else:
            out["error"] = f"{name}: {exc}"
            out["summary"] = f"{name} (malformed: {exc})"
    return out


# ---- one parser per packet type: fill ``body``/``out["fields"]``, return the summary's words ----

Out = dict[str, Any]


def _connect(c: Session, r: Reader, flags: int, n: int, d: Direction, body: Out, out: Out) -> str:
    proto = r.text()
    level = r.byte()
    if proto not in ("MQTT", "MQIsdp") or level not in (3, 4, 5):
        raise Malformed(f"protocol {proto!r} level {level}")
    c.level = level
    cflags, keepalive = r.byte(), r.u16()
    body.update(protocol=proto, level=level, keepalive=keepalive, clean=bool(cflags & 2))
    if level == 5:
        body["properties"] = r.properties()
    client_id = body["client_id"] = r.text()
    out["fields"]["client_id"] = client_id
    words = [f"client_id={client_id or '(empty)'}", {3: "v3.1", 4: "v3.1.1", 5: "v5"}[level],
             f"keepalive={keepalive}"]
    if cflags & 2:
        words.append("clean")
    if cflags & 4:
        will: dict[str, Any] = {"qos": (cflags >> 3) & 3, "retain": bool(cflags & 32)}
        if level == 5:
            will["properties"] = r.properties()
        will["topic"] = r.text()
        will["payload_len"] = len(r.binary())
        body["will"] = will
        words.append(f"will={will['topic']}")
    if cflags & 128:
        body["username"] = r.text()
        words.append(f"user={body['username']}")
    if cflags & 64:
        r.binary()
        body["password"] = "***"
        words.append("password=***")
    return " ".join(words)


def _connack(c: Session, r: Reader, flags: int, n: int, d: Direction, body: Out, out: Out) -> str:
    ack, code = r.byte(), r.byte()
    reason = CONNACK_V3.get(code, str(code)) if c.level < 5 else _reason(code)
    body.update(session_present=bool(ack & 1), code=code, reason=reason)
    if c.level == 5 and r.left():
        body["properties"] = r.properties()
    return f"rc={code} ({reason})" + (" session_present" if ack & 1 else "")


def _publish(c: Session, r: Reader, flags: int, n: int, d: Direction, body: Out, out: Out) -> str:
    qos, retain, dup = (flags >> 1) & 3, bool(flags & 1), bool(flags & 8)
    if qos == 3:
        raise Malformed("QoS 3")
    topic = r.text()
    body.update(topic=topic, qos=qos, retain=retain, dup=dup)
    fields = out["fields"]
    fields.update(qos=qos, retain=retain)
    words = []
    if qos:
        fields["packet_id"] = body["packet_id"] = r.u16()
    if c.level == 5:
        props = body["properties"] = r.properties()
        alias = props.get("topic_alias")
        if isinstance(alias, int):
            aliases = c.aliases[d]
            if topic:
                aliases[alias] = topic
            else:
                topic = body["topic"] = aliases.get(alias, "")
                words.append(f"alias={alias}")
    fields["topic"] = topic
    total = n - r.pos
    entries, text = _payload(r.take(r.left()), total)
    body.update(entries)
    head = [f"topic={topic}", f"qos={qos}"]
    if qos:
        head.append(f"id={body['packet_id']}")
    head += [w for w, on in (("retain", retain), ("dup", dup)) if on]
    return " ".join([*head, *words, text])


def _ack(c: Session, r: Reader, flags: int, n: int, d: Direction, body: Out, out: Out) -> str:
    """PUBACK, PUBREC, PUBREL, PUBCOMP, and UNSUBACK in v3 (§3.4-3.7)."""
    pid = out["fields"]["packet_id"] = body["packet_id"] = r.u16()
    words = f"id={pid}"
    if c.level == 5 and r.left():
        code = body["code"] = r.byte()
        body["reason"] = _reason(code)
        words += f" rc={code} ({body['reason']})"
        if r.left():
            body["properties"] = r.properties()
    return words


def _subscribe(c: Session, r: Reader, flags: int, n: int, d: Direction, body: Out, out: Out) -> str:
    pid = out["fields"]["packet_id"] = body["packet_id"] = r.u16()
    if c.level == 5:
        body["properties"] = r.properties()
    subs: list[dict[str, Any]] = []
    body["filters"] = subs
    while r.left():
        topic, opts = r.text(), r.byte()
        sub: dict[str, Any] = {"topic": topic, "qos": opts & 3}
        if c.level == 5:
            sub.update(no_local=bool(opts & 4), retain_as_published=bool(opts & 8),
                       retain_handling=(opts >> 4) & 3)
        subs.append(sub)
    if not subs:
        raise Malformed("no topic filter")
    out["fields"].update(topic=subs[0]["topic"], qos=subs[0]["qos"])
    return f"id={pid} " + ", ".join(f"{s['topic']} qos={s['qos']}" for s in subs)


def _unsubscribe(c: Session, r: Reader, flags: int, n: int, d: Direction, body: Out, out: Out) -> str:
    pid = out["fields"]["packet_id"] = body["packet_id"] = r.u16()
    if c.level == 5:
        body["properties"] = r.properties()
    topics: list[str] = []
    body["filters"] = topics
    while r.left():
        topics.append(r.text())
    if not topics:
        raise Malformed("no topic filter")
    out["fields"]["topic"] = topics[0]
    return f"id={pid} " + ", ".join(topics)


def _suback(c: Session, r: Reader, flags: int, n: int, d: Direction, body: Out, out: Out) -> str:
    """SUBACK, and UNSUBACK in v5 (a reason code per filter)."""
    if body["type"] == "UNSUBACK" and c.level < 5:
        return _ack(c, r, flags, n, d, body, out)
    pid = out["fields"]["packet_id"] = body["packet_id"] = r.u16()
    if c.level == 5:
        body["properties"] = r.properties()
    codes = body["codes"] = list(r.take(r.left()))
    body["reasons"] = [_reason(code) for code in codes]
    return f"id={pid} codes=[{', '.join(_code(x) for x in codes)}]"


def _code(code: int) -> str:
    return str(code) if code < 128 else f"0x{code:02x}"


def _empty(c: Session, r: Reader, flags: int, n: int, d: Direction, body: Out, out: Out) -> str:
    return ""


def _disconnect(c: Session, r: Reader, flags: int, n: int, d: Direction, body: Out, out: Out) -> str:
    """DISCONNECT and AUTH: in v5 an optional reason code and properties."""
    if c.level < 5 or not r.left():
        return ""
    code = body["code"] = r.byte()
    body["reason"] = _reason(code)
    if r.left():
        body["properties"] = r.properties()
    return f"rc={code} ({body['reason']})"


_PARSERS = {"CONNECT": _connect, "CONNACK": _connack, "PUBLISH": _publish, "PUBACK": _ack,
            "PUBREC": _ack, "PUBREL": _ack, "PUBCOMP": _ack, "SUBSCRIBE": _subscribe,
            "SUBACK": _suback, "UNSUBSCRIBE": _unsubscribe, "UNSUBACK": _suback,
            "PINGREQ": _empty, "PINGRESP": _empty, "DISCONNECT": _disconnect,
            "AUTH": _disconnect}
