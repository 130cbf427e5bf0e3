"""Protocol Buffers messages, one per WebSocket message, with or without a schema; sans-IO.

Without a schema the wire format is shown (protobuf encoding spec): each field's number and
wire type (``varint``, ``i64``, ``len``, ``i32``; proto2 groups flagged ``group``). A
length-delimited field is shown as a nested message when it parses fully as one, as text when
it is printable UTF-8, else as bytes: the same guesses as ``protoc --decode_raw``, which no
schema-less reader can avoid (an empty or short field may be any of the three). A ``fixed64``
or ``fixed32`` shows as a float where that reads as a plausible number, else as an integer.

With a :class:`Schema` (loaded outside ``wire``, by :mod:`wsinspect.protoschema`, from a
``.proto`` file) the root message type gives names and types: signed and zigzag integers,
enums by name, repeated fields as lists (packed or not: a parser must accept both), maps as
objects, nested messages; oneof members appear as the field that came. Fields the schema does
not know are shown by number, as without one.

Every message gives a ``Decoded``; bytes that are not protobuf give one with ``error`` set.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any

from wsinspect.wire.decoders import Decoded, FieldValue, Handshake, equal_field, register
from wsinspect.wire.sides import Direction

__all__ = ["FieldSchema", "MessageSchema", "ProtobufDecoder", "Schema", "WireError",
           "decode_message"]

MAX_DEPTH = 32  # nested messages followed, schema or guess; deeper ones show as bytes
SUMMARY = 120  # characters of the summary's field list
WIRE_TYPES = {0: "varint", 1: "i64", 2: "len", 3: "group", 5: "i32"}
VARINT_TYPES = {"int32", "int64", "uint32", "uint64", "sint32", "sint64", "bool", "enum"}
I64_TYPES = {"fixed64", "sfixed64", "double"}
I32_TYPES = {"fixed32", "sfixed32", "float"}


@dataclass(frozen=True, slots=True)
class FieldSchema:
    """One field of a message type: ``type`` is the .proto scalar name (``int32``, ``string``)
    or ``message``/``enum``/``group`` with the full ``type_name`` (``pkg.Outer.Inner``)."""

    number: int
    name: str
    type: str
    type_name: str = ""
    repeated: bool = False
    oneof: str | None = None


@dataclass(frozen=True, slots=True)
class MessageSchema:
    name: str
    fields: dict[int, FieldSchema] = field(default_factory=dict)
    map_entry: bool = False


@dataclass(frozen=True, slots=True)
class Schema:
    """Message and enum types by full name (no leading dot), and the ``root`` type that every
    WebSocket message holds."""

    root: str
    messages: dict[str, MessageSchema]
    enums: dict[str, dict[int, str]] = field(default_factory=dict)


class WireError(ValueError):
    """Bytes that do not follow the protobuf wire format (the message says where)."""


@dataclass(slots=True)
class RawField:
    number: int
    wire: int  # 0, 1, 2, 3 (a group: ``value`` is its fields) or 5
    value: int | bytes | list[RawField]


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise WireError("a varint runs past the end")
        b = data[pos]
        value |= (b & 0x7F) << shift
        pos += 1
        if not b & 0x80:
            return value & 0xFFFF_FFFF_FFFF_FFFF, pos
        shift += 7
        if shift >= 70:
            raise WireError("a varint longer than 10 bytes")


def parse_fields(data: bytes, pos: int = 0, end_group: int | None = None,
                 depth: int = 0) -> tuple[list[RawField], int]:
    """The fields in ``data[pos:]`` (up to the end-group tag of field ``end_group``)."""
    out: list[RawField] = []
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0 or number > 0x1FFF_FFFF:
            raise WireError(f"field number {number} out of range")
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append(RawField(number, 0, value))
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if pos + size > len(data):
                raise WireError(f"field {number}: {WIRE_TYPES[wire]} runs past the end")
            out.append(RawField(number, wire, int.from_bytes(data[pos:pos + size], "little")))
            pos += size
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise WireError(f"field {number}: length {size} runs past the end "
                                f"({len(data) - pos} bytes left)")
            out.append(RawField(number, 2, data[pos:pos + size]))
            pos += size
        elif wire == 3:
            if depth >= MAX_DEPTH:
                raise WireError("groups nested too deep")
            inner, pos = parse_fields(data, pos, number, depth + 1)
            out.append(RawField(number, 3, inner))
        elif wire == 4:
            if end_group != number:
                raise WireError(f"field {number}: end of a group that was not started")
            return out, pos
        else:
            raise WireError(f"field {number}: wire type {wire} does not exist")
    if end_group is not None:
        raise WireError(f"group {end_group} has no end")
    return out, pos


def _printable(text: str) -> bool:
    return all(c.isprintable() or c in "\n\r\t" for c in text)


def _float(raw: int, wire: int) -> float | int:
    """A fixed-width value as a float where that reads as a plausible number."""
    value: float = struct.unpack("<d" if wire == 1 else "<f", raw.to_bytes(8 if wire == 1 else 4, "little"))[0]
    return value if math.isfinite(value) and 1e-9 <= abs(value) <= 1e15 else raw


def _guess(raw: RawField, depth: int) -> Any:
    """A field's value without a schema."""
    if isinstance(raw.value, list):
        return {str(f.number): _guess(f, depth + 1) for f in raw.value}
    if isinstance(raw.value, int):
        return raw.value if raw.wire == 0 else _float(raw.value, raw.wire)
    data = raw.value
    try:
        text = data.decode("utf-8")
        if _printable(text):
            return text
    except UnicodeDecodeError:
        pass
    if data and depth < MAX_DEPTH:
        try:
            inner, _ = parse_fields(data)
            return _guessed_message(inner, depth + 1)
        except WireError:
            pass
    return {"bytes": data.hex()}


