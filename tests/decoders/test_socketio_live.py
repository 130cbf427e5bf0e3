"""python-socketio server and client (websocket transport) through the proxy: the recorded
messages decode as Socket.IO events, acks and binary events with their attachments."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio
import trio
from aiohttp import web
from decoder_live import in_asyncio, only_connection, summaries, wait_closed
from loopback import Proxy, StartProxy

from wsinspect.wire.decoders import get_decoder

pytestmark = pytest.mark.trio


async def _chat_session(start_proxy: StartProxy) -> tuple[Proxy, dict[str, Any]]:
    """A server with a ``chat`` event (acked), an ``upload`` event taking bytes (acked with a
    binary reply) and a ``/admin`` namespace; a client that uses each, then leaves."""
    sio = socketio.AsyncServer(async_mode="aiohttp")
    app = web.Application()
    sio.attach(app)

    @sio.on("chat")
    async def chat(sid: str, text: str) -> dict[str, str]:
        await sio.emit("said", {"text": text}, to=sid)
        return {"echo": text}

    @sio.on("upload")
    async def upload(sid: str, blob: bytes, meta: dict[str, Any]) -> tuple[int, bytes]:
        return len(blob), blob[::-1]

    @sio.on("ping_admin", namespace="/admin")
    async def ping_admin(sid: str) -> None:
        await sio.emit("pong_admin", namespace="/admin", to=sid)

    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    results: dict[str, Any] = {}
    try:
        proxy: Proxy = trio.from_thread.run(start_proxy, f"ws://127.0.0.1:{port}")
        client = socketio.AsyncClient()
        got_pong = asyncio.Event()
        client.on("pong_admin", got_pong.set, namespace="/admin")
        await client.connect(f"http://127.0.0.1:{proxy.port}", transports=["websocket"],
                             namespaces=["/", "/admin"])
        results["chat"] = await client.call("chat", "hello", timeout=5)
        results["upload"] = await client.call("upload", (b"\x00\x01\x02binary", {"name": "f.bin"}),
                                              timeout=5)
        await client.emit("ping_admin", namespace="/admin")
        await asyncio.wait_for(got_pong.wait(), 5)
        await client.disconnect()
    finally:
        await runner.cleanup()
    return proxy, results


async def test_events_acks_and_binary_attachments_decode(start_proxy: StartProxy) -> None:
    with trio.fail_after(20):
        proxy, results = await in_asyncio(lambda: _chat_session(start_proxy))
        await wait_closed(proxy.sink)
    assert results["chat"] == {"echo": "hello"}
    assert tuple(results["upload"]) == (9, b"yranib\x02\x01\x00")

    seen = only_connection(proxy.sink)
    sent, received = summaries(seen, "c2s"), summaries(seen, "s2c")
    assert received[0].startswith("engine.io open sid=")
    assert "socket.io connect ns=/" in sent and "socket.io connect ns=/admin" in sent
    assert any(s.startswith("socket.io connect ns=/ sid=") for s in received)
    assert 'socket.io event "chat" ns=/ ack=1' in sent
    assert 'socket.io event "said" ns=/' in received
    assert "socket.io ack ns=/ ack=1" in received
    assert 'socket.io event "upload" ns=/ ack=2 attachments=1' in sent
    assert "socket.io binary_ack ns=/ ack=2 attachments=1" in received
    assert 'socket.io event "ping_admin" ns=/admin' in sent
    assert 'socket.io event "pong_admin" ns=/admin' in received

    upload = next(d for dr, d in seen if d.fields.get("event") == "upload" and not d.continued)
    assert upload.body["args"] == [{"_binary": {"bytes": 9, "hex": b"\x00\x01\x02binary".hex()}},
                                   {"name": "f.bin"}]
    head = [d for dr, d in seen if d.fields.get("event") == "upload"]
    assert [d.continued for d in head] == [True, False]  # the packet, then its one attachment
    reply = next(d for dr, d in seen if d.kind == "binary_ack" and not d.continued)
    assert reply.body["data"] == [9, {"_binary": {"bytes": 9, "hex": b"yranib\x02\x01\x00".hex()}}]

    sio = get_decoder("socketio")
    chats = [d for _, d in seen if sio.field_matches(d, "event", "chat")]
    assert len(chats) == 1 and chats[0].fields["ack"] == 1
