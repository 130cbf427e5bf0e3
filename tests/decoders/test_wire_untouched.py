"""Decoding never changes the wire: with decoders armed and a JSON log decoding every message,
messages that do not parse as their protocol (and some that do) reach the upstream byte for
byte, and the log shows them raw with the reason."""

from __future__ import annotations

import io
import json

import pytest
import trio
from relay_helpers import RawReceiver, raw_client, start_raw_ws_server

from wsinspect.compose import serve_proxy
from wsinspect.hub import Hub
from wsinspect.settings import Settings, Upstream
from wsinspect.sinks.console import ConsoleSink
from wsinspect.sinks.decoded import new_decoding
from wsinspect.wire.frames import encode_frame

pytestmark = pytest.mark.trio

KEY = b"\x11\x22\x33\x44"


@pytest.mark.parametrize("decoder", ["socketio", "graphql", "stomp", "jsonrpc", "mqtt", "protobuf"])
async def test_messages_that_do_not_parse_are_relayed_byte_exact_and_logged_raw(
    nursery: trio.Nursery, decoder: str
) -> None:
    payloads = [
        (1, b'42["chat",{"text":"fine"}]'),
        (1, b"42[broken json"),
        (1, b'451-["upload",{"_placeholder":true,"num":0}]'),  # an attachment that never comes
        (2, b"\x30\xff\xff\xff\xff\x7f"),  # a length no packet can have
        (1, b'{"jsonrpc":"2.0","id":'),
        (2, bytes(range(256))),
        (1, b"CONNECT\naccept-version:1.2\n\n\x00"),
    ]
    sent = b"".join(encode_frame(op, p, mask_key=KEY) for op, p in payloads)
    upstream = RawReceiver(len(sent))
    out = io.StringIO()
    with trio.fail_after(10):
        hub = Hub()
        console = ConsoleSink(out, fmt="json", decoding=new_decoding([decoder]))
        hub.subscribe(console)
        await nursery.start(console.run)
        settings = Settings(listen_port=0,
                            upstream=Upstream.parse(await start_raw_ws_server(nursery, upstream.serve)),
                            decode=(decoder,))
        relay = await nursery.start(serve_proxy, settings, hub)
        stream, _, _ = await raw_client(relay.address[1])
        for i in range(0, len(sent), 9):
            await stream.send_all(sent[i : i + 9])
        await upstream.done.wait()
        while out.getvalue().count('"type":"message"') < len(payloads):  # noqa: ASYNC110
            await trio.sleep(0.02)  # the console writes in batches, from a thread
    assert upstream.got == sent  # decoding never touched the wire
    decoded = [json.loads(line).get("decoded") for line in out.getvalue().splitlines()
               if '"type":"message"' in line]
    assert len(decoded) == len(payloads)
    assert all(d is not None and d["protocol"] for d in decoded)
    assert any(d.get("error") for d in decoded)  # at least one said why it is shown raw
