"""Idle timeouts end to end: the client really sees the documented ending."""

from __future__ import annotations

import contextlib

import pytest
import trio
from fault_helpers import RawClient, StartProxy, echo, start_ws_server
from websockets.trio.client import connect
from websockets.trio.server import ServerConnection

from wsinspect.events import ConnectionClosed, FaultInjected, FrameSeen
from wsinspect.recording.format import to_dict
from wsinspect.render import render_event

pytestmark = pytest.mark.trio

IDLE = 0.5  # seconds: short, so the tests stay quick


async def test_close_tcp_ends_both_connections_and_the_client_sees_1006(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, idle_timeout=IDLE)
        async with connect(proxy.url(), proxy=None) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.wait_closed()
            assert ws.close_code == 1006
        fault = await proxy.sink.wait_for(FaultInjected)
        closed = await proxy.sink.wait_for(ConnectionClosed)
    assert fault.fault == "idle-timeout"
    assert fault.action == "idle timeout 0.5 s fired → both TCP connections closed"
    assert render_event(fault).endswith("fault idle-timeout: idle timeout 0.5 s fired → both TCP connections closed")
    assert (closed.initiator, closed.how) == ("proxy", "idle-timeout")
    assert closed.client_close is None and closed.upstream_close is None


async def test_close_tcp_ends_the_client_with_a_fin(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, idle_timeout=IDLE)
        client = await RawClient.connect(proxy.port)
        assert client.status == 101
        assert await client.ending() == "fin"
    assert not client.frames  # no close frame


async def test_reset_sends_rst(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, idle_timeout=IDLE, idle_action="reset")
        client = await RawClient.connect(proxy.port)
        assert await client.ending() == "rst"
        closed = await proxy.sink.wait_for(ConnectionClosed)
    assert closed.how == "idle-timeout"


async def test_close_frame_sends_1001_to_both_and_completes_the_handshake(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    upstream_code: list[int | None] = []

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)
        upstream_code.append(ws.close_code)

    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, handler)
        proxy = await start_proxy(upstream, idle_timeout=IDLE, idle_action="close-frame")
        async with connect(proxy.url(), proxy=None) as ws:
            await ws.wait_closed()
            assert ws.close_code == 1001
            assert ws.close_reason == "idle timeout"
        closed = await proxy.sink.wait_for(ConnectionClosed)
        while not upstream_code:  # noqa: ASYNC110 (the handler appends when it ends)
            await trio.sleep(0.01)
    assert upstream_code == [1001]
    assert closed.how == "idle-timeout"


async def test_close_frame_with_a_chosen_code(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, idle_timeout=IDLE, idle_action="close-frame",
                                  idle_close_code=4000)
        async with connect(proxy.url(), proxy=None) as ws:
            await ws.wait_closed()
    assert ws.close_code == 4000


async def test_blackhole_keeps_both_open_and_silent(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, idle_timeout=IDLE, idle_action="blackhole")
        client = await RawClient.connect(proxy.port)
        fault = await proxy.sink.wait_for(FaultInjected)
        await client.send(1, b"anyone there?")
        lost = await proxy.sink.wait_for(FrameSeen, lambda e: e.frame.payload == b"anyone there?")
        with trio.move_on_after(0.5) as silent:
            ending = await client.ending()
    assert silent.cancelled_caught, f"the connection ended ({ending})"
    assert client.frames == []  # nothing came back
    assert not lost.delivered and to_dict(lost)["delivered"] is False
    assert fault.action.endswith("forwarding stopped, both connections kept open")
    assert not proxy.sink.of(ConnectionClosed)


async def test_traffic_keeps_the_connection_alive(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, idle_timeout=IDLE)
        async with connect(proxy.url(), proxy=None) as ws:
            for i in range(8):  # 8 x IDLE/4 > IDLE: alive only because of the traffic
                await ws.send(str(i))
                assert await ws.recv() == str(i)
                await trio.sleep(IDLE / 4)
    assert not proxy.sink.of(FaultInjected)


async def test_pings_keep_it_alive_unless_control_frames_are_ignored(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        alive = await start_proxy(upstream, idle_timeout=IDLE)
        ignoring = await start_proxy(upstream, idle_timeout=IDLE, idle_ignores_control=True)
        a = await RawClient.connect(alive.port)
        b = await RawClient.connect(ignoring.port)
        for _ in range(8):  # 8 x IDLE/4 > IDLE: only the pings can keep it alive
            await a.send(9, b"hb")
            with contextlib.suppress(trio.BrokenResourceError):
                await b.send(9, b"hb")
            await trio.sleep(IDLE / 4)
        assert await b.ending() == "fin"
        with trio.move_on_after(IDLE / 2) as still_open:
            await a.ending()
    assert still_open.cancelled_caught
    assert [f.opcode for f in a.frames] == [10] * 8  # every pong came back
