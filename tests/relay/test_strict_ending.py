"""``--strict`` over loopback with real peers (issue #11): a message-size limit by default, acted
on at a frame's header before a byte of its payload goes on, and an ending like a conforming
endpoint's: frames after a close frame are flagged and discarded, and the closing handshake
completes with the codes the peers chose."""

from __future__ import annotations

import argparse

import pytest
import trio
from relay_helpers import StartProxy, raw_client, start_raw_ws_server, start_ws_server
from websockets.trio.server import ServerConnection

from wsinspect.config import add_proxy_arguments, settings_from_args
from wsinspect.events import ConnectionClosed, FrameSeen, Notice
from wsinspect.wire.frames import Frame, FrameParser, encode_frame

pytestmark = pytest.mark.trio

MASK = b"\x01\x02\x03\x04"
HUGE = (1 << 63) - 1
CLOSE_1000 = encode_frame(8, (1000).to_bytes(2, "big"), mask_key=MASK)


def cli_max_message_size(*argv: str) -> int | None:
    """What ``wsinspect proxy -u ... ARGV`` gives the relay as its message-size limit."""
    parser = argparse.ArgumentParser()
    add_proxy_arguments(parser)
    return settings_from_args(parser.parse_args(["-u", "ws://127.0.0.1:1", *argv])).max_message_size