def _guessed_message(fields: list[RawField], depth: int) -> list[dict[str, Any]]:
    return [{"field": f.number, "wire": WIRE_TYPES[f.wire], "value": _guess(f, depth)}
            for f in fields]


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _scalar(schema: Schema, fs: FieldSchema, wire: int, value: int) -> Any:
    kind = fs.type
    if kind in ("int32", "int64"):
        return _signed(value, 32 if kind == "int32" else 64)
    if kind in ("sint32", "sint64"):
        return (value >> 1) ^ -(value & 1)
    if kind == "uint32":
        return value & 0xFFFF_FFFF
    if kind == "bool":
        return value != 0
    if kind == "enum":
        return schema.enums.get(fs.type_name, {}).get(_signed(value, 32), _signed(value, 32))
    if kind in ("double", "float"):
        return struct.unpack("<d" if wire == 1 else "<f", value.to_bytes(8 if wire == 1 else 4, "little"))[0]
    if kind in ("sfixed32", "sfixed64"):
        return _signed(value, 64 if wire == 1 else 32)
    return value  # uint64, fixed32, fixed64


def _packed(data: bytes, fs: FieldSchema) -> list[tuple[int, int]]:
    """The (wire type, value) pairs of a packed repeated scalar field."""
    out: list[tuple[int, int]] = []
    pos = 0
    size = 8 if fs.type in I64_TYPES else 4 if fs.type in I32_TYPES else 0
    while pos < len(data):
        if size:
            if pos + size > len(data):
                raise WireError(f"{fs.name}: packed values run past the end")
            out.append((1 if size == 8 else 5, int.from_bytes(data[pos:pos + size], "little")))
            pos += size
        else:
            value, pos = _varint(data, pos)
            out.append((0, value))
    return out


def _wire_of(fs: FieldSchema) -> int:
    if fs.type in VARINT_TYPES:
        return 0
    return 1 if fs.type in I64_TYPES else 5 if fs.type in I32_TYPES else 3 if fs.type == "group" else 2


def _typed(schema: Schema, fs: FieldSchema, raw: RawField, depth: int) -> list[Any]:
    """The values one wire field gives a schema field (several for a packed one)."""
    want = _wire_of(fs)
    if raw.wire == 2 and want in (0, 1, 5) and fs.repeated:
        return [_scalar(schema, fs, w, v) for w, v in _packed(raw.value, fs)]  # type: ignore[arg-type]
    if raw.wire != want:
        raise WireError(f"{fs.name}: wire type {WIRE_TYPES.get(raw.wire)}, "
                        f"the schema says {fs.type} ({WIRE_TYPES[want]})")
    if isinstance(raw.value, int):
        return [_scalar(schema, fs, raw.wire, raw.value)]
    if isinstance(raw.value, list):  # a group
        return [_schema_message(schema, fs.type_name, raw.value, depth + 1)]
    if fs.type == "string":
        try:
            return [raw.value.decode("utf-8")]
        except UnicodeDecodeError:
            raise WireError(f"{fs.name}: a string that is not UTF-8") from None
    if fs.type == "bytes" or depth >= MAX_DEPTH:
        return [{"bytes": raw.value.hex()}]
    return [_schema_message(schema, fs.type_name, parse_fields(raw.value)[0], depth + 1)]


