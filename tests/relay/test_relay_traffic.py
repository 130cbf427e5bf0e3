"""Normal traffic through the proxy, between real third-party peers (websockets on both ends)."""

from __future__ import annotations

import pytest
import trio
from relay_helpers import StartProxy, echo, start_ws_server
from websockets.trio.client import connect

from wsinspect.events import ConnectionClosed, ConnectionOpened, FrameSeen, MessageSeen

pytestmark = pytest.mark.trio


async def test_messages_echo_through_the_proxy(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo, compression=None)
        proxy = await start_proxy(upstream)
        async with connect(proxy.url("/chat?room=1"), proxy=None, compression=None) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\x01binary")
            assert await ws.recv() == b"\x00\x01binary"
        closed = await proxy.sink.wait_for(ConnectionClosed)
        opened = proxy.sink.of(ConnectionOpened)[0]
        assert opened.path == "/chat?room=1"
        assert closed.how == "close-handshake"
        assert closed.initiator == "client"
        assert closed.client_close == (1000, "") and closed.upstream_close == (1000, "")
        assert closed.frames == {"c2s": 3, "s2c": 3}


async def test_each_frame_and_message_is_an_event_with_a_shared_sequence(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo, compression=None)
        proxy = await start_proxy(upstream)
        async with connect(proxy.url(), proxy=None, compression=None) as ws:
            await ws.send("one")
            await ws.recv()
            await ws.send("two")
            await ws.recv()
        await proxy.sink.wait_for(ConnectionClosed)
        frames = proxy.sink.of(FrameSeen)
        assert [(f.direction, f.frame.payload) for f in frames[:4]] == [
            ("c2s", b"one"), ("s2c", b"one"), ("c2s", b"two"), ("s2c", b"two"),
        ]
        assert [f.seq for f in frames] == list(range(1, len(frames) + 1))
        assert frames[0].frame.masked and not frames[1].frame.masked
        messages = proxy.sink.of(MessageSeen)
        assert [(m.direction, m.message.payload) for m in messages] == [
            ("c2s", b"one"), ("s2c", b"one"), ("c2s", b"two"), ("s2c", b"two"),
        ]


async def test_frame_events_are_skipped_when_no_sink_wants_them(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo, compression=None)
        proxy = await start_proxy(upstream, frames=False)
        async with connect(proxy.url(), proxy=None, compression=None) as ws:
            await ws.send("x")
            await ws.recv()
        closed = await proxy.sink.wait_for(ConnectionClosed)
        assert proxy.sink.of(FrameSeen) == []
        assert len(proxy.sink.of(MessageSeen)) == 2
        assert closed.frames == {"c2s": 2, "s2c": 2}


async def test_one_connection_failing_does_not_affect_another(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo, compression=None)
        proxy = await start_proxy(upstream)
        async with connect(proxy.url(), proxy=None, compression=None) as good:
            bad = await trio.open_tcp_stream("127.0.0.1", proxy.port)
            await bad.send_all(b"\x16\x03\x01garbage that is not HTTP\r\n\r\n")
            await bad.receive_some(1000)
            await bad.aclose()
            await good.send("still here")
            assert await good.recv() == "still here"


async def test_listening_beyond_loopback_prints_a_warning(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    from wsinspect.events import Notice

    with trio.fail_after(10):
        proxy = await start_proxy(await start_ws_server(nursery, echo), listen_host="0.0.0.0")
        warning = await proxy.sink.wait_for(Notice, lambda n: n.level == "warning")
        assert "anyone who can reach" in warning.text


async def test_loopback_listening_prints_no_warning(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    from wsinspect.events import Notice

    proxy = await start_proxy(await start_ws_server(nursery, echo))
    assert [n.level for n in proxy.sink.of(Notice)] == ["info"]