class Upstream:
    """A raw WebSocket server that keeps every byte it receives: it answers a close frame
    with the same code, then reads on until the proxy ends TCP."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.done = trio.Event()

    async def __call__(self, stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        parser = FrameParser()
        data = rest
        replied = False
        try:
            while True:
                self.data += data
                for f in parser.feed(data):
                    if f.opcode == 8 and not replied:
                        replied = True
                        await stream.send_all(encode_frame(8, f.payload[:2]))
                data = await stream.receive_some(65536)
                if not data:
                    return
        finally:
            self.done.set()

    def frames(self) -> tuple[list[Frame], int]:
        """The complete frames received, and the bytes of an incomplete one after them."""
        parser = FrameParser()
        return parser.feed(bytes(self.data)), parser.pending


async def next_frame(stream: trio.SocketStream, parser: FrameParser, rest: bytes = b"") -> Frame:
    data = rest
    while True:
        frames = parser.feed(data)
        if frames:
            return frames[0]
        data = await stream.receive_some(65536)
        assert data, "EOF before a frame"


async def test_strict_answers_a_frame_declaring_2_63_minus_1_bytes_with_1009_by_default(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    limit = cli_max_message_size("--strict")
    assert limit == 64 << 20  # no --max-message-size: the stated default
    upstream = Upstream()
    with trio.fail_after(10):
        url = await start_raw_ws_server(nursery, upstream)
        proxy = await start_proxy(url, strict=True, max_message_size=limit)
        client, head, rest = await raw_client(proxy.port)
        assert b" 101 " in head
        header = b"\x82\xff" + HUGE.to_bytes(8, "big") + MASK
        await client.send_all(header + bytes(65536))  # the header and the start of its payload
        close = await next_frame(client, FrameParser(), rest)
        assert (close.opcode, close.close_code) == (8, 1009)
        await client.send_all(bytes(65536))  # more of the payload: consumed, never forwarded
        await client.aclose()
        closed = await proxy.sink.wait_for(ConnectionClosed)
        await upstream.done.wait()
    frames, partial = upstream.frames()
    # The upstream got not a byte of that frame: only the proxy's close frame.
    assert [(f.opcode, f.close_code, f.masked) for f in frames] == [(8, 1001, True)]
    assert partial == 0 and len(upstream.data) == frames[0].wire_size
    assert closed.how == "strict" and closed.initiator == "proxy"
    notice = await proxy.sink.wait_for(Notice, lambda n: "--strict" in n.text)
    assert "closing the client with 1009" in notice.text and "§7.4.1" in notice.text


async def test_strict_holds_a_header_that_arrives_in_pieces_until_it_can_judge_it(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    upstream = Upstream()
    with trio.fail_after(10):
        url = await start_raw_ws_server(nursery, upstream)
        proxy = await start_proxy(url, strict=True, max_message_size=1 << 20)
        client, _, rest = await raw_client(proxy.port)
        fine = encode_frame(1, b"fine", mask_key=MASK)
        header = b"\x82\xff" + HUGE.to_bytes(8, "big") + MASK
        await client.send_all(fine + header[:3])  # a whole frame, then 3 bytes of a header
        await proxy.sink.wait_for(FrameSeen, lambda e: e.frame.payload == b"fine")
        await trio.sleep(0.05)
        await client.send_all(header[3:] + b"x" * 100)
        close = await next_frame(client, FrameParser(), rest)
        assert close.close_code == 1009
        await client.aclose()
        await upstream.done.wait()
    frames, partial = upstream.frames()
    assert [(f.opcode, f.payload if f.opcode == 1 else f.close_code) for f in frames] == [
        (1, b"fine"), (8, 1001),
    ]
    assert partial == 0


async def test_max_message_size_0_lets_a_long_frame_through(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    assert cli_max_message_size("--strict", "--max-message-size", "0") is None
    upstream = Upstream()
    with trio.fail_after(10):
        url = await start_raw_ws_server(nursery, upstream)
        proxy = await start_proxy(url, strict=True, max_message_size=None)
        client, _, _ = await raw_client(proxy.port)
        await client.send_all(encode_frame(2, bytes(200_000), mask_key=MASK) + CLOSE_1000)
        await proxy.sink.wait_for(ConnectionClosed)
        await upstream.done.wait()
    frames, _ = upstream.frames()
    assert [(f.opcode, f.length) for f in frames] == [(2, 200_000), (8, 2)]


async def test_strict_discards_frames_after_a_close_and_the_raw_upstream_gets_only_the_close(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    upstream = Upstream()
    with trio.fail_after(10):
        url = await start_raw_ws_server(nursery, upstream)
        proxy = await start_proxy(url, strict=True, max_message_size=64 << 20)
        client, _, rest = await raw_client(proxy.port)
        after = (
            encode_frame(9, b"ping", mask_key=MASK)
            + encode_frame(1, b"late", mask_key=MASK)
            + encode_frame(8, (1002).to_bytes(2, "big"), mask_key=MASK)
            + b"\x82\xff" + HUGE.to_bytes(8, "big") + MASK + bytes(1000)  # and a huge frame
        )
        await client.send_all(CLOSE_1000 + after)
        reply = await next_frame(client, FrameParser(), rest)
        assert (reply.opcode, reply.close_code) == (8, 1000)  # the upstream's own reply
        await client.aclose()
        await upstream.done.wait()
        closed = await proxy.sink.wait_for(ConnectionClosed)
    frames, partial = upstream.frames()
    assert [(f.opcode, f.close_code) for f in frames] == [(8, 1000)] and partial == 0
    assert bytes(upstream.data) == CLOSE_1000  # exactly the client's close frame, nothing else
    assert (closed.how, closed.initiator) == ("close-handshake", "client")
    assert closed.client_close == (1000, "") and closed.upstream_close == (1000, "")
    c2s = [e for e in proxy.sink.of(FrameSeen) if e.direction == "c2s"]
    assert c2s[0].frame.close_code == 1000 and c2s[0].delivered
    late = c2s[1:]  # (the huge frame never completes: it is not published)
    assert [e.frame.opcode for e in late] == [9, 1, 8]
    for e in late:
        assert not e.delivered
        assert e.frame.violations[0].rule == "frame-after-close"
        assert e.frame.violations[0].section == "RFC 6455 §5.5.1"
    notices = [n.text for n in proxy.sink.of(Notice) if "--strict" in n.text]
    assert len(notices) == 1 and "discarding what the client sends after its close" in notices[0]


async def test_strict_with_a_websockets_server_completes_the_clients_close_with_the_servers_code(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    seen: list[object] = []
    server_done = trio.Event()

    async def handler(ws: ServerConnection) -> None:
        try:
            async for message in ws:
                seen.append(message)
        finally:
            seen.append(ws.close_code)
            server_done.set()

    with trio.fail_after(10):
        url = await start_ws_server(nursery, handler)
        proxy = await start_proxy(url, strict=True, max_message_size=64 << 20)
        client, _, rest = await raw_client(proxy.port)
        await client.send_all(
            CLOSE_1000
            + encode_frame(9, b"ping", mask_key=MASK)
            + encode_frame(1, b"late", mask_key=MASK)
        )
        parser = FrameParser()
        reply = await next_frame(client, parser, rest)
        assert (reply.opcode, reply.close_code) == (8, 1000)  # not 1002: the handshake held
        # The server ends TCP (§7.1.1); the proxy passes it on.
        while await client.receive_some(65536):
            pass
        await client.aclose()
        await server_done.wait()
        closed = await proxy.sink.wait_for(ConnectionClosed)
    assert seen == [1000]  # the server saw only the close: no "late" message
    assert (closed.how, closed.client_close, closed.upstream_close) == (
        "close-handshake", (1000, ""), (1000, ""),
    )
    dropped = [e for e in proxy.sink.of(FrameSeen) if not e.delivered]
    assert [e.frame.opcode for e in dropped] == [9, 1]


async def test_strict_discards_what_the_server_sends_after_its_close(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    async def server(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        await stream.send_all(encode_frame(8, (1001).to_bytes(2, "big")) + encode_frame(1, b"late"))
        while await stream.receive_some(65536):
            pass

    with trio.fail_after(10):
        proxy = await start_proxy(await start_raw_ws_server(nursery, server), strict=True)
        client, _, rest = await raw_client(proxy.port)
        parser = FrameParser()
        first = await next_frame(client, parser, rest)
        assert (first.opcode, first.close_code) == (8, 1001)
        await client.send_all(encode_frame(8, (1001).to_bytes(2, "big"), mask_key=MASK))
        data = b""
        while chunk := await client.receive_some(65536):
            data += chunk
        assert parser.feed(data) == [] and parser.pending == 0  # no "late", no 1002
        closed = await proxy.sink.wait_for(ConnectionClosed)
    assert (closed.how, closed.initiator) == ("close-handshake", "upstream")