def _schema_message(schema: Schema, type_name: str, fields: list[RawField], depth: int) -> dict[str, Any]:
    ms = schema.messages.get(type_name)
    out: dict[str, Any] = {}
    for raw in fields:
        fs = ms.fields.get(raw.number) if ms is not None else None
        if fs is None:
            out.setdefault(str(raw.number), []).append(_guess(raw, depth))
            continue
        values = _typed(schema, fs, raw, depth)
        entry = schema.messages.get(fs.type_name)
        if entry is not None and entry.map_entry:
            target = out.setdefault(fs.name, {})
            for pair in values:
                target[str(pair.get("key", ""))] = pair.get("value")
        elif fs.repeated:
            out.setdefault(fs.name, []).extend(values)
        else:
            out[fs.name] = values[-1]  # the last one wins (and merges, for messages: not shown)
    for key, value in out.items():
        if key.isdigit() and len(value) == 1:
            out[key] = value[0]
    return out


def decode_message(payload: bytes, schema: Schema | None = None) -> Any:
    """The decoded body: without a schema a list of ``{"field", "wire", "value"}``; with one, an
    object by field name. Raises :class:`WireError` for bytes that are not protobuf."""
    fields, _ = parse_fields(payload)
    if schema is None:
        return _guessed_message(fields, 0)
    return _schema_message(schema, schema.root, fields, 0)


def _short(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 40 else value[:40] + "…", ensure_ascii=False)
    if isinstance(value, dict) and set(value) == {"bytes"}:
        return f"0x{value['bytes'][:16]}{'…' if len(value['bytes']) > 16 else ''}"
    if isinstance(value, list) and all(_scalar_field(v) for v in value):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 30 else "[…]"
    if isinstance(value, dict | list):
        return "{…}" if isinstance(value, dict) or (value and "field" in value[0]) else "[…]"
    return json.dumps(value)


def _summary(parts: list[tuple[str, Any]]) -> str:
    text = ""
    for key, value in parts:
        piece = f" {key}={_short(value)}"
        if len(text) + len(piece) > SUMMARY:
            return text + " …"
        text += piece
    return text


def _scalar_field(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


class ProtobufConnection:
    def __init__(self, schema: Schema | None) -> None:
        self.schema = schema

    def decode(self, direction: Direction, opcode: int, payload: bytes) -> Decoded:
        try:
            body = decode_message(payload, self.schema)
        except (WireError, RecursionError) as exc:
            return Decoded("protobuf", "error", f"protobuf: not a protobuf message ({exc})",
                           error=str(exc))
        fields: dict[str, FieldValue] = {}
        if self.schema is None:
            parts = [(str(f["field"]), f["value"]) for f in body]
            for number, value in parts:
                if _scalar_field(value):
                    fields.setdefault(number, value)
            n = len(parts)
            head = f"protobuf {n} field{'s' if n != 1 else ''}:" if n else "protobuf (empty)"
            return Decoded("protobuf", "message", head + _summary(parts), fields, body)
        parts = list(body.items())
        fields = {k: v for k, v in parts if _scalar_field(v)}
        return Decoded("protobuf", self.schema.root, f"protobuf {self.schema.root}" + _summary(parts),
                       fields, body)


class ProtobufDecoder:
    """The ``protobuf`` decoder (filter prefix ``pb``: ``pb:name=alice``, ``pb:1=42``). Chosen by
    ``--decode protobuf[:PATH_REGEX]`` or the subprotocol ``protobuf``; ``--proto`` registers
    one with a schema in its place (``register(ProtobufDecoder(schema), replace=True)``)."""

    name = "protobuf"
    filter_prefix = "pb"
    subprotocols: tuple[str, ...] = ("protobuf",)

    def __init__(self, schema: Schema | None = None) -> None:
        self.schema = schema

    def recognises(self, handshake: Handshake) -> bool:
        return False

    def start(self, handshake: Handshake) -> ProtobufConnection:
        return ProtobufConnection(self.schema)

    def field_matches(self, decoded: Decoded, key: str, value: str) -> bool:
        return equal_field(decoded, key, value)


register(ProtobufDecoder())
