"""permessage-deflate through the real relay: frames forward compressed and untouched, message
events carry the inflated plain text (RFC 7692)."""

from __future__ import annotations

import hashlib
import json
import zlib

import pytest
import trio
from relay_helpers import RawWsHandler, StartProxy, echo, start_raw_ws_server, start_ws_server
from websockets.exceptions import ConnectionClosedError
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.trio.client import connect
from websockets.trio.server import ServerConnection

from wsinspect.events import ConnectionClosed, ConnectionOpened, FrameSeen, MessageSeen
from wsinspect.recording.format import to_dict
from wsinspect.wire.frames import FrameParser, encode_frame

pytestmark = pytest.mark.trio

TEXTS = [json.dumps({"seq": i, "text": "the quick brown fox " * 20}) for i in range(20)]


def texts_seen(events: list[MessageSeen], direction: str) -> list[str]:
    return [m.message.payload.decode() for m in events if m.direction == direction]


async def test_browser_shaped_offer_shows_plain_text_both_ways(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        # websockets' defaults: the client offers "permessage-deflate; client_max_window_bits"
        # (what Chromium sends); the server answers with 12-bit windows and context takeover.
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream)
        async with connect(proxy.url(), proxy=None) as ws:
            for text in TEXTS:
                await ws.send(text)
                assert await ws.recv() == text
        await proxy.sink.wait_for(ConnectionClosed)
        opened = proxy.sink.of(ConnectionOpened)[0]
        offer = dict((n.lower(), v) for n, v in opened.request_headers)["sec-websocket-extensions"]
        assert offer == "permessage-deflate; client_max_window_bits"
        assert opened.extensions is not None and "permessage-deflate" in opened.extensions
        messages = proxy.sink.of(MessageSeen)
        assert texts_seen(messages, "c2s") == TEXTS
        assert texts_seen(messages, "s2c") == TEXTS
        assert all(m.message.compressed and m.message.wire_len < m.message.length for m in messages)
        data_frames = [f.frame for f in proxy.sink.of(FrameSeen) if f.frame.opcode in (1, 2)]
        assert data_frames and all(f.rsv1 and not f.violations for f in data_frames)


