"""Loading a protobuf schema for ``--proto FILE --proto-message pkg.Type``: I/O, kept out of
``wire`` (whose :mod:`wsinspect.wire.decoders.protobuf` decodes with the result).

A ``.proto`` file is compiled by protoc itself, run as ``python -m grpc_tools.protoc`` (the
``grpcio-tools`` package: ``pip install 'wsinspect[proto]'``) into a ``FileDescriptorSet``
with its imports (Google's well-known types resolve from the copies grpcio-tools ships). A
file already compiled (``protoc --descriptor_set_out=F.pb --include_imports``; ``.pb``,
``.desc``, ``.protoset``, ``.binpb``) needs only the ``protobuf`` runtime. Either way the
descriptors become the plain :class:`~wsinspect.wire.decoders.protobuf.Schema` objects the
decoder reads, so ``wire`` never imports ``google.protobuf``.

Every failure is a :class:`SchemaError` whose text is one line naming the file.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from wsinspect.wire.decoders import register
from wsinspect.wire.decoders.protobuf import FieldSchema, MessageSchema, ProtobufDecoder, Schema

__all__ = ["SchemaError", "load_schema", "schema_from_descriptor_set", "use_schema"]

COMPILED = {".pb", ".desc", ".protoset", ".binpb"}
# google.protobuf.FieldDescriptorProto.Type → .proto name
TYPES = {1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 6: "fixed64",
         7: "fixed32", 8: "bool", 9: "string", 10: "group", 11: "message", 12: "bytes",
         13: "uint32", 14: "enum", 15: "sfixed32", 16: "sfixed64", 17: "sint32", 18: "sint64"}
PROTOC_TIMEOUT = 60.0


class SchemaError(Exception):
    """A schema that cannot be loaded; ``str()`` is one line naming the file (exit status 2)."""


def load_schema(path: str | Path, message: str | None = None) -> Schema:
    """The schema of ``message`` (``pkg.Type``; may be left out when the file defines one
    top-level message) from a ``.proto`` file or a compiled descriptor set."""
    path = Path(path)
    if not path.is_file():
        raise SchemaError(f"--proto {path}: no such file")
    if path.suffix.lower() in COMPILED:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SchemaError(f"--proto {path}: {exc.strerror}") from None
    else:
        data = _compile(path)
    return schema_from_descriptor_set(data, message, source=f"--proto {path}")


def use_schema(path: str | Path, message: str | None = None) -> Schema:
    """Load a schema and make the ``protobuf`` decoder use it (what ``--proto`` does)."""
    schema = load_schema(path, message)
    register(ProtobufDecoder(schema), replace=True)
    return schema


def _compile(path: Path) -> bytes:
    if importlib.util.find_spec("grpc_tools") is None:
        raise SchemaError(f"--proto {path}: a .proto file needs protoc: "
                          "pip install grpcio-tools (or 'wsinspect[proto]')")
    includes = importlib.resources.files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory(prefix="wsinspect-proto-") as tmp:
        out = Path(tmp) / "schema.pb"
        command = [sys.executable, "-m", "grpc_tools.protoc", f"-I{path.parent.resolve()}",
                   f"-I{includes}", "--include_imports", f"--descriptor_set_out={out}",
                   str(path.resolve())]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=PROTOC_TIMEOUT,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SchemaError(f"--proto {path}: protoc did not run ({exc})") from None
        if done.returncode != 0 or not out.exists():
            lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
            why = lines[0] if lines else f"protoc exited with status {done.returncode}"
            if why.startswith(f"{path.resolve()}:"):
                why = why[len(str(path.resolve())):]
            raise SchemaError(f"--proto {path}{why}" if why.startswith(":") else f"--proto {path}: {why}")
        return out.read_bytes()


def schema_from_descriptor_set(data: bytes, message: str | None, *, source: str = "--proto") -> Schema:
    """A :class:`Schema` from a serialised ``FileDescriptorSet`` (``source`` names it in
    errors)."""
    try:
        from google.protobuf import descriptor_pb2
        from google.protobuf.message import DecodeError
    except ImportError:
        raise SchemaError(f"{source}: --proto needs the protobuf package: pip install protobuf") from None
    try:
        fds = descriptor_pb2.FileDescriptorSet.FromString(data)
    except DecodeError as exc:
        raise SchemaError(f"{source}: not a compiled descriptor set ({exc})") from None
    messages: dict[str, MessageSchema] = {}
    enums: dict[str, dict[int, str]] = {}
    for file in fds.file:
        prefix = f"{file.package}." if file.package else ""
        for enum in file.enum_type:
            enums[prefix + enum.name] = {v.number: v.name for v in enum.value}
        for msg in file.message_type:
            _add_message(msg, prefix, messages, enums)
    if message is None:
        tops = [f"{f.package + '.' if f.package else ''}{m.name}"
                for f in fds.file[-1:] for m in f.message_type]
        if len(tops) != 1:
            raise SchemaError(f"{source}: name the message type with --proto-message "
                              f"(one of: {', '.join(tops) or 'none defined'})")
        message = tops[0]
    message = message.lstrip(".")
    if message not in messages or messages[message].map_entry:
        known = sorted(n for n, m in messages.items() if not m.map_entry)
        shown = ", ".join(known[:8]) + (", …" if len(known) > 8 else "")
        raise SchemaError(f"{source}: no message type {message!r} (known: {shown or 'none'})")
    return Schema(message, messages, enums)


def _add_message(msg: Any, prefix: str, messages: dict[str, MessageSchema],
                 enums: dict[str, dict[int, str]]) -> None:
    name = prefix + msg.name
    for enum in msg.enum_type:
        enums[f"{name}.{enum.name}"] = {v.number: v.name for v in enum.value}
    for nested in msg.nested_type:
        _add_message(nested, name + ".", messages, enums)
    fields = {}
    for f in msg.field:
        oneof = msg.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") else None
        if f.proto3_optional:
            oneof = None  # a synthetic oneof
        fields[f.number] = FieldSchema(f.number, f.name, TYPES.get(f.type, "bytes"),
                                       f.type_name.lstrip("."), f.label == 3, oneof)
    messages[name] = MessageSchema(name, fields, msg.options.map_entry)
