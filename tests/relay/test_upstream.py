"""``open_websocket``: the reusable client connect (TCP/TLS + handshake) that replay uses."""

from __future__ import annotations

import socket

import pytest
import trio
from relay_helpers import echo, start_raw_server, start_ws_server

from wsinspect.relay import transport, upstream
from wsinspect.relay.upstream import UpstreamError, open_websocket
from wsinspect.wire.frames import FrameParser, encode_frame

pytestmark = pytest.mark.trio


async def test_open_websocket_completes_the_handshake_and_sends_headers(nursery: trio.Nursery) -> None:
    with trio.fail_after(10):
        url = await start_ws_server(nursery, echo, subprotocols=["chat"], compression=None)
        ws = await open_websocket(url + "/room?x=1", [("Sec-WebSocket-Protocol", "chat")])
        assert ws.answer.subprotocol == "chat"
        await ws.stream.send_all(encode_frame(1, b"ping me", mask_key=b"abcd"))
        parser = FrameParser()
        frames = parser.feed(ws.answer.trailing)
        while not frames:
            frames = parser.feed(await ws.stream.receive_some(1024))
        assert frames[0].payload == b"ping me"
        await ws.stream.aclose()


async def test_open_websocket_to_a_closed_port_is_502() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with trio.fail_after(10), pytest.raises(UpstreamError) as info:
        await open_websocket(f"ws://127.0.0.1:{port}/")
    assert info.value.refusal.status == 502


async def test_a_refused_connect_is_502_saying_so() -> None:
    """The refusal is seen without waiting (on loopback it is known when connect() returns)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with trio.fail_after(10), pytest.raises(UpstreamError) as info:
        await upstream.connect("127.0.0.1", port)
    assert info.value.refusal.status == 502
    assert "refused" in info.value.refusal.reason.lower()


async def test_a_connect_still_in_progress_is_waited_for(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When connect() returns before the TCP handshake is done (a remote upstream), the
    connection is waited for, not used half-open."""
    monkeypatch.setattr(transport, "_connected", lambda sock: False)  # as if still under way
    with trio.fail_after(10):
        url = await start_ws_server(nursery, echo, compression=None)
        ws = await open_websocket(url + "/")
        await ws.stream.send_all(encode_frame(1, b"hello", mask_key=b"abcd"))
        parser = FrameParser()
        frames = parser.feed(ws.answer.trailing)
        while not frames:
            frames = parser.feed(await ws.stream.receive_some(1024))
        assert frames[0].payload == b"hello"
        await ws.stream.aclose()


async def test_open_websocket_to_a_silent_server_times_out_with_504(nursery: trio.Nursery) -> None:
    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    host, port = await start_raw_server(nursery, silent)
    with trio.fail_after(10), pytest.raises(UpstreamError) as info:
        await open_websocket(f"ws://{host}:{port}/", timeout=0.2)
    assert info.value.refusal.status == 504
