"""Protobuf over WebSocket through the real proxy: messages serialised by the real protobuf
library (from tests/decoders/protos/chat.proto, compiled by protoc in the test) cross the
proxy between ``websockets`` peers, and the recorded messages decode with and without the
schema (``--decode protobuf:^/feed``, ``--proto chat.proto --proto-message ...``)."""

from __future__ import annotations

import re

import pytest
import trio
from loopback import Collector, Proxy, start_ws_server
from proto_fixture import PROTO, chat_pb2, envelope
from websockets.trio.client import connect
from websockets.trio.server import ServerConnection

from wsinspect.compose import serve_proxy
from wsinspect.events import ConnectionClosed, ConnectionOpened, MessageSeen
from wsinspect.hub import Hub
from wsinspect.protoschema import use_schema
from wsinspect.settings import Settings, Upstream
from wsinspect.wire.decoders import Decoded, DecodeRule, Decoding, register
from wsinspect.wire.decoders.protobuf import ProtobufDecoder

pytestmark = pytest.mark.trio
pytest.importorskip("grpc_tools")


async def _server(ws: ServerConnection) -> None:
    """Answers every Envelope with the User who sent it."""
    pb = chat_pb2()
    async for message in ws:
        assert isinstance(message, bytes)
        env = pb.Envelope.FromString(message)
        await ws.send(env.sender.SerializeToString())


async def _proxy(nursery: trio.Nursery, upstream: str) -> Proxy:
    hub, sink = Hub(), Collector()
    hub.subscribe(sink, frames=True, messages=True)
    settings = Settings(listen_port=0, upstream=Upstream.parse(upstream))
    return Proxy(await nursery.start(serve_proxy, settings, hub), sink)


async def _record(nursery: trio.Nursery, path: str) -> Proxy:
    pb = chat_pb2()
    upstream = await start_ws_server(nursery, _server, compression=None)
    proxy = await _proxy(nursery, upstream)
    async with connect(proxy.url(path), proxy=None, compression=None) as ws:
        await ws.send(envelope())
        assert pb.User.FromString(await ws.recv()).name == "alice"
        await ws.send(pb.Envelope(seq=2, text="hi", sender=pb.User(id=9, name="bob")).SerializeToString())
        assert pb.User.FromString(await ws.recv()).id == 9
    await proxy.sink.wait_for(ConnectionClosed)
    return proxy


def _decode(proxy: Proxy, decoding: Decoding) -> list[tuple[str, Decoded | None]]:
    opened = proxy.sink.of(ConnectionOpened)[0]
    decoding.opened(opened.conn, opened.path, opened.subprotocol)
    return [(m.direction, decoding.message(m.conn, m.direction, m.message.opcode, m.message.payload))
            for m in proxy.sink.of(MessageSeen)]


async def test_protobuf_messages_through_the_proxy_decode_without_a_schema(
    nursery: trio.Nursery,
) -> None:
    with trio.fail_after(15):
        proxy = await _record(nursery, "/feed/v1")
    decoded = _decode(proxy, Decoding([DecodeRule("protobuf", re.compile("^/feed"))]))
    assert [d for d, _ in decoded] == ["c2s", "s2c", "c2s", "s2c"]
    views = [v for _, v in decoded]
    assert all(v is not None and v.error is None for v in views)
    assert views[0] is not None and views[0].summary.startswith(
        'protobuf 16 fields: 1=7 2="lobby" 3={…} 4=2')
    assert views[1] is not None and views[1].summary == 'protobuf 2 fields: 1=42 2="alice"'
    assert views[2] is not None and views[2].summary == 'protobuf 3 fields: 1=2 3={…} 7="hi"'
    assert views[3] is not None and views[3].fields == {"1": 9, "2": "bob"}


async def test_protobuf_messages_through_the_proxy_decode_with_the_schema(
    nursery: trio.Nursery,
) -> None:
    with trio.fail_after(15):
        proxy = await _record(nursery, "/feed/v1")
    try:
        use_schema(PROTO, "chat.v1.Envelope")
        decoded = _decode(proxy, Decoding([DecodeRule("protobuf")]))
    finally:
        register(ProtobufDecoder(), replace=True)
    views = [v for _, v in decoded]
    assert all(v is not None and v.kind == "chat.v1.Envelope" for v in views)
    first, third = views[0], views[2]
    assert first is not None and first.body["sender"] == {"id": 42, "name": "alice"}
    assert first.body["counts"] == {"likes": 3, "views": 10} and first.fields["temperature"] == -40
    assert third is not None and third.summary == \
        'protobuf chat.v1.Envelope seq=2 sender={…} text="hi"'
    # the server's answers are Users, not Envelopes: one schema for the connection reads them
    # as Envelopes (seq=42, room="alice"), which is what --proto-message asked for
    assert views[1] is not None and views[1].body == {"seq": 42, "room": "alice"}


async def test_a_path_rule_leaves_other_connections_raw(nursery: trio.Nursery) -> None:
    with trio.fail_after(15):
        proxy = await _record(nursery, "/other")
    decoded = _decode(proxy, Decoding([DecodeRule("protobuf", re.compile("^/feed"))], auto=False))
    assert [v for _, v in decoded] == [None] * 4
