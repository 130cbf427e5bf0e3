"""Origin policy end to end: a refused Origin gets 403 and never reaches the upstream."""

from __future__ import annotations

import pytest
import trio
from fault_helpers import CountingUpstream, RawClient, StartProxy, echo, start_ws_server
from websockets.exceptions import InvalidStatus
from websockets.trio.client import connect

from wsinspect.events import ConnectionOpened, FaultInjected, HandshakeRejected
from wsinspect.recording.format import to_dict

pytestmark = pytest.mark.trio


async def test_refused_origin_gets_403_and_the_upstream_sees_no_connection(
    start_proxy: StartProxy, counting_upstream: CountingUpstream
) -> None:
    with trio.fail_after(10):
        proxy = await start_proxy(counting_upstream.url, allow_origins=("https://app.example.com",))
        with pytest.raises(InvalidStatus) as info:
            async with connect(proxy.url("/chat"), proxy=None, origin="https://evil.example"):  # type: ignore[arg-type]
                pass
        assert info.value.response.status_code == 403
        assert b"https://evil.example is not allowed" in info.value.response.body
        rejected = await proxy.sink.wait_for(HandshakeRejected)
        await trio.sleep(0.1)  # give a wrongly opened upstream connection time to be accepted
    assert counting_upstream.accepted == 0
    assert (rejected.status, rejected.origin, rejected.rule) == (403, "https://evil.example", "allow-origin")
    assert to_dict(rejected)["type"] == "rejected"


async def test_allowed_wildcard_origin_reaches_the_upstream(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, allow_origins=("https://*.example.com",))
        async with connect(proxy.url(), proxy=None, origin="https://app.example.com") as ws:  # type: ignore[arg-type]
            await ws.send("hi")
            assert await ws.recv() == "hi"
    assert proxy.sink.of(ConnectionOpened)


async def test_require_origin_refuses_a_request_without_origin(
    start_proxy: StartProxy, counting_upstream: CountingUpstream
) -> None:
    with trio.fail_after(10):
        proxy = await start_proxy(counting_upstream.url, require_origin=True)
        client = await RawClient.connect(proxy.port)
        body = client.rest + await client.body()
        rejected = await proxy.sink.wait_for(HandshakeRejected)
    assert client.status == 403
    assert b"no Origin header" in body
    assert rejected.rule == "require-origin" and rejected.origin is None
    assert counting_upstream.accepted == 0


async def test_report_mode_lets_the_handshake_through_and_flags_it(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, allow_origins=("https://app.example.com",),
                                  origin_mode="report")
        async with connect(proxy.url(), proxy=None, origin="https://evil.example") as ws:  # type: ignore[arg-type]
            await ws.send("hi")
            assert await ws.recv() == "hi"
        fault = await proxy.sink.wait_for(FaultInjected)
    assert fault.fault == "origin" and fault.detail["mode"] == "report"
    assert not proxy.sink.of(HandshakeRejected)


async def test_refuse_fault_answers_503_without_contacting_the_upstream(
    start_proxy: StartProxy, counting_upstream: CountingUpstream
) -> None:
    with trio.fail_after(10):
        proxy = await start_proxy(counting_upstream.url, faults=["refuse:status=503"])
        client = await RawClient.connect(proxy.port)
        rejected = await proxy.sink.wait_for(HandshakeRejected)
        fault = await proxy.sink.wait_for(FaultInjected)
        await trio.sleep(0.1)
    assert client.status == 503 and rejected.status == 503 and rejected.rule == "fault:refuse"
    assert fault.fault == "refuse"
    assert counting_upstream.accepted == 0


async def test_refuse_only_matching_paths(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo)
        proxy = await start_proxy(upstream, faults=["refuse:status=503,path=^/admin"])
        async with connect(proxy.url("/chat"), proxy=None) as ws:
            await ws.send("ok")
            assert await ws.recv() == "ok"
        client = await RawClient.connect(proxy.port, "/admin")
    assert client.status == 503
