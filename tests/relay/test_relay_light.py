"""The light inspection tier (``wire.walker``, used when nothing watches frames) relays and
reports exactly what the full tier does: same bytes, same endings, same counts."""

from __future__ import annotations

import os
from typing import Any

import pytest
import trio
from relay_helpers import (
    StartProxy,
    echo,
    raw_client,
    read_exactly,
    read_to_eof,
    set_rst,
    start_raw_ws_server,
    start_ws_server,
)
from websockets.trio.client import connect

from wsinspect.events import ConnectionClosed, FaultInjected
from wsinspect.recording.format import to_dict
from wsinspect.relay.control import BlackholeConnection, CloseConnection
from wsinspect.relay.observers import Tier
from wsinspect.wire.frames import FrameParser, encode_frame

pytestmark = pytest.mark.trio

MASK = b"\x0a\x0b\x0c\x0d"
TIERS = {"light": {"frames": False, "messages": False}, "full": {}}


def _report(closed: ConnectionClosed) -> dict[str, Any]:
    """What ``ConnectionClosed`` says, without the times."""
    d = to_dict(closed)
    for key in ("ts", "duration", "conn"):
        d.pop(key, None)
    return d


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


async def _pair(nursery: trio.Nursery, start_proxy: StartProxy, tier: str, **kw: Any):  # type: ignore[no-untyped-def]
    up = Upstream()
    proxy = await start_proxy(await start_raw_ws_server(nursery, up.handler), **TIERS[tier], **kw)
    client, _, _ = await raw_client(proxy.port)
    await up.ready.wait()
    assert up.stream is not None
    assert set(proxy.relay.sessions[1].tiers.values()) == {Tier(tier)}
    return proxy, client, up


async def test_light_and_full_tiers_relay_a_session_and_report_it_the_same(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    big = bytes(range(256)) * 1200  # ~300 KiB: spans several chunks

    async def session(tier: str) -> tuple[list[object], dict[str, Any]]:
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, **TIERS[tier])
        got: list[object] = []
        async with connect(proxy.url(), proxy=None, max_size=None) as ws:
            assert set(proxy.relay.sessions[1].tiers.values()) == {Tier(tier)}
            await ws.send("hello")
            got.append(await ws.recv())
            await ws.send(big)
            got.append(await ws.recv())
            await ws.send([b"frag", b"mented", b"!"])  # one message, three frames
            got.append(await ws.recv())
            pong = await ws.ping(b"p")
            await pong.wait()
            await ws.aclose(1000, "bye")
        closed = await proxy.sink.wait_for(ConnectionClosed)
        return got, _report(closed)

    with trio.fail_after(15):
        light = await session("light")
        full = await session("full")
    assert light[0] == ["hello", big, b"fragmented!"]
    assert light == full
    report = light[1]
    assert report["how"] == "close-handshake" and report["code"] == 1000
    # c2s: text, binary, 3 fragments + websockets' empty final one, ping, close; s2c: the
    # echoed messages (one frame each), pong, close.
    assert report["frames"] == {"c2s": 8, "s2c": 5}


@pytest.mark.parametrize("tier", ["light", "full"])
async def test_a_client_fin_is_relayed_and_reported_the_same_in_both_tiers(
    nursery: trio.Nursery, start_proxy: StartProxy, tier: str
) -> None:
    with trio.fail_after(10):
        proxy, client, up = await _pair(nursery, start_proxy, tier)
        hello = encode_frame(1, b"hello", mask_key=MASK)
        await client.send_all(hello + encode_frame(2, b"x" * 70_000, mask_key=MASK)[:1000])
        await client.send_eof()
        assert len(await read_to_eof(up.stream)) == len(hello) + 1000
        closed = await proxy.sink.wait_for(ConnectionClosed)
        report = _report(closed)
        assert (report["initiator"], report["how"]) == ("client", "fin")
        assert report["frames"] == {"c2s": 1, "s2c": 0}
        assert report["bytes"] == {"c2s": len(hello) + 1000, "s2c": 0}
        up.done.set()


@pytest.mark.parametrize("tier", ["light", "full"])
async def test_an_upstream_rst_is_relayed_and_reported_the_same_in_both_tiers(
    nursery: trio.Nursery, start_proxy: StartProxy, tier: str
) -> None:
    with trio.fail_after(10):
        proxy, client, up = await _pair(nursery, start_proxy, tier)
        assert up.stream is not None
        ping = encode_frame(9, b"hi")
        await up.stream.send_all(ping)
        assert await read_exactly(client, len(ping)) == ping
        set_rst(up.stream)
        await up.stream.aclose()
        with pytest.raises(trio.BrokenResourceError):
            await read_to_eof(client)
        closed = await proxy.sink.wait_for(ConnectionClosed)
        assert (closed.initiator, closed.how) == ("upstream", "rst")
        assert closed.frames == {"c2s": 0, "s2c": 1}
        up.done.set()