async def test_recorded_message_lines_hold_the_plain_text(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        proxy = await start_proxy(await start_ws_server(nursery, echo))
        async with connect(proxy.url(), proxy=None) as ws:
            await ws.send("héllo, compressed wörld " * 10)
            await ws.recv()
        await proxy.sink.wait_for(ConnectionClosed)
        lines = [to_dict(m) for m in proxy.sink.of(MessageSeen)]
        assert [(d["payload"], d["encoding"]) for d in lines] == [
            ("héllo, compressed wörld " * 10, "text")
        ] * 2
        assert all(d["wire_len"] < d["len"] for d in lines)


async def test_no_context_takeover_and_small_windows(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    factory = ServerPerMessageDeflateFactory(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=9,
        client_max_window_bits=10,
    )
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo, compression=None, extensions=[factory])
        proxy = await start_proxy(upstream)
        async with connect(proxy.url(), proxy=None) as ws:
            for text in TEXTS[:8]:
                await ws.send(text)
                assert await ws.recv() == text
        await proxy.sink.wait_for(ConnectionClosed)
        extensions = proxy.sink.of(ConnectionOpened)[0].extensions
        assert extensions is not None and "server_no_context_takeover" in extensions
        messages = proxy.sink.of(MessageSeen)
        assert texts_seen(messages, "c2s") == TEXTS[:8]
        assert texts_seen(messages, "s2c") == TEXTS[:8]
        assert all(not f.frame.violations for f in proxy.sink.of(FrameSeen))


async def test_fragmented_compressed_messages_are_shown_whole(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    parts = ["first part, ", "second part, ", "third and last part"]

    async def fragmenting_echo(ws: ServerConnection) -> None:
        async for message in ws:
            assert isinstance(message, str)
            await ws.send([message[:5], message[5:10], message[10:]])

    with trio.fail_after(10):
        proxy = await start_proxy(await start_ws_server(nursery, fragmenting_echo))
        async with connect(proxy.url(), proxy=None) as ws:
            await ws.send(parts)  # an iterable is sent as one fragmented message
            assert await ws.recv() == "".join(parts)
        await proxy.sink.wait_for(ConnectionClosed)
        messages = proxy.sink.of(MessageSeen)
        # websockets ends a fragmented message with an empty final frame: 3 parts, 4 frames.
        assert [(m.direction, m.message.payload.decode(), m.message.frames) for m in messages] == [
            ("c2s", "".join(parts), 4),
            ("s2c", "".join(parts), 4),
        ]
        first = [f.frame for f in proxy.sink.of(FrameSeen) if f.frame.message_no == 1]
        assert [f.rsv1 for f in first] == [True, False, False, False] * 2
        assert all(not f.violations for f in first)


DEFLATE_ANSWER = "Sec-WebSocket-Extensions: permessage-deflate\r\n"


def recording_server(send: bytes, got: bytearray) -> RawWsHandler:
    """A hand-written upstream: sends ``send``, records what arrives, answers a close frame."""

    async def server(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        parser = FrameParser()
        chunk = rest
        await stream.send_all(send)
        while True:
            got.extend(chunk)
            if any(f.opcode == 8 for f in parser.feed(chunk)):
                await stream.send_all(encode_frame(8, (1000).to_bytes(2, "big")))
                return
            chunk = await stream.receive_some(65536)
            if not chunk:
                return

    return server


async def test_compressed_frames_forward_byte_for_byte(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    """A hand-written upstream records the client's compressed bytes and sends its own,
    fragmented, with context takeover; the client must inflate them all."""
    got = bytearray()
    comp = zlib.compressobj(wbits=-15)

    def pieces(text: str) -> bytes:
        return comp.compress(text.encode()) + comp.flush(zlib.Z_SYNC_FLUSH)

    server_texts = [f"server says {i} " * 15 for i in range(5)]
    server_bytes = b""
    for text in server_texts:
        body = pieces(text)[:-4]  # the sync-flush tail is removed on the wire (§7.2.1)
        half = len(body) // 2
        server_bytes += encode_frame(1, body[:half], fin=False, rsv1=True)
        server_bytes += encode_frame(0, body[half:])

    server = recording_server(server_bytes, got)

    with trio.fail_after(10):
        upstream = await start_raw_ws_server(nursery, server, extra_headers=DEFLATE_ANSWER)
        proxy = await start_proxy(upstream)
        async with connect(proxy.url(), proxy=None) as ws:
            for text in server_texts:
                assert await ws.recv() == text
            for text in TEXTS[:5]:
                await ws.send(text)
        await proxy.sink.wait_for(ConnectionClosed)
        c2s = [f.frame for f in proxy.sink.of(FrameSeen) if f.direction == "c2s"]
        assert len(c2s) == 6  # five messages and the close frame
        assert bytes(got) == b"".join(f.wire_bytes for f in c2s)
        assert all(f.rsv1 and f.masked for f in c2s[:5])
        messages = proxy.sink.of(MessageSeen)
        assert texts_seen(messages, "s2c") == server_texts
        assert texts_seen(messages, "c2s")[:5] == TEXTS[:5]


async def test_decompression_bomb_is_forwarded_and_shown_capped(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(1 << 20)
    bomb = b"".join(comp.compress(zeros) for _ in range(100)) + comp.flush(zlib.Z_SYNC_FLUSH)
    got = bytearray()
    server = recording_server(encode_frame(2, bomb[:-4], rsv1=True), got)
    with trio.fail_after(20):
        upstream = await start_raw_ws_server(nursery, server, extra_headers=DEFLATE_ANSWER)
        proxy = await start_proxy(upstream)
        async with connect(proxy.url(), proxy=None, max_size=1 << 20) as ws:
            # The client inflates what the proxy forwarded and refuses it itself: 1009.
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.sent is not None and info.value.sent.code == 1009
        seen = await proxy.sink.wait_for(MessageSeen)
        m = seen.message
        assert m.compressed and m.truncated and m.note is None
        assert len(m.payload) == proxy.relay.settings.capture_limit
        assert m.length == 100 << 20  # inflated to its end, memory flat (issue #11)
        assert m.sha256 == hashlib.sha256(bytes(100 << 20)).hexdigest()
        bomb_frame = proxy.sink.of(FrameSeen)[0].frame
        assert bomb_frame.violations == ()
