"""What the peers receive is exactly what the other peer sent: raw-socket peers check the bits."""

from __future__ import annotations

import hashlib

import pytest
import trio
from relay_helpers import (
    StartProxy,
    raw_client,
    read_exactly,
    start_raw_ws_server,
)

from wsinspect.events import FrameSeen
from wsinspect.wire.frames import encode_frame

pytestmark = pytest.mark.trio

K1, K2, K3, K4 = b"\x01\x02\x03\x04", b"\xaa\xbb\xcc\xdd", b"\x00\x00\x00\x00", b"\xff\xee\xdd\xcc"


def _client_bytes() -> bytes:
    """Fragmented text with a ping between fragments, RSV bits, a reserved opcode and a
    non-minimal 16-bit length, each frame with its own mask key."""
    nonminimal = bytes([0x82, 0x80 | 126]) + (3).to_bytes(2, "big") + K4 + bytes(
        b ^ K4[i % 4] for i, b in enumerate(b"abc")
    )
    return b"".join([
        encode_frame(1, b"frag-one ", fin=False, mask_key=K1),
        encode_frame(9, b"ping-between", mask_key=K2),
        encode_frame(0, b"frag-two", fin=True, mask_key=K3),
        encode_frame(2, b"rsv", rsv2=True, rsv3=True, mask_key=K1),
        encode_frame(0x3, b"reserved-opcode", mask_key=K2),
        nonminimal,
    ])


async def test_client_frames_reach_upstream_byte_for_byte(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    sent = _client_bytes()
    received = trio.Event()
    got: list[bytes] = []

    async def server(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        got.append(rest + await read_exactly(stream, len(sent) - len(rest)))
        received.set()
        await trio.sleep_forever()

    with trio.fail_after(10):
        proxy = await start_proxy(await start_raw_ws_server(nursery, server))
        stream, head, _ = await raw_client(proxy.port)
        assert head.startswith(b"HTTP/1.1 101")
        # Sent in odd pieces: the chunking the upstream sees may differ, never the bytes.
        for i in range(0, len(sent), 7):
            await stream.send_all(sent[i : i + 7])
        await received.wait()
        assert got[0] == sent
        frames = proxy.sink.of(FrameSeen)
        while len(frames) < 6:
            await trio.sleep(0.01)
            frames = proxy.sink.of(FrameSeen)
        assert [f.frame.mask_key for f in frames] == [K1, K2, K3, K1, K2, K4]
        assert [f.frame.opcode for f in frames] == [1, 9, 0, 2, 3, 2]
        assert frames[0].frame.payload == b"frag-one "  # unmasked for the log
        await stream.aclose()


async def test_server_frames_reach_client_byte_for_byte(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    sent = b"".join([
        encode_frame(1, b"part1", fin=False),
        encode_frame(10, b"pong-between"),
        encode_frame(0, b"part2"),
        encode_frame(2, b"\x00" * 70000),  # 64-bit length encoding
        encode_frame(1, b"rsv1", rsv1=True),
        encode_frame(0xB, b""),  # reserved control opcode
        encode_frame(2, b"masked-by-server", mask_key=K2),  # a §5.1 violation, passed on
    ])

    async def server(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        await stream.send_all(sent)
        await trio.sleep_forever()

    with trio.fail_after(10):
        proxy = await start_proxy(await start_raw_ws_server(nursery, server))
        stream, _head, rest = await raw_client(proxy.port)
        assert rest + await read_exactly(stream, len(sent) - len(rest)) == sent
        await stream.aclose()


async def test_a_large_frame_streams_through_before_it_is_complete(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    size = 4 << 20
    payload = bytes(range(256)) * (size // 256)
    frame = encode_frame(2, payload, mask_key=K1)
    half = len(frame) // 2
    first_half_seen = trio.Event()
    done = trio.Event()
    digest: list[str] = []

    async def server(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        h = hashlib.sha256(rest)
        n = len(rest)
        while n < len(frame):
            chunk = await stream.receive_some(1 << 16)
            assert chunk
            h.update(chunk)
            n += len(chunk)
            if n >= half:
                first_half_seen.set()
        digest.append(h.hexdigest())
        done.set()
        await trio.sleep_forever()

    with trio.fail_after(20):
        proxy = await start_proxy(await start_raw_ws_server(nursery, server), capture_limit=1024)
        stream, _, _ = await raw_client(proxy.port)
        await stream.send_all(frame[:half])
        # The upstream has the first half while the frame is still incomplete.
        await first_half_seen.wait()
        await stream.send_all(frame[half:])
        seen = await proxy.sink.wait_for(FrameSeen)
        await done.wait()
        assert digest == [hashlib.sha256(frame).hexdigest()]
        assert seen.frame.length == size
        assert len(seen.frame.payload) == 1024  # only the capture limit is kept
        assert seen.frame.sha256 == hashlib.sha256(payload).hexdigest()
        await stream.aclose()


async def test_frames_the_client_sends_before_the_101_arrive_after_the_handshake(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    early = encode_frame(1, b"eager", mask_key=K1)
    got: list[bytes] = []
    done = trio.Event()

    async def server(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        got.append(rest + await read_exactly(stream, len(early) - len(rest)))
        done.set()
        await trio.sleep_forever()

    with trio.fail_after(10):
        from relay_helpers import read_until, upgrade_request

        proxy = await start_proxy(await start_raw_ws_server(nursery, server))
        stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        await stream.send_all(upgrade_request() + early)
        await read_until(stream, b"\r\n\r\n")
        await done.wait()
        assert got == [early]
        await stream.aclose()