async def test_light_tier_tracks_data_and_control_activity(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        proxy, client, up = await _pair(nursery, start_proxy, "light")
        session = proxy.relay.sessions[1]
        before_data, before_control = session.traffic.last_data, session.traffic.last_control
        await trio.sleep(0.02)
        ping = encode_frame(9, b"ping", mask_key=MASK)
        await client.send_all(ping)
        await read_exactly(up.stream, len(ping))
        assert session.traffic.last_control > before_control and session.traffic.last_data == before_data
        await trio.sleep(0.02)
        text = encode_frame(1, b"data", mask_key=MASK)
        await client.send_all(text)
        await read_exactly(up.stream, len(text))
        assert session.traffic.last_data > session.traffic.last_control
        assert session.traffic.frames == {"c2s": 2, "s2c": 0}
        up.done.set()


async def test_idle_timeout_fires_in_the_light_tier(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        proxy, client, up = await _pair(nursery, start_proxy, "light", idle_timeout=0.3)
        assert await read_to_eof(client) == b""  # FIN, no close frame
        fault = await proxy.sink.wait_for(FaultInjected)
        closed = await proxy.sink.wait_for(ConnectionClosed)
        assert fault.fault == "idle-timeout"
        assert (closed.initiator, closed.how) == ("proxy", "idle-timeout")
        up.done.set()


@pytest.mark.parametrize(
    ("tier", "size", "first"),
    [
        ("light", 100_000, 50_000),
        ("full", 100_000, 50_000),
        ("light", 3_000_000, 500_000),  # long enough to be spliced (on Linux)
        ("full", 3_000_000, 500_000),  # the dropped frame after the close spans many chunks
    ],
)
async def test_a_proxy_close_waits_for_the_frame_in_progress_in_both_tiers(
    nursery: trio.Nursery, start_proxy: StartProxy, tier: str, size: int, first: int
) -> None:
    payload = os.urandom(size)
    frame = encode_frame(2, payload, mask_key=MASK)
    parser = FrameParser(capture_limit=size)
    upstream_frames: list[Any] = []
    got_close = trio.Event()

    async def server(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        data = rest
        while True:
            upstream_frames.extend(parser.feed(data))
            if any(f.opcode == 8 for f in upstream_frames):
                got_close.set()
                await stream.send_all(encode_frame(8, b"\x03\xe8"))
                await trio.sleep_forever()
            data = await stream.receive_some(65536)
            if not data:
                return

    with trio.fail_after(10):
        proxy = await start_proxy(await start_raw_ws_server(nursery, server), **TIERS[tier])
        client, _, _ = await raw_client(proxy.port)
        session = proxy.relay.sessions[1]
        assert set(session.tiers.values()) == {Tier(tier)}
        # Two frames in progress in turn: the first ends in the second's chunk (a frame that
        # began in an earlier chunk), the second is cut mid-header.
        await client.send_all(frame[:first])
        while session.traffic.bytes["c2s"] < first:  # noqa: ASYNC110 (bounded by fail_after)
            await trio.sleep(0.01)
        async with trio.open_nursery() as inner:
            inner.start_soon(proxy.relay.execute, CloseConnection(1, 4001))
            await trio.sleep(0.1)
            await client.send_all(frame[first:] + frame[:1])
            await got_close.wait()
            # The upstream got the whole frame, then a clean close frame: never a frame cut
            # in two, and the new frame's first byte was held back.
            assert [f.opcode for f in upstream_frames] == [2, 8]
            assert upstream_frames[0].payload == payload and upstream_frames[1].close_code == 4001
            # The rest of that frame (dropped: the connection is closing), then the reply.
            await client.send_all(frame[1:] + encode_frame(8, b"\x0f\xa1", mask_key=MASK))
        closed = await proxy.sink.wait_for(ConnectionClosed)
        assert closed.how == "closed-by-proxy"
        assert closed.frames["c2s"] == 3 and closed.client_close == (4001, "")
        assert [f.opcode for f in upstream_frames] == [2, 8]


async def test_blackhole_drops_frames_in_the_light_tier(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        proxy, client, up = await _pair(nursery, start_proxy, "light")
        assert up.stream is not None
        await proxy.relay.execute(BlackholeConnection(1))
        await client.send_all(encode_frame(1, b"lost", mask_key=MASK) * 3)
        while proxy.relay.sessions[1].traffic.frames["c2s"] < 3:  # noqa: ASYNC110 (bounded by fail_after)
            await trio.sleep(0.01)
        await proxy.relay.execute(BlackholeConnection(1, on=False))
        kept = encode_frame(1, b"kept", mask_key=MASK)
        await client.send_all(kept)
        assert await read_exactly(up.stream, len(kept)) == kept  # nothing of the lost ones
        up.done.set()


async def test_a_frame_fault_cannot_be_added_to_a_running_light_session(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    from wsinspect.faults.commands import AddFault
    from wsinspect.relay.control import ControlError

    with trio.fail_after(10):
        proxy, client, up = await _pair(nursery, start_proxy, "light")
        hello = encode_frame(1, b"hello", mask_key=MASK)
        await client.send_all(hello)
        await read_exactly(up.stream, len(hello))
        with pytest.raises(ControlError, match="light inspection tier"):
            await proxy.relay.execute(AddFault("drop", 1))
        await client.send_all(hello)  # still relayed as before
        assert await read_exactly(up.stream, len(hello)) == hello
        up.done.set()
