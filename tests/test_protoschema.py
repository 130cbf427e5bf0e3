"""Loading ``--proto`` schemas: a .proto compiled by protoc (grpcio-tools), or a compiled
descriptor set; every failure is one line naming the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from proto_fixture import PROTO

from wsinspect.protoschema import SchemaError, load_schema, use_schema
from wsinspect.wire.decoders import DecodeRule, Decoding, get_decoder, register
from wsinspect.wire.decoders.protobuf import ProtobufDecoder

pytest.importorskip("grpc_tools")


def test_a_proto_file_gives_its_types_fields_and_enums() -> None:
    schema = load_schema(PROTO, "chat.v1.Envelope")
    assert schema.root == "chat.v1.Envelope"
    env = schema.messages["chat.v1.Envelope"]
    assert env.fields[3].name == "sender" and env.fields[3].type_name == "chat.v1.User"
    assert env.fields[5].repeated and env.fields[5].type == "int32"
    assert env.fields[7].oneof == "content" and env.fields[8].oneof == "content"
    assert schema.messages[env.fields[6].type_name].map_entry
    assert schema.enums["chat.v1.Kind"] == {0: "KIND_UNSPECIFIED", 1: "KIND_TEXT", 2: "KIND_IMAGE"}
    assert "google.protobuf.Timestamp" in schema.messages  # an import, resolved by protoc


def test_a_compiled_descriptor_set_needs_no_compiler(tmp_path: Path) -> None:
    out = tmp_path / "chat.pb"
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO.parent}",
                    "--include_imports", f"--descriptor_set_out={out}", str(PROTO)],
                   check=True, timeout=60)
    assert load_schema(out, "chat.v1.User").messages["chat.v1.User"].fields[2].name == "name"


def test_the_message_type_may_be_left_out_when_the_file_has_one(tmp_path: Path) -> None:
    one = tmp_path / "one.proto"
    one.write_text('syntax = "proto3";\npackage p;\nmessage Only { string s = 1; }\n')
    assert load_schema(one).root == "p.Only"
    with pytest.raises(SchemaError, match=r"^--proto .*chat\.proto: name the message type"):
        load_schema(PROTO)


@pytest.mark.parametrize(("text", "message", "error"), [
    ('syntax = "proto3";\nmessage A { int32 x = 1 }\n', "A", r'bad\.proto:2:25: Expected ";"\.$'),
    ('syntax = "proto3";\nimport "nope.proto";\nmessage A { int32 x = 1; }\n', "A",
     r"bad\.proto: nope\.proto: File not found\.$"),
    ('syntax = "proto3";\nmessage A { int32 x = 1; }\n', "B", r"bad\.proto: no message type 'B' \(known: A\)$"),
])
def test_a_schema_that_does_not_load_is_one_line_naming_the_file(
    tmp_path: Path, text: str, message: str, error: str
) -> None:
    bad = tmp_path / "bad.proto"
    bad.write_text(text)
    with pytest.raises(SchemaError, match=f"^--proto {tmp_path}/" + error) as info:
        load_schema(bad, message)
    assert "\n" not in str(info.value)


def test_a_missing_file_or_a_broken_descriptor_set(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"^--proto .*missing\.proto: no such file$"):
        load_schema(tmp_path / "missing.proto", "A")
    junk = tmp_path / "junk.pb"
    junk.write_bytes(b"\xff\xff\xff")
    with pytest.raises(SchemaError, match=r"^--proto .*junk\.pb: not a compiled descriptor set"):
        load_schema(junk, "A")


def test_use_schema_makes_the_protobuf_decoder_use_it() -> None:
    try:
        use_schema(PROTO, "chat.v1.User")
        decoding = Decoding([DecodeRule("protobuf")])
        decoding.opened(1, "/", None)
        d = decoding.message(1, "c2s", 2, b"\x08\x2a\x12\x03bob")
        assert d is not None and d.summary == 'protobuf chat.v1.User id=42 name="bob"'
    finally:
        register(ProtobufDecoder(), replace=True)
    assert get_decoder("protobuf").schema is None  # type: ignore[attr-defined]
