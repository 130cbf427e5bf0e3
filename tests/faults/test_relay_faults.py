"""WebSocket-aware faults end to end, between real peers over loopback."""

from __future__ import annotations

import pytest
import trio
from fault_helpers import RawClient, StartProxy, echo, start_ws_server
from websockets.trio.client import connect

from wsinspect.events import ConnectionClosed, FaultInjected, FrameSeen
from wsinspect.recording.format import to_dict

pytestmark = pytest.mark.trio


async def test_drop_loses_matching_messages_and_marks_them_not_delivered(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, faults=["drop:dir=c2s,match=^ping"])
        async with connect(proxy.url(), proxy=None) as ws:
            await ws.send("ping 1")
            await ws.send("hello")
            assert await ws.recv() == "hello"  # the echo of "ping 1" never came
        fault = await proxy.sink.wait_for(FaultInjected)
    lost = [e for e in proxy.sink.of(FrameSeen) if e.frame.payload == b"ping 1"]
    assert [e.delivered for e in lost] == [False]
    assert to_dict(lost[0])["delivered"] is False
    assert (fault.fault, fault.direction) == ("drop", "c2s")
    assert to_dict(fault)["type"] == "fault"


async def test_match_sees_the_text_of_compressed_messages(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    """Browsers compress by default (permessage-deflate): ``match`` reads the inflated text."""
    import loopback

    with trio.fail_after(10):
        upstream = await loopback.start_ws_server(nursery, echo, compression="deflate")
        proxy = await start_proxy(upstream, faults=["drop:dir=c2s,match=^ping"])
        async with connect(proxy.url(), proxy=None, compression="deflate") as ws:
            await ws.send("ping " + "x" * 300)
            await ws.send("hello " + "y" * 300)
            assert await ws.recv() == "hello " + "y" * 300
    dropped = [e for e in proxy.sink.of(FrameSeen) if not e.delivered]
    assert dropped[0].frame.rsv1  # compressed on the wire
    assert dropped[0].frame.message.payload.startswith(b"ping ")
    # Context takeover: from the dropped message on, the proxy compresses the client's
    # messages itself ("hello" may refer back to the "ping" the upstream never inflated).
    assert [e.frame.message.payload[:6] for e in dropped[1:]] == [b"hello "]
    assert [e.written for e in proxy.sink.of(FrameSeen) if e.written] == ["recompressed"]


async def _survivors(nursery: trio.Nursery, start_proxy: StartProxy, seed: int) -> list[str]:
    upstream = await start_ws_server(nursery, echo)
    proxy = await start_proxy(upstream, faults=["drop:dir=c2s,match=^m,p=0.5"], seed=seed)
    got = []
    async with connect(proxy.url(), proxy=None) as ws:
        for i in range(40):
            await ws.send(f"m{i}")
        await ws.send("end")
        while (message := await ws.recv()) != "end":
            got.append(str(message))
    return got


async def test_a_seeded_run_repeats_exactly(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    with trio.fail_after(20):
        first = await _survivors(nursery, start_proxy, 11)
        second = await _survivors(nursery, start_proxy, 11)
        other = await _survivors(nursery, start_proxy, 12)
    assert first == second
    assert first != other
    assert 5 < len(first) < 35


async def test_latency_keeps_order(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, faults=["latency:dir=s2c,ms=30,jitter=25"], seed=3)
        async with connect(proxy.url(), proxy=None) as ws:
            for i in range(30):
                await ws.send(str(i))
            assert [await ws.recv() for _ in range(30)] == [str(i) for i in range(30)]
        fault = await proxy.sink.wait_for(FaultInjected)
    assert fault.fault == "latency" and fault.action == "frames delayed 30 ± 25 ms (order kept)"


async def test_throttle_delivers_everything(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, faults=["throttle:rate=200k"])
        async with connect(proxy.url(), proxy=None) as ws:
            await ws.send(b"x" * 50_000)
            assert await ws.recv() == b"x" * 50_000
    assert {e.fault for e in proxy.sink.of(FaultInjected)} == {"throttle"}


async def test_duplicate_delivers_a_message_twice(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, faults=["duplicate:dir=s2c,match=twice"])
        async with connect(proxy.url(), proxy=None) as ws:
            await ws.send("say it twice")
            await ws.send("once")
            assert [await ws.recv() for _ in range(3)] == ["say it twice", "say it twice", "once"]


async def test_refragment_splits_what_the_client_receives(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, faults=["refragment:dir=s2c,size=4"])
        client = await RawClient.connect(proxy.port)
        await client.send(1, b"0123456789")
        with trio.move_on_after(0.5):
            await client.ending()
    assert [(f.opcode, f.fin, f.payload) for f in client.frames] == [
        (1, False, b"0123"), (0, False, b"4567"), (0, True, b"89")]


async def test_refragmented_client_messages_reach_the_server_intact(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, faults=["refragment:dir=c2s,size=3"])
        async with connect(proxy.url(), proxy=None) as ws:
            await ws.send("a message in pieces")
            assert await ws.recv() == "a message in pieces"


async def test_swallowed_pongs_never_reach_the_client(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, faults=["swallow-pongs:dir=s2c"])
        client = await RawClient.connect(proxy.port)
        await client.send(9, b"are you there")
        pong = await proxy.sink.wait_for(FrameSeen, lambda e: e.frame.opcode == 10)
        await client.send(1, b"data still flows")
        with trio.move_on_after(0.5):
            await client.ending()
    assert not pong.delivered
    assert [(f.opcode, f.payload) for f in client.frames] == [(1, b"data still flows")]


async def test_never_close_leaves_the_closing_handshake_open(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, faults=["never-close:dir=c2s"])
        client = await RawClient.connect(proxy.port)
        await client.send(8, (1000).to_bytes(2, "big"))
        close = await proxy.sink.wait_for(FrameSeen, lambda e: e.frame.opcode == 8)
        with trio.move_on_after(0.5) as waited:
            await client.ending()
    assert waited.cancelled_caught and client.frames == []  # no close reply, still open
    assert not close.delivered


async def test_close_after_n_messages_closes_with_the_code(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, faults=["close-after:dir=c2s,messages=2,code=4000,reason=enough"])
        async with connect(proxy.url(), proxy=None) as ws:
            await ws.send("one")
            await ws.send("two")
            await ws.wait_closed()
        closed = await proxy.sink.wait_for(ConnectionClosed)
    assert (ws.close_code, ws.close_reason) == (4000, "enough")
    assert closed.how == "close-after"


async def test_close_after_seconds(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, faults=["close-after:seconds=0.2,code=1012"])
        async with connect(proxy.url(), proxy=None) as ws:
            await ws.wait_closed()
        fault = await proxy.sink.wait_for(FaultInjected)
    assert ws.close_code == 1012
    assert fault.action == "0.2 s passed → closing both sides with 1012"


async def test_cut_after_bytes_forwards_exactly_that_many_then_ends_tcp(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, faults=["cut-after:dir=s2c,bytes=10"])
        client = await RawClient.connect(proxy.port)
        await client.send(1, b"12345")  # echoed as 7 bytes
        await trio.sleep(0.1)
        await client.send(1, b"67890")  # the echo would make 14: 3 bytes pass, then the cut
        assert await client.ending() == "fin"
        closed = await proxy.sink.wait_for(ConnectionClosed)
    assert [f.payload for f in client.frames] == [b"12345"]  # the second echo arrived cut short
    assert closed.how == "cut-after"
    lost = [e for e in proxy.sink.of(FrameSeen) if e.direction == "s2c" and not e.delivered]
    assert [e.frame.payload for e in lost] == [b"67890"]


async def test_delay_handshake_still_connects(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, faults=["delay-handshake:ms=100"])
        async with connect(proxy.url(), proxy=None) as ws:
            await ws.send("late")
            assert await ws.recv() == "late"
    assert [e.fault for e in proxy.sink.of(FaultInjected)] == ["delay-handshake"]


async def test_faults_limited_to_a_path_leave_others_alone(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, faults=["drop:path=^/flaky"])
        async with connect(proxy.url("/steady"), proxy=None) as ws:
            await ws.send("kept")
            assert await ws.recv() == "kept"
    assert not proxy.sink.of(FaultInjected)


async def test_a_frame_sent_with_the_handshake_goes_through_the_faults_too(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    import base64
    import os

    from wsinspect.wire.frames import encode_frame

    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, faults=["drop:dir=c2s"])
        stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
        await stream.send_all(request + encode_frame(1, b"eager", mask_key=b"abcd"))
        seen = await proxy.sink.wait_for(FrameSeen, lambda e: e.frame.payload == b"eager")
        await stream.aclose()
    assert not seen.delivered
