"""The protobuf test schema (tests/decoders/protos/chat.proto) compiled by the real protoc
(grpcio-tools) into a Python module, once per test session, for tests that need messages
serialised by the real protobuf library."""

from __future__ import annotations

import functools
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import pytest

PROTO = Path(__file__).parent / "decoders" / "protos" / "chat.proto"


@functools.cache
def chat_pb2() -> ModuleType:
    """``chat_pb2`` generated from chat.proto (skips the test without grpcio-tools)."""
    pytest.importorskip("grpc_tools")
    out = Path(tempfile.mkdtemp(prefix="wsinspect-pb2-"))
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO.parent}",
                    f"--python_out={out}", str(PROTO)], check=True, timeout=60)
    spec = importlib.util.spec_from_file_location("chat_pb2", out / "chat_pb2.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["chat_pb2"] = module
    spec.loader.exec_module(module)
    return module


def envelope() -> bytes:
    """A message using every kind of field the schema has."""
    pb = chat_pb2()
    msg = pb.Envelope(seq=7, room="lobby", kind=pb.KIND_IMAGE, tags=[1, 2, 300], delta=-3,
                      score=2.5, crc=0xDEADBEEF, urgent=True, temperature=-40, image=b"\x89PNG")
    msg.sender.id = 42
    msg.sender.name = "alice"
    msg.counts["likes"] = 3
    msg.counts["views"] = 10
    msg.mentions.add(id=1, name="bob")
    msg.mentions.add(id=2, name="carol")
    msg.sent.seconds = 1_700_000_000
    result: bytes = msg.SerializeToString(deterministic=True)
    return result
