"""``--strict``: a violation closes the offender with the RFC code and the other side with 1001."""

from __future__ import annotations

import pytest
import trio
from relay_helpers import StartProxy, raw_client, start_raw_ws_server

from wsinspect.events import ConnectionClosed, FrameSeen, Notice
from wsinspect.wire.frames import FrameParser, encode_frame

pytestmark = pytest.mark.trio

MASK = b"\x01\x02\x03\x04"


async def _read_frame(stream: trio.abc.ReceiveStream) -> list:  # type: ignore[type-arg]
    parser = FrameParser()
    while True:
        frames = parser.feed(await stream.receive_some(1))
        if frames:
            return frames


async def _run(nursery: trio.Nursery, start_proxy: StartProxy, bad: bytes, strict: bool):  # type: ignore[no-untyped-def]
    received: list[bytes] = []
    got_close = trio.Event()
    upstream_frames: list = []  # type: ignore[type-arg]

    async def server(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        parser = FrameParser(capture_limit=1 << 21)
        data = rest
        while True:
            for frame in parser.feed(data):
                upstream_frames.append(frame)
                if frame.opcode == 8:
                    got_close.set()
                    await stream.send_all(encode_frame(8, frame.payload))  # reply
                    return
                received.append(frame.payload)
            data = await stream.receive_some(65536)
            if not data:
                return

    proxy = await start_proxy(await start_raw_ws_server(nursery, server), strict=strict)
    client, _, _ = await raw_client(proxy.port)
    await client.send_all(encode_frame(1, b"fine", mask_key=MASK) + bad)
    return proxy, client, received, got_close, upstream_frames


async def test_strict_closes_an_unmasked_client_with_1002_and_upstream_with_1001(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        proxy, client, received, got_close, up_frames = await _run(
            nursery, start_proxy, encode_frame(1, b"unmasked"), strict=True
        )
        frames = await _read_frame(client)
        assert frames[0].opcode == 8 and frames[0].close_code == 1002
        await got_close.wait()
        assert received == [b"fine"]  # the violating frame did not go on
        assert up_frames[-1].close_code == 1001 and up_frames[-1].masked
        await client.send_all(encode_frame(8, b"\x03\xea", mask_key=MASK))  # client replies
        closed = await proxy.sink.wait_for(ConnectionClosed)
        assert closed.how == "strict" and closed.initiator == "proxy"
        notice = await proxy.sink.wait_for(Notice, lambda n: "--strict" in n.text)
        assert "§5.1" in notice.text
        bad = [f for f in proxy.sink.of(FrameSeen) if f.frame.payload == b"unmasked"]
        assert bad and not bad[0].delivered


async def test_strict_closes_invalid_utf8_with_1007(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    with trio.fail_after(10):
        _proxy, client, _received, _got_close, _ = await _run(
            nursery, start_proxy, encode_frame(1, b"\xff\xfe", mask_key=MASK), strict=True
        )
        frames = await _read_frame(client)
        assert frames[0].close_code == 1007


async def test_without_strict_violations_are_forwarded_unchanged(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        proxy, _client, received, _got_close, _ = await _run(
            nursery, start_proxy, encode_frame(1, b"unmasked"), strict=False
        )
        while len(received) < 2:  # noqa: ASYNC110 (bounded by fail_after)
            await trio.sleep(0.01)
        assert received == [b"fine", b"unmasked"]
        seen = await proxy.sink.wait_for(FrameSeen, lambda f: f.frame.payload == b"unmasked")
        assert seen.delivered and seen.frame.violations[0].section == "RFC 6455 §5.1"


async def test_strict_closes_after_a_long_violating_frame_that_streamed_through(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        big = encode_frame(2, b"u" * 600_000)  # unmasked client frame, many chunks long
        _proxy, client, received, got_close, _ = await _run(nursery, start_proxy, big, strict=True)
        await got_close.wait()
        frames = await _read_frame(client)
        assert frames[0].close_code == 1002
        assert received == [b"fine", b"u" * 600_000]  # it streamed on before it was complete
