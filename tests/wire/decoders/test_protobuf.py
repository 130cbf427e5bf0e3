"""The protobuf decoder, sans-IO: messages serialised by the real protobuf library from
tests/decoders/protos/chat.proto, decoded without a schema (wire format) and with one; bad
input; random bytes never raise."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from proto_fixture import PROTO, chat_pb2, envelope

from wsinspect.wire.decoders import Decoded, DecodeRule, Decoding, Handshake, get_decoder
from wsinspect.wire.decoders.protobuf import (
    FieldSchema,
    MessageSchema,
    ProtobufConnection,
    ProtobufDecoder,
    Schema,
    WireError,
    decode_message,
)

BINARY = 2


@pytest.fixture(scope="module")
def schema() -> Schema:
    from wsinspect.protoschema import load_schema

    pytest.importorskip("grpc_tools")
    return load_schema(PROTO, "chat.v1.Envelope")


def decode(payload: bytes, schema: Schema | None = None) -> Decoded:
    return ProtobufConnection(schema).decode("c2s", BINARY, payload)


def test_without_a_schema_the_summary_lists_field_numbers_and_values() -> None:
    d = decode(envelope())
    assert d.summary.startswith('protobuf 16 fields: 1=7 2="lobby" 3={…} 4=2 5=0x0102ac02 6={…}')
    assert d.summary.endswith(" …") and len(d.summary) < 160
    assert d.fields["1"] == 7 and d.fields["2"] == "lobby" and "3" not in d.fields
    assert d.kind == "message" and d.error is None


def test_without_a_schema_the_body_shows_wire_types_and_guessed_nesting() -> None:
    body = decode(envelope()).body
    by_field: dict[int, list[dict[str, Any]]] = {}
    for f in body:
        by_field.setdefault(f["field"], []).append(f)
    assert by_field[3][0] == {"field": 3, "wire": "len", "value": [
        {"field": 1, "wire": "varint", "value": 42}, {"field": 2, "wire": "len", "value": "alice"}]}
    assert by_field[8][0]["value"] == {"bytes": "89504e47"}  # not UTF-8, not a message
    assert by_field[10][0] == {"field": 10, "wire": "i64", "value": 2.5}
    assert by_field[11][0] == {"field": 11, "wire": "i32", "value": 0xDEADBEEF}
    assert by_field[15][0]["value"] == 2**64 - 40  # int32 -40 on the wire: ten-byte varint
    assert len(by_field[13]) == 2 and len(by_field[6]) == 2  # repeated and map entries


def test_with_the_schema_fields_have_names_and_types(schema: Schema) -> None:
    d = decode(envelope(), schema)
    assert d.body == {
        "seq": 7, "room": "lobby", "sender": {"id": 42, "name": "alice"}, "kind": "KIND_IMAGE",
        "tags": [1, 2, 300], "counts": {"likes": 3, "views": 10}, "image": {"bytes": "89504e47"},
        "delta": -3, "score": 2.5, "crc": 0xDEADBEEF, "urgent": True,
        "mentions": [{"id": 1, "name": "bob"}, {"id": 2, "name": "carol"}],
        "sent": {"seconds": 1_700_000_000}, "temperature": -40,
    }
    assert d.summary.startswith('protobuf chat.v1.Envelope seq=7 room="lobby" sender={…} '
                                'kind="KIND_IMAGE" tags=[1, 2, 300]')
    assert d.kind == "chat.v1.Envelope"
    assert d.fields == {"seq": 7, "room": "lobby", "kind": "KIND_IMAGE", "delta": -3, "score": 2.5,
                        "crc": 0xDEADBEEF, "urgent": True, "temperature": -40}


def test_the_schema_decoder_agrees_with_the_protobuf_library(schema: Schema) -> None:
    from google.protobuf.json_format import MessageToDict

    pb = chat_pb2()
    msg = pb.Envelope.FromString(envelope())
    want = MessageToDict(msg, preserving_proto_field_name=True)
    got = decode(envelope(), schema).body
    assert got["tags"] == want["tags"] and got["counts"] == want["counts"]
    assert got["kind"] == want["kind"] and got["delta"] == want["delta"]
    assert got["sender"]["name"] == want["sender"]["name"]
    assert str(got["sender"]["id"]) == want["sender"]["id"]  # int64 is a string in JSON form


def test_oneof_members_appear_as_they_come(schema: Schema) -> None:
    pb = chat_pb2()
    msg = pb.Envelope(seq=1, text="hi")
    d = decode(msg.SerializeToString(), schema)
    assert d.body == {"seq": 1, "text": "hi"}
    assert d.summary == 'protobuf chat.v1.Envelope seq=1 text="hi"'


def test_unpacked_repeated_values_decode_as_packed_ones(schema: Schema) -> None:
    unpacked = bytes([0x28, 1, 0x28, 2])  # field 5, varint, twice
    assert decode(unpacked, schema).body == {"tags": [1, 2]}


def test_unknown_fields_show_by_number_with_a_schema(schema: Schema) -> None:
    d = decode(bytes([0x08, 5, 0xA0, 0x06, 9]), schema)  # seq=5, field 100 = 9
    assert d.body == {"seq": 5, "100": 9}
    assert d.fields == {"seq": 5, "100": 9}


def test_an_empty_message_is_valid() -> None:
    d = decode(b"")
    assert d.summary == "protobuf (empty)" and d.error is None and d.body == []


def test_groups_are_flagged() -> None:
    d = decode(bytes([0x0B, 0x08, 0x01, 0x0C, 0x10, 0x02]))  # group 1 { 1: 1 } then 2: 2
    assert d.body[0] == {"field": 1, "wire": "group", "value": {"1": 1}}
    assert d.summary == "protobuf 2 fields: 1={…} 2=2"


@pytest.mark.parametrize(("payload", "why"), [
    (b"\x0a\x05ab", "field 1: length 5 runs past the end (2 bytes left)"),
    (b"\x08", "a varint runs past the end"),
    (b"\x0f", "field 1: wire type 7 does not exist"),
    (b"\x00\x01", "field number 0 out of range"),
    (b"\x0c", "field 1: end of a group that was not started"),
    (b"\x0b\x08\x01", "group 1 has no end"),
    (b"\x09\x01\x02", "field 1: i64 runs past the end"),
    (b"\x08" + b"\xff" * 10 + b"\x01", "a varint longer than 10 bytes"),
])
def test_bytes_that_are_not_protobuf_give_the_reason(payload: bytes, why: str) -> None:
    d = decode(payload)
    assert d.error == why and d.summary == f"protobuf: not a protobuf message ({why})"


def test_a_wire_type_the_schema_does_not_expect_is_an_error(schema: Schema) -> None:
    d = decode(bytes([0x12, 0x01, 0x41, 0x0D, 1, 0, 0, 0]), schema)  # room ok; seq as i32
    assert d.error == "seq: wire type i32, the schema says int32 (varint)"


def test_a_string_field_that_is_not_utf8_is_an_error(schema: Schema) -> None:
    assert decode(b"\x12\x02\xff\xfe", schema).error == "room: a string that is not UTF-8"


def test_deep_nesting_is_bounded() -> None:
    payload = b""
    for _ in range(200):
        payload = b"\x0a" + len(payload).to_bytes(1, "little") + payload if len(payload) < 128 else \
            b"\x0a" + bytes([len(payload) & 0x7F | 0x80, len(payload) >> 7]) + payload
    d = decode(payload)
    assert d.error is None
    json.dumps(d.to_dict())


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise(payload: bytes) -> None:
    for schema in (None, TINY):
        d = decode(payload, schema)
        json.dumps(d.to_dict())
        assert isinstance(d.summary, str)


TINY = Schema("t.M", {
    "t.M": MessageSchema("t.M", {1: FieldSchema(1, "n", "sint64"), 2: FieldSchema(2, "m", "message", "t.M"),
                                 3: FieldSchema(3, "e", "enum", "t.E", repeated=True),
                                 4: FieldSchema(4, "f", "float", repeated=True)}),
}, {"t.E": {0: "ZERO"}})


def test_decode_message_raises_wire_error_for_callers_that_want_it() -> None:
    with pytest.raises(WireError):
        decode_message(b"\x0a\x05")


def test_the_decoder_is_chosen_by_rule_or_subprotocol_and_filters_by_field() -> None:
    decoding = Decoding([DecodeRule("protobuf")])
    assert decoding.opened(1, "/feed", None) is get_decoder("protobuf")
    d = decoding.message(1, "s2c", BINARY, bytes([0x08, 0x2A]))
    assert d is not None and d.summary == "protobuf 1 field: 1=42"
    decoder = get_decoder("protobuf")
    assert decoder.filter_prefix == "pb"
    assert decoder.field_matches(d, "1", "42") and not decoder.field_matches(d, "1", "41")
    assert Decoding().opened(2, "/feed", "protobuf") is decoder
    assert Decoding().opened(3, "/feed", None) is None  # never guessed from the handshake


def test_a_decoder_with_a_schema_decodes_with_it(schema: Schema) -> None:
    state = ProtobufDecoder(schema).start(Handshake("/"))
    assert state.decode("c2s", BINARY, b"\x08\x01").body == {"seq": 1}
