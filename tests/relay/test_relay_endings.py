"""How connections end is relayed: close frames pass, FIN becomes FIN, RST becomes RST."""

from __future__ import annotations

import pytest
import trio
from relay_helpers import (
    StartProxy,
    raw_client,
    read_exactly,
    read_to_eof,
    set_rst,
    start_raw_ws_server,
)

from wsinspect.events import ConnectionClosed, FrameSeen
from wsinspect.wire.frames import encode_frame

pytestmark = pytest.mark.trio

MASK = b"\x11\x22\x33\x44"


class Upstream:
    """A raw upstream that hands its stream to the test."""

    def __init__(self) -> None:
        self.ready = trio.Event()
        self.stream: trio.SocketStream | None = None
        self.done = trio.Event()

    async def handler(self, stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        self.stream = stream
        self.ready.set()
        await self.done.wait()


async def _pair(nursery: trio.Nursery, start_proxy: StartProxy, **kw: object):  # type: ignore[no-untyped-def]
    up = Upstream()
    proxy = await start_proxy(await start_raw_ws_server(nursery, up.handler), **kw)
    client, _, _ = await raw_client(proxy.port)
    await up.ready.wait()
    assert up.stream is not None
    return proxy, client, up


async def test_close_handshake_is_relayed_and_both_connections_end(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        proxy, client, up = await _pair(nursery, start_proxy)
        assert up.stream is not None
        close_c = encode_frame(8, b"\x03\xe8bye", mask_key=MASK)
        await client.send_all(close_c)
        # The upstream receives the client's own close frame, not one made by the proxy.
        assert await read_exactly(up.stream, len(close_c)) == close_c
        close_s = encode_frame(8, b"\x03\xe8ok")
        await up.stream.send_all(close_s)
        assert await read_exactly(client, len(close_s)) == close_s
        await up.stream.aclose()  # the server ends TCP first (RFC 6455 §7.1.1)
        assert await read_to_eof(client) == b""  # ... and the client sees its TCP end
        closed = await proxy.sink.wait_for(ConnectionClosed)
        assert closed.how == "close-handshake"
        assert closed.initiator == "client"
        assert closed.client_close == (1000, "bye")
        assert closed.upstream_close == (1000, "ok")
        assert closed.code == 1000
        up.done.set()


async def test_proxy_never_answers_a_close_frame_itself(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        _proxy, client, up = await _pair(nursery, start_proxy)
        await client.send_all(encode_frame(8, b"\x03\xe8", mask_key=MASK))
        with trio.move_on_after(0.3):
            data = await client.receive_some(100)
            pytest.fail(f"the proxy answered the close itself: {data!r}")
        up.done.set()


async def test_client_fin_without_close_frame_ends_upstream_with_fin(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        proxy, client, up = await _pair(nursery, start_proxy)
        assert up.stream is not None
        await client.send_eof()
        start = trio.current_time()
        assert await read_to_eof(up.stream) == b""  # FIN, not RST (which would raise)
        assert trio.current_time() - start < 1
        closed = await proxy.sink.wait_for(ConnectionClosed)
        assert (closed.initiator, closed.how) == ("client", "fin")
        assert closed.client_close is None and closed.upstream_close is None
        up.done.set()


async def test_upstream_rst_resets_the_client(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    with trio.fail_after(10):
        proxy, client, up = await _pair(nursery, start_proxy)
        assert up.stream is not None
        set_rst(up.stream)
        await up.stream.aclose()
        with pytest.raises(trio.BrokenResourceError) as info:
            await read_to_eof(client)
        assert isinstance(info.value.__cause__, ConnectionResetError)
        closed = await proxy.sink.wait_for(ConnectionClosed)
        assert (closed.initiator, closed.how) == ("upstream", "rst")
        up.done.set()


async def test_upstream_fin_ends_the_client_with_fin(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    with trio.fail_after(10):
        proxy, client, up = await _pair(nursery, start_proxy)
        assert up.stream is not None
        await up.stream.send_all(encode_frame(1, b"last words"))
        await up.stream.aclose()
        assert await read_to_eof(client) == encode_frame(1, b"last words")
        closed = await proxy.sink.wait_for(ConnectionClosed)
        assert (closed.initiator, closed.how) == ("upstream", "fin")
        assert closed.frames == {"c2s": 0, "s2c": 1}
        assert closed.bytes == {"c2s": 0, "s2c": len(encode_frame(1, b"last words"))}
        up.done.set()


async def test_a_slow_reader_slows_its_writer(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    """Backpressure: when the upstream stops reading, the proxy stops reading the client."""
    with trio.fail_after(20):
        proxy, client, up = await _pair(nursery, start_proxy)
        frame = encode_frame(2, b"x" * 65536, mask_key=MASK)
        sent = 0
        with trio.move_on_after(1):
            while True:
                await client.send_all(frame)
                sent += len(frame)
        # Some buffers fill up (kernel, both sockets), then the client's writes block.
        assert sent < 64 << 20
        assert proxy.sink.of(FrameSeen)  # it did relay until the upstream stopped reading
        up.done.set()


async def test_proxy_ends_both_tcp_connections_after_a_completed_close_handshake(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    """Peers that keep TCP open after both close frames are ended within END_GRACE."""
    with trio.fail_after(10):
        proxy, client, up = await _pair(nursery, start_proxy)
        assert up.stream is not None
        close_c = encode_frame(8, b"\x03\xe8", mask_key=MASK)
        await client.send_all(close_c)
        await read_exactly(up.stream, len(close_c))
        await up.stream.send_all(encode_frame(8, b"\x03\xe8"))
        start = trio.current_time()
        assert await read_to_eof(client) == encode_frame(8, b"\x03\xe8")
        assert await read_to_eof(up.stream) == b""
        assert trio.current_time() - start < 3
        closed = await proxy.sink.wait_for(ConnectionClosed)
        assert closed.how == "close-handshake"
        up.done.set()


async def test_client_rst_resets_the_upstream(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    with trio.fail_after(10):
        proxy, client, up = await _pair(nursery, start_proxy)
        assert up.stream is not None
        set_rst(client)
        await client.aclose()
        with pytest.raises(trio.BrokenResourceError):
            await read_to_eof(up.stream)
        closed = await proxy.sink.wait_for(ConnectionClosed)
        assert (closed.initiator, closed.how) == ("client", "rst")
        up.done.set()


async def test_a_close_frame_answered_by_a_tcp_fin_is_reported_as_such(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        proxy, client, up = await _pair(nursery, start_proxy)
        assert up.stream is not None
        close_c = encode_frame(8, b"\x03\xe9", mask_key=MASK)
        await client.send_all(close_c)
        await read_exactly(up.stream, len(close_c))
        await up.stream.aclose()  # no close frame back
        assert await read_to_eof(client) == b""
        closed = await proxy.sink.wait_for(ConnectionClosed)
        assert (closed.initiator, closed.how) == ("client", "fin")
        assert closed.client_close == (1001, "") and closed.upstream_close is None
        assert closed.detail == "the upstream ended TCP (fin) without answering the close frame"
        up.done.set()
