"""Hostile input: whatever a client or an upstream sends, the proxy answers it the documented
way, never crashes or hangs, and one bad connection never hurts another.

Every case runs over real loopback sockets with the proxy in-process. ``TIERS`` runs a case
with a sink that wants frames (the full ``Inspector`` tier) and without (the light
``FrameWalker`` tier). After each case the proxy must be healthy: no ``Notice`` of level
error (an exception that escaped a session), no session left in ``relay.sessions``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from relay_helpers import (
    KEY,
    Collector,
    Proxy,
    StartProxy,
    echo,
    raw_client,
    read_exactly,
    read_to_eof,
    read_until,
    set_rst,
    start_raw_server,
    start_raw_ws_server,
    start_ws_server,
    upgrade_request,
)
from websockets.trio.client import connect

from wsinspect.compose import serve_proxy
from wsinspect.events import (
    ConnectionClosed,
    ConnectionOpened,
    FrameSeen,
    HandshakeRejected,
    MessageAction,
    Notice,
)
from wsinspect.faults.spec import parse_fault
from wsinspect.hub import Hub
from wsinspect.intercept.breakpoints import parse_breakpoint
from wsinspect.relay.observers import Tier
from wsinspect.settings import Settings, Upstream
from wsinspect.wire.frames import encode_frame

pytestmark = pytest.mark.trio

MASK = b"\x0a\x0b\x0c\x0d"
TIERS = {"light": {"frames": False, "messages": False}, "full": {}}
tiers = pytest.mark.parametrize("tier", list(TIERS))


# -- helpers ---------------------------------------------------------------------------------


def assert_healthy(proxy: Proxy) -> None:
    """No exception escaped a session (it would be published as an error notice)."""
    errors = [e.text for e in proxy.sink.of(Notice) if e.level == "error"]
    assert errors == []


async def wait_no_sessions(proxy: Proxy) -> None:
    """``relay.sessions`` empties once every relayed connection has ended (bound by caller)."""
    # The relay publishes no event when it forgets a session (after ConnectionClosed): poll.
    while proxy.relay.sessions:  # noqa: ASYNC110
        await trio.sleep(0.01)


async def exchange(port: int, data: bytes, *, eof: bool = True) -> bytes:
    """Send ``data`` to the proxy (then EOF) and read its answer to the end."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        if data:
            await stream.send_all(data)
        if eof:
            await stream.send_eof()
        return await read_to_eof(stream)
    finally:
        await stream.aclose()


def status_of(response: bytes) -> tuple[int, str]:
    """``(status, body)`` of an HTTP response."""
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body.decode()


async def start_in(nursery: trio.Nursery, upstream: str, *, full: bool = True, **kw: Any) -> Proxy:
    """``start_proxy`` without the fixture (Hypothesis runs its examples in one test)."""
    settings = dataclasses.replace(Settings(listen_port=0, upstream=Upstream.parse(upstream)), **kw)
    hub = Hub()
    sink = Collector()
    hub.subscribe(sink, frames=full, messages=full)
    return Proxy(await nursery.start(serve_proxy, settings, hub), sink)


async def rejected(proxy: Proxy) -> HandshakeRejected:
    return await proxy.sink.wait_for(HandshakeRejected)  # type: ignore[no-any-return]


class RawUpstream:
    """A hand-written upstream with a correct 101 that hands its stream to the test."""

    def __init__(self) -> None:
        self.ready = trio.Event()
        self.stream: trio.SocketStream | None = None
        self.head = b""
        self.rest = b""
        self.done = trio.Event()

    async def handler(self, stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        self.stream, self.head, self.rest = stream, head, rest
        self.ready.set()
        await self.done.wait()


async def relayed_pair(
    nursery: trio.Nursery, start_proxy: StartProxy, tier: str, **kw: Any
) -> tuple[Proxy, trio.SocketStream, RawUpstream]:
    """A proxy in ``tier`` between a raw client and a raw upstream, both handshakes done."""
    up = RawUpstream()
    proxy = await start_proxy(await start_raw_ws_server(nursery, up.handler), **TIERS[tier], **kw)
    client, head, _ = await raw_client(proxy.port)
    assert head.startswith(b"HTTP/1.1 101")
    await up.ready.wait()
    assert set(proxy.relay.sessions[1].tiers.values()) == {Tier(tier)}
    return proxy, client, up


async def answering_upstream(nursery: trio.Nursery, answer: Callable[[trio.SocketStream], Awaitable[None]]) -> str:
    """A raw upstream that reads the request head, then runs ``answer(stream)``."""

    async def handler(stream: trio.SocketStream) -> None:
        await read_until(stream, b"\r\n\r\n")
        await answer(stream)

    host, port = await start_raw_server(nursery, handler)
    return f"ws://{host}:{port}"


# -- client side, before and during the handshake ----------------------------------------------


async def test_a_request_line_without_headers_then_eof_gets_400(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(5):
        proxy = await start_proxy(await start_ws_server(nursery, echo))
        status, body = status_of(await exchange(proxy.port, b"GET / HTTP/1.1\r\n"))
        assert status == 400
        assert "closed" in body
        assert body.count("\n") == 1
        assert (await rejected(proxy)).status == 400
        assert_healthy(proxy)


async def test_a_slowloris_header_is_dropped_at_the_handshake_timeout(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(5):
        proxy = await start_proxy(await start_ws_server(nursery, echo), handshake_timeout=0.5)
        stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        answer = b""

        async def drip() -> None:
            # A header that never ends, one byte every 50 ms, until the proxy answers.
            await stream.send_all(b"GET / HTTP/1.1\r\nX-Slow: ")
            with contextlib.suppress(trio.BrokenResourceError):
                for _ in range(200):
                    await stream.send_all(b"a")
                    await trio.sleep(0.05)

        async with trio.open_nursery() as inner:
            inner.start_soon(drip)
            answer = await read_to_eof(stream)
            inner.cancel_scope.cancel()
        await stream.aclose()
        status, body = status_of(answer)
        assert status == 408
        assert "no complete request within 0.5 s" in body
        assert (await rejected(proxy)).status == 408
        assert_healthy(proxy)


async def test_a_header_block_over_the_limit_in_small_pieces_gets_431(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(5):
        proxy = await start_proxy(await start_ws_server(nursery, echo), max_header_size=4096)
        stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        big = upgrade_request(extra="".join(f"X-Pad-{i}: {'v' * 60}\r\n" for i in range(200)))
        with contextlib.suppress(trio.BrokenResourceError):
            for i in range(0, len(big), 100):
                await stream.send_all(big[i : i + 100])
        status, body = status_of(await read_to_eof(stream))
        await stream.aclose()
        assert status == 431
        assert body == "request headers too large\n"
        assert (await rejected(proxy)).status == 431
        assert_healthy(proxy)


@pytest.mark.parametrize(
    "extra",
    [b"X-Bad: a\x00b\r\n", b"X-B\x00d: ab\r\n", b"X-\xe9t\xe9: ab\r\n", b"X-Bad\r\n"],
    ids=["nul-in-value", "nul-in-name", "non-ascii-name", "no-colon"],
)
async def test_nul_bytes_or_non_token_header_names_get_400(
    nursery: trio.Nursery, start_proxy: StartProxy, extra: bytes
) -> None:
    with trio.fail_after(5):
        proxy = await start_proxy(await start_ws_server(nursery, echo))
        request = upgrade_request().replace(b"\r\n\r\n", b"\r\n" + extra + b"\r\n")
        status, body = status_of(await exchange(proxy.port, request))
        assert status == 400
        assert body.startswith("malformed HTTP request")
        assert (await rejected(proxy)).status == 400
        assert_healthy(proxy)


async def test_non_ascii_header_values_reach_the_upstream_byte_for_byte(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(5):
        up = RawUpstream()
        proxy = await start_proxy(await start_raw_ws_server(nursery, up.handler))
        request = upgrade_request().replace(b"\r\n\r\n", b"\r\nX-Name: Ren\xe9e \xff\r\n\r\n")
        client = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        await client.send_all(request)
        assert (await read_until(client, b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        await up.ready.wait()
        assert b"\r\nX-Name: Ren\xe9e \xff" in up.head
        await client.aclose()
        up.done.set()
        await wait_no_sessions(proxy)
        assert_healthy(proxy)


@pytest.mark.parametrize(
    ("request_bytes", "reason"),
    [
        (upgrade_request(extra=f"Sec-WebSocket-Key: {KEY}\r\n"), "more than one Sec-WebSocket-Key"),
        (upgrade_request().replace(b"Host: 127.0.0.1\r\n", b""), "Host"),
        (
            upgrade_request()
            .replace(b"HTTP/1.1", b"HTTP/1.0")
            .replace(b"Host: 127.0.0.1\r\n", b""),
            "HTTP/1.1",
        ),
        (upgrade_request(extra="Content-Length: 5\r\n") + b"hello", "body"),
        (
            upgrade_request(extra="Transfer-Encoding: chunked\r\n") + b"5\r\nhello\r\n0\r\n\r\n",
            "body",
        ),
    ],
    ids=["duplicate-key", "no-host", "http10-no-host", "content-length-body", "chunked-body"],
)
async def test_invalid_upgrade_requests_get_400_with_a_one_line_reason(
    nursery: trio.Nursery, start_proxy: StartProxy, request_bytes: bytes, reason: str
) -> None:
    with trio.fail_after(5):
        proxy = await start_proxy(await start_ws_server(nursery, echo))
        status, body = status_of(await exchange(proxy.port, request_bytes))
        assert status == 400
        assert reason in body and body.count("\n") == 1
        event = await rejected(proxy)
        assert event.status == 400 and reason in event.reason
        assert_healthy(proxy)


async def test_tls_client_hello_to_the_plain_listener_gets_400(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    # The start of a real TLS 1.2+ ClientHello record.
    hello = bytes.fromhex("16030100f8010000f40303") + os.urandom(32) + b"\x20" + os.urandom(32)
    with trio.fail_after(5):
        proxy = await start_proxy(await start_ws_server(nursery, echo))
        status, body = status_of(await exchange(proxy.port, hello))
        assert status == 400
        assert body.startswith("malformed HTTP request")
        assert_healthy(proxy)


async def test_an_http2_preface_gets_400(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    with trio.fail_after(5):
        proxy = await start_proxy(await start_ws_server(nursery, echo))
        answer = await exchange(proxy.port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        status, body = status_of(answer)
        assert status == 400
        assert body == "unsupported HTTP version 2.0: this proxy speaks HTTP/1.1\n"
        assert (await rejected(proxy)).status == 400
        assert_healthy(proxy)


async def _plain_upstream(nursery: trio.Nursery, heads: list[bytes]) -> str:
    """A plain HTTP upstream that records request heads and answers ``200 ok``."""

    async def handler(stream: trio.SocketStream) -> None:
        with contextlib.suppress(trio.BrokenResourceError):
            heads.append(await read_until(stream, b"\r\n\r\n"))
            await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    host, port = await start_raw_server(nursery, handler)
    return f"ws://{host}:{port}"


async def test_a_malformed_plain_http_body_gets_400_not_502(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(5):
        proxy = await start_proxy(await _plain_upstream(nursery, []))
        request = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
        status, body = status_of(await exchange(proxy.port, request))
        assert (status, body) == (400, "malformed request body: illegal chunk header\n")
        assert_healthy(proxy)


async def test_a_plain_http_1_0_request_without_host_is_relayed(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(5):
        heads: list[bytes] = []
        proxy = await start_proxy(await _plain_upstream(nursery, heads))
        status, body = status_of(await exchange(proxy.port, b"GET /x HTTP/1.0\r\n\r\n"))
        assert (status, body) == (200, "ok")
        assert heads[0].startswith(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1:")
        assert_healthy(proxy)


PLAIN_UPSTREAM = {
    "garbage": (
        b"\x00\x01garbage\r\n\r\n",
        502,
        "upstream sent malformed HTTP: illegal status line",
    ),
    "closed": (b"", 502, "upstream closed the connection without a response"),
    "silent": (None, 504, "upstream did not answer within 0.5 s"),
}


@pytest.mark.parametrize("case", list(PLAIN_UPSTREAM))
async def test_a_plain_http_upstream_misbehaving_gets_the_client_502_or_504(
    nursery: trio.Nursery, start_proxy: StartProxy, case: str
) -> None:
    answer, want_status, want_body = PLAIN_UPSTREAM[case]

    async def handler(stream: trio.SocketStream) -> None:
        await read_until(stream, b"\r\n\r\n")
        if answer is None:
            await trio.sleep_forever()
        await stream.send_all(answer)

    with trio.fail_after(5):
        host, port = await start_raw_server(nursery, handler)
        proxy = await start_proxy(f"ws://{host}:{port}", handshake_timeout=0.5)
        status, body = status_of(await exchange(proxy.port, b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n"))
        assert (status, body) == (want_status, want_body + "\n")
        assert_healthy(proxy)


async def test_an_absolute_form_target_is_relayed_as_its_path(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(5):
        up = RawUpstream()
        url = await start_raw_ws_server(nursery, up.handler)
        proxy = await start_proxy(url + "/base")
        client = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        await client.send_all(upgrade_request("ws://example.test:8080/chat?room=1"))
        assert (await read_until(client, b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        await up.ready.wait()
        assert up.head.startswith(b"GET /base/chat?room=1 HTTP/1.1\r\n")
        await client.aclose()
        up.done.set()
        await wait_no_sessions(proxy)
        assert_healthy(proxy)


@tiers
async def test_frames_pipelined_before_the_101_are_forwarded_after_it(
    nursery: trio.Nursery, start_proxy: StartProxy, tier: str
) -> None:
    frames = encode_frame(1, b"early", mask_key=MASK) + encode_frame(2, b"bird", mask_key=MASK)
    with trio.fail_after(5):
        up = RawUpstream()
        proxy = await start_proxy(await start_raw_ws_server(nursery, up.handler), **TIERS[tier])
        client = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        await client.send_all(upgrade_request() + frames)
        assert (await read_until(client, b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        await up.ready.wait()
        assert up.stream is not None
        got = up.rest + await read_exactly(up.stream, len(frames) - len(up.rest))
        assert got == frames
        await client.aclose()
        assert await read_to_eof(up.stream) == b""
        await up.stream.aclose()
        closed = await proxy.sink.wait_for(ConnectionClosed)
        assert closed.frames["c2s"] == 2
        up.done.set()
        assert_healthy(proxy)


@pytest.mark.parametrize("rst", [False, True], ids=["fin", "rst"])
async def test_a_client_leaving_mid_handshake_is_not_an_error(
    nursery: trio.Nursery, start_proxy: StartProxy, rst: bool
) -> None:
    with trio.fail_after(5):
        proxy = await start_proxy(await start_ws_server(nursery, echo))
        half = upgrade_request()[:40]
        for _ in range(3):
            stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
            await stream.send_all(half)
            if rst:
                set_rst(stream)
            await stream.aclose()
        # A fourth, normal connection is served: the listener took the three in stride.
        async with connect(proxy.url(), proxy=None) as ws:
            await ws.send("ok")
            assert await ws.recv() == "ok"
        await wait_no_sessions(proxy)
        assert_healthy(proxy)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(garbage=st.binary(min_size=1, max_size=600))
async def test_random_bytes_before_the_handshake_get_an_http_answer_or_a_close(
    garbage: bytes,
) -> None:
    async with trio.open_nursery() as nursery:
        proxy = await start_in(nursery, await start_ws_server(nursery, echo), handshake_timeout=1)
        with trio.fail_after(5):
            answer = await exchange(proxy.port, garbage)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 ")
        assert proxy.relay.sessions == {}
        assert_healthy(proxy)
        nursery.cancel_scope.cancel()


# -- client side, after the handshake ----------------------------------------------------------


#: Faults and breakpoints that are set up but never act on this traffic: their frame stage,
#: message gate, shapers and idle watcher are in the path, and the bytes must still pass
#: unchanged. The second breakpoint makes the proxy collect every binary message from the
#: upstream and every message from the client (its words never match), as a held one would be.
ARMED_IDLE = {
    "faults": tuple(parse_fault(f) for f in ("drop:match=^never-sent-xyzzy", "latency:ms=0")),
    "idle_timeout": 3600.0,
    "breakpoints": tuple(parse_breakpoint(b) for b in (
        "re:^never-sent-xyzzy", "dir:s2c op:binary never-sent-xyzzy", "dir=c2s,text=xyzzy")),
    # ... and scripts that read every message and answer None (one plain, one async)
    "scripts": tuple(str(Path(__file__).parent.parent / "script" / name)
                     for name in ("noop.py", "noop_async.py")),
}


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    garbage=st.binary(min_size=1, max_size=2000),
    full=st.booleans(),
    from_upstream=st.booleans(),
    armed=st.booleans(),
)
async def test_random_bytes_as_frames_pass_through_unchanged(
    garbage: bytes, full: bool, from_upstream: bool, armed: bool
) -> None:
    async with trio.open_nursery() as nursery:
        with trio.fail_after(5):
            up = RawUpstream()
            proxy = await start_in(
                nursery, await start_raw_ws_server(nursery, up.handler), full=full,
                **(ARMED_IDLE if armed else {}),
            )
            client, head, _ = await raw_client(proxy.port)
            assert head.startswith(b"HTTP/1.1 101")
            await up.ready.wait()
            assert up.stream is not None
            sender, receiver = (up.stream, client) if from_upstream else (client, up.stream)
            await sender.send_all(garbage)
            await sender.send_eof()
            assert await read_to_eof(receiver) == garbage
            await receiver.aclose()  # the other side follows the FIN at once
            closed = await proxy.sink.wait_for(ConnectionClosed)
            side, d = ("upstream", "s2c") if from_upstream else ("client", "c2s")
            assert (closed.initiator, closed.how) == (side, "fin")
            assert closed.bytes[d] == len(garbage)
            up.done.set()
            await sender.aclose()
            await wait_no_sessions(proxy)
            assert_healthy(proxy)
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("from_upstream", [False, True])
async def test_a_sender_ending_inside_a_frame_a_stage_holds_still_delivers_its_bytes(
    nursery: trio.Nursery, start_proxy: StartProxy, from_upstream: bool
) -> None:
    """A stage sees whole frames only, so it holds a frame's start until the rest comes; if the
    sender ends instead, the receiver still gets every byte, then the FIN."""
    whole = encode_frame(1, b"hello", mask_key=None if from_upstream else MASK)
    start = encode_frame(2, b"x" * 100, mask_key=None if from_upstream else MASK)[:20]
    with trio.fail_after(5):
        up = RawUpstream()
        proxy = await start_proxy(await start_raw_ws_server(nursery, up.handler), **ARMED_IDLE)
        client, head, _ = await raw_client(proxy.port)
        assert head.startswith(b"HTTP/1.1 101")
        await up.ready.wait()
        assert up.stream is not None
        sender, receiver = (up.stream, client) if from_upstream else (client, up.stream)
        await sender.send_all(whole + start)
        await sender.send_eof()
        assert await read_to_eof(receiver) == whole + start
        await receiver.aclose()
        closed = await proxy.sink.wait_for(ConnectionClosed)
        assert closed.how == "fin"
        up.done.set()
        await sender.aclose()


@tiers
@pytest.mark.parametrize("end", ["silence", "fin"])
async def test_a_frame_declaring_2_63_minus_1_bytes_streams_and_ends_cleanly(
    nursery: trio.Nursery, start_proxy: StartProxy, tier: str, end: str
) -> None:
    header = b"\x82\xff" + struct.pack("!Q", (1 << 63) - 1) + MASK
    with trio.fail_after(5):
        proxy, client, up = await relayed_pair(nursery, start_proxy, tier)
        assert up.stream is not None
        await client.send_all(header + b"x" * 1000)
        assert await read_exactly(up.stream, len(header) + 1000) == header + b"x" * 1000
        if end == "fin":
            await client.send_eof()
            assert await read_to_eof(up.stream) == b""
            await up.stream.aclose()
            closed = await proxy.sink.wait_for(ConnectionClosed)
            assert (closed.initiator, closed.how) == ("client", "fin")
        else:
            # Silence: the session just waits; the upstream can still talk to the client.
            await up.stream.send_all(encode_frame(1, b"still here"))
            assert await read_exactly(client, 12) == encode_frame(1, b"still here")
            await proxy.relay.sessions[1].cut()
        await wait_no_sessions(proxy)
        up.done.set()
        assert_healthy(proxy)


@tiers
async def test_a_frame_header_written_one_byte_at_a_time_arrives_whole(
    nursery: trio.Nursery, start_proxy: StartProxy, tier: str
) -> None:
    frame = encode_frame(2, bytes(range(200)), mask_key=MASK)  # 16-bit length: 8-byte header
    with trio.fail_after(5):
        proxy, client, up = await relayed_pair(nursery, start_proxy, tier)
        assert up.stream is not None
        for i in range(8):
            await client.send_all(frame[i : i + 1])
            await trio.sleep(0.01)
        await client.send_all(frame[8:])
        assert await read_exactly(up.stream, len(frame)) == frame
        if tier == "full":
            seen = await proxy.sink.wait_for(FrameSeen)
            assert (seen.frame.length, seen.frame.payload) == (200, bytes(range(200)))
        await client.send_eof()
        assert await read_to_eof(up.stream) == b""
        await up.stream.aclose()
        closed = await proxy.sink.wait_for(ConnectionClosed)
        assert closed.frames["c2s"] == 1
        up.done.set()
        assert_healthy(proxy)


@tiers
async def test_thousands_of_tiny_frames_in_one_write_are_all_relayed_and_counted(
    nursery: trio.Nursery, start_proxy: StartProxy, tier: str
) -> None:
    n = 5000
    burst = encode_frame(2, b"x", mask_key=MASK) * n
    with trio.fail_after(10):
        proxy, client, up = await relayed_pair(nursery, start_proxy, tier)
        assert up.stream is not None
        await client.send_all(burst)
        await client.send_eof()
        assert await read_to_eof(up.stream) == burst
        await up.stream.aclose()
        closed = await proxy.sink.wait_for(ConnectionClosed)
        assert closed.frames["c2s"] == n
        if tier == "full":
            assert len(proxy.sink.of(FrameSeen)) == n
        up.done.set()
        assert_healthy(proxy)


@tiers
async def test_data_after_a_close_frame_is_still_relayed(
    nursery: trio.Nursery, start_proxy: StartProxy, tier: str
) -> None:
    data = encode_frame(8, b"\x03\xe8bye", mask_key=MASK) + encode_frame(1, b"late", mask_key=MASK)
    with trio.fail_after(5):
        proxy, client, up = await relayed_pair(nursery, start_proxy, tier)
        assert up.stream is not None
        await client.send_all(data + b"\xff\xfe garbage")
        assert await read_exactly(up.stream, len(data) + 10) == data + b"\xff\xfe garbage"
        if tier == "full":
            late = await proxy.sink.wait_for(FrameSeen, lambda e: e.seq == 2)
            assert "frame-after-close" in [v.rule for v in late.frame.violations]
        await client.send_eof()
        assert await read_to_eof(up.stream) == b""
        await up.stream.aclose()
        closed = await proxy.sink.wait_for(ConnectionClosed)
        assert closed.client_close == (1000, "bye")
        up.done.set()
        assert_healthy(proxy)


RST_POINTS = {
    "after-101": b"",
    "mid-header": b"\x82\xfe\x00",
    "mid-payload": encode_frame(2, b"y" * 300, mask_key=MASK)[:100],
    "after-close": encode_frame(8, b"\x03\xe8", mask_key=MASK),
}


@tiers
@pytest.mark.parametrize("point", list(RST_POINTS))
async def test_a_client_rst_at_any_point_resets_the_upstream(
    nursery: trio.Nursery, start_proxy: StartProxy, tier: str, point: str
) -> None:
    sent = RST_POINTS[point]
    with trio.fail_after(5):
        proxy, client, up = await relayed_pair(nursery, start_proxy, tier)
        assert up.stream is not None
        if sent:
            await client.send_all(sent)
            assert await read_exactly(up.stream, len(sent)) == sent
        set_rst(client)
        await client.aclose()
        with pytest.raises(trio.BrokenResourceError):
            await read_to_eof(up.stream)
        closed = await proxy.sink.wait_for(ConnectionClosed)
        assert closed.how == "rst"
        await wait_no_sessions(proxy)
        up.done.set()
        assert_healthy(proxy)


# -- upstream side -----------------------------------------------------------------------------


def _101_for(head: bytes, extra: bytes = b"", *, upgrade: bool = True) -> bytes:
    """A 101 answering ``head`` (the proxy's request): with the right Accept, ``extra`` headers,
    and without Upgrade/Connection when ``upgrade`` is false."""
    from wsinspect.wire.handshake import accept_key

    key = ""
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-key":
            key = value.strip()
    pair = b"Upgrade: websocket\r\nConnection: Upgrade\r\n" if upgrade else b""
    return (
        b"HTTP/1.1 101 Switching Protocols\r\n" + pair
        + f"Sec-WebSocket-Accept: {accept_key(key)}\r\n".encode() + extra + b"\r\n"
    )


def upstream_answering(nursery: trio.Nursery, make: Callable[[bytes], bytes], then: str = "close") -> Awaitable[str]:
    """A raw upstream that answers the proxy's request head with ``make(head)``, then closes
    (``then="close"``) or keeps the connection open and silent (``"hold"``)."""

    async def handler(stream: trio.SocketStream) -> None:
        head = await read_until(stream, b"\r\n\r\n")
        with contextlib.suppress(trio.BrokenResourceError):
            await stream.send_all(make(head))
            if then == "hold":
                await trio.sleep_forever()

    async def start() -> str:
        host, port = await start_raw_server(nursery, handler)
        return f"ws://{host}:{port}"

    return start()


async def refused_by(proxy: Proxy) -> tuple[int, str]:
    """Connect as a client; the proxy's answer as ``(status, body)``."""
    status, body = status_of(await exchange(proxy.port, upgrade_request(), eof=False))
    event = await rejected(proxy)
    assert event.status == status
    return status, body


UPSTREAM_GARBAGE = {
    "garbage": (lambda head: b"\x00\xffnot http at all\r\n\r\n", "malformed HTTP response"),
    "no-upgrade-pair": (lambda head: _101_for(head, upgrade=False), "without 'Upgrade: websocket'"),
    "huge-101-head": (
        lambda head: _101_for(
            head, b"".join(b"X-Pad-%d: %s\r\n" % (i, b"v" * 100) for i in range(2000))
        ),
        "response head is over 65536 bytes",
    ),
    "closed-at-once": (lambda head: b"", "without answering"),
}


@pytest.mark.parametrize("case", list(UPSTREAM_GARBAGE))
async def test_an_upstream_bad_handshake_answer_gets_the_client_502(
    nursery: trio.Nursery, start_proxy: StartProxy, case: str
) -> None:
    make, reason = UPSTREAM_GARBAGE[case]
    with trio.fail_after(5):
        proxy = await start_proxy(await upstream_answering(nursery, make, then="hold"))
        if case == "closed-at-once":
            proxy = await start_proxy(await upstream_answering(nursery, make))
        status, body = await refused_by(proxy)
        assert status == 502
        assert reason in body and body.count("\n") == 1
        assert proxy.relay.sessions == {}
        assert_healthy(proxy)


@pytest.mark.parametrize("then", ["hold", "drip"])
async def test_an_upstream_answer_that_never_ends_gets_504(
    nursery: trio.Nursery, start_proxy: StartProxy, then: str
) -> None:
    async def handler(stream: trio.SocketStream) -> None:
        await read_until(stream, b"\r\n\r\n")
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            if then == "hold":  # accepts TCP and never answers
                await trio.sleep_forever()
            await stream.send_all(b"HTTP/1.1 101 Switching Protocols\r\nX-Slow: ")
            for _ in range(1000):  # a head that never ends
                await stream.send_all(b"a")
                await trio.sleep(0.02)

    with trio.fail_after(5):
        host, port = await start_raw_server(nursery, handler)
        proxy = await start_proxy(f"ws://{host}:{port}", handshake_timeout=0.5)
        status, body = await refused_by(proxy)
        assert status == 504
        assert "did not answer the handshake within 0.5 s" in body
        assert_healthy(proxy)


async def test_an_endless_refusal_body_is_relayed_up_to_the_limit(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    async def handler(stream: trio.SocketStream) -> None:
        await read_until(stream, b"\r\n\r\n")
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n\r\n")
            while True:  # no length, never ends
                await stream.send_all(b"z" * 4096)

    with trio.fail_after(5):
        host, port = await start_raw_server(nursery, handler)
        proxy = await start_proxy(f"ws://{host}:{port}")
        status, body = await refused_by(proxy)
        assert status == 403
        assert 0 < len(body) <= 64 * 1024 and set(body) == {"z"}
        assert_healthy(proxy)


@pytest.mark.parametrize("informational", [b"100 Continue", b"103 Early Hints\r\nLink: </a>; rel=preload"])
async def test_a_1xx_before_the_101_is_skipped(
    nursery: trio.Nursery, start_proxy: StartProxy, informational: bytes
) -> None:
    async def handler(stream: trio.SocketStream) -> None:
        head = await read_until(stream, b"\r\n\r\n")
        await stream.send_all(b"HTTP/1.1 " + informational + b"\r\n\r\n" + _101_for(head))
        with contextlib.suppress(trio.BrokenResourceError):
            while data := await stream.receive_some(4096):
                await stream.send_all(data[:2] + data[6:])  # echo, unmasked (toy server)

    with trio.fail_after(5):
        host, port = await start_raw_server(nursery, handler)
        proxy = await start_proxy(f"ws://{host}:{port}")
        client, head, _ = await raw_client(proxy.port)
        assert head.startswith(b"HTTP/1.1 101")
        assert await proxy.sink.wait_for(ConnectionOpened)
        await client.aclose()
        await wait_no_sessions(proxy)
        assert_healthy(proxy)


@tiers
async def test_an_upstream_closing_right_after_the_101_ends_the_client(
    nursery: trio.Nursery, start_proxy: StartProxy, tier: str
) -> None:
    with trio.fail_after(5):
        proxy = await start_proxy(await upstream_answering(nursery, _101_for), **TIERS[tier])
        client, head, rest = await raw_client(proxy.port)
        assert head.startswith(b"HTTP/1.1 101")
        assert rest + await read_to_eof(client) == b""
        await client.aclose()
        closed = await proxy.sink.wait_for(ConnectionClosed)
        assert (closed.initiator, closed.how) == ("upstream", "fin")
        await wait_no_sessions(proxy)
        assert_healthy(proxy)


@tiers
async def test_frames_sent_with_the_101_then_a_close_reach_the_client(
    nursery: trio.Nursery, start_proxy: StartProxy, tier: str
) -> None:
    frames = encode_frame(1, b"welcome") + encode_frame(8, b"\x03\xe9gone")
    with trio.fail_after(5):
        url = await upstream_answering(nursery, lambda head: _101_for(head) + frames)
        proxy = await start_proxy(url, **TIERS[tier])
        client, head, rest = await raw_client(proxy.port)
        assert head.startswith(b"HTTP/1.1 101")
        assert rest + await read_to_eof(client) == frames
        await client.aclose()
        closed = await proxy.sink.wait_for(ConnectionClosed)
        assert (closed.initiator, closed.upstream_close) == ("upstream", (1001, "gone"))
        assert closed.frames["s2c"] == 2
        assert_healthy(proxy)


@tiers
async def test_masked_frames_and_garbage_from_the_upstream_are_relayed_as_sent(
    nursery: trio.Nursery, start_proxy: StartProxy, tier: str
) -> None:
    masked = encode_frame(1, b"masked!", mask_key=MASK)
    garbage = b"\x7f\x00\xff" * 50
    with trio.fail_after(5):
        proxy, client, up = await relayed_pair(nursery, start_proxy, tier)
        assert up.stream is not None
        await up.stream.send_all(masked + garbage)
        assert await read_exactly(client, len(masked) + len(garbage)) == masked + garbage
        if tier == "full":
            seen = await proxy.sink.wait_for(FrameSeen)
            assert "masked-server-frame" in [v.rule for v in seen.frame.violations]
        await up.stream.aclose()
        assert await read_to_eof(client) == b""
        await client.aclose()
        closed = await proxy.sink.wait_for(ConnectionClosed)
        assert (closed.initiator, closed.how) == ("upstream", "fin")
        up.done.set()
        assert_healthy(proxy)


# -- isolation and resource hygiene ------------------------------------------------------------


async def slowloris(port: int) -> None:
    """A client that drips an endless header, one byte every 50 ms."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await stream.send_all(b"GET / HTTP/1.1\r\nX-Slow: ")
        for _ in range(1000):
            await stream.send_all(b"a")
            await trio.sleep(0.05)
    await stream.aclose()


async def flooder(port: int) -> None:
    """A client that floods tiny frames and never reads (the upstream's echoes pile up)."""
    client, head, _ = await raw_client(port)
    assert head.startswith(b"HTTP/1.1 101")
    burst = encode_frame(2, b"f" * 16, mask_key=MASK) * 1000
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        for _ in range(10_000):
            await client.send_all(burst)
    await client.aclose()


async def stalled_frame(port: int) -> None:
    """A client that declares a 2^63-1 byte frame, sends a little of it, then goes silent."""
    client, head, _ = await raw_client(port)
    assert head.startswith(b"HTTP/1.1 101")
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await client.send_all(b"\x82\xff" + struct.pack("!Q", (1 << 63) - 1) + MASK + b"x" * 100)
        await trio.sleep_forever()


@tiers
async def test_a_well_behaved_client_is_served_while_hostile_ones_are_handled(
    nursery: trio.Nursery, start_proxy: StartProxy, tier: str
) -> None:
    with trio.fail_after(10):
        proxy = await start_proxy(
            await start_ws_server(nursery, echo, max_size=None), **TIERS[tier]
        )
        async with trio.open_nursery() as hostile:
            for _ in range(5):
                hostile.start_soon(slowloris, proxy.port)
            hostile.start_soon(flooder, proxy.port)
            hostile.start_soon(stalled_frame, proxy.port)
            await trio.sleep(0.2)  # let them get going (not a synchronisation: any point will do)
            with trio.fail_after(3):  # generous: a normal exchange takes milliseconds
                async with connect(proxy.url(), proxy=None) as ws:
                    for i in range(50):
                        await ws.send(f"message {i}")
                        assert await ws.recv() == f"message {i}"
            hostile.cancel_scope.cancel()
        await wait_no_sessions(proxy)
        assert_healthy(proxy)


class FrameCounter:
    """A sink that wants every frame (so the full tier runs) and keeps only notices."""

    def __init__(self) -> None:
        self.frames = 0
        self.notices: list[Notice] = []
        self.flooding = trio.Event()  # set once 10,000 frames were seen

    def publish(self, event: object) -> None:
        if isinstance(event, FrameSeen):
            self.frames += 1
            if self.frames == 10_000:
                self.flooding.set()
        elif isinstance(event, Notice):
            self.notices.append(event)


async def test_a_flood_of_tiny_frames_does_not_stall_another_connection(
    nursery: trio.Nursery,
) -> None:
    # Full inspection costs Python work per frame: a MiB of 1-byte frames is ~150,000 events.
    hub = Hub()
    sink = FrameCounter()
    hub.subscribe(sink, frames=True, messages=True)

    async def discard(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        with contextlib.suppress(trio.BrokenResourceError):
            while await stream.receive_some(1 << 20):
                pass

    async def start(url: str) -> Proxy:
        settings = Settings(listen_port=0, upstream=Upstream.parse(url))
        return Proxy(await nursery.start(serve_proxy, settings, hub), Collector())

    flooded = await start(await start_raw_ws_server(nursery, discard))
    normal = await start(await start_ws_server(nursery, echo))
    burst = encode_frame(2, b"x", mask_key=MASK) * 150_000
    async with trio.open_nursery() as flood:

        async def flooder() -> None:
            client, _, _ = await raw_client(flooded.port)
            for _ in range(100):
                await client.send_all(burst)

        flood.start_soon(flooder)
        await sink.flooding.wait()
        with trio.fail_after(3):  # generous: unflooded, this takes milliseconds
            async with connect(normal.url(), proxy=None) as ws:
                for i in range(10):
                    await ws.send(f"message {i}")
                    assert await ws.recv() == f"message {i}"
        flood.cancel_scope.cancel()
    assert [n.text for n in sink.notices if n.level == "error"] == []


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _normal_exchange(proxy: Proxy) -> None:
    async with connect(proxy.url(), proxy=None) as ws:
        await ws.send("normal")
        assert await ws.recv() == "normal"


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
@tiers
async def test_after_hostile_connections_no_session_or_descriptor_is_left(
    nursery: trio.Nursery, start_proxy: StartProxy, tier: str
) -> None:
    with trio.fail_after(10):
        proxy = await start_proxy(
            await start_ws_server(nursery, echo, max_size=None),
            handshake_timeout=0.5,
            **TIERS[tier],
        )
        await _normal_exchange(proxy)  # warm up: anything allocated once is allocated now
        await wait_no_sessions(proxy)
        baseline = open_fds()

        for garbage in (b"\x16\x03\x01\x00\xf8", b"GET / HTTP/1.1\r\n", upgrade_request(extra="X: \x00\r\n")):
            await exchange(proxy.port, garbage)
        for rst_after in (b"GET /", upgrade_request()):
            stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
            await stream.send_all(rst_after)
            if rst_after.endswith(b"\r\n\r\n"):
                await read_until(stream, b"\r\n\r\n")
            set_rst(stream)
            await stream.aclose()
        # A big frame cut by an RST mid-payload (the light tier splices long payloads).
        client, _, _ = await raw_client(proxy.port)
        await client.send_all(encode_frame(2, b"b" * 300_000, mask_key=MASK)[:200_000])
        set_rst(client)
        await client.aclose()
        with trio.move_on_after(0.05):
            await slowloris(proxy.port)  # cut short by the test itself
        await slowloris(proxy.port)  # dropped by the proxy at the handshake timeout

        await wait_no_sessions(proxy)
        await _normal_exchange(proxy)
        await wait_no_sessions(proxy)
        # The proxy closes its side of a finished connection before it forgets the session;
        # a little slack for descriptors the runtime opens on its own.
        assert open_fds() <= baseline + 2
        assert_healthy(proxy)


class HeldUpstream:
    """A raw upstream that reads the proxy's request and answers its 101 only when told."""

    def __init__(self) -> None:
        self.asked = trio.Event()
        self.answer = trio.Event()
        self.after: bytes | None = None  # what it read after its 101, to EOF
        self.ended = trio.Event()

    async def handler(self, stream: trio.SocketStream) -> None:
        head = await read_until(stream, b"\r\n\r\n")
        self.asked.set()
        await self.answer.wait()
        try:
            await stream.send_all(_101_for(head))
            self.after = await read_to_eof(stream)
        except trio.BrokenResourceError:
            self.after = None
        finally:
            self.ended.set()


@pytest.mark.parametrize("rst", [False, True], ids=["fin", "rst"])
async def test_a_client_leaving_while_the_upstream_handshake_runs_ends_both_sides(
    nursery: trio.Nursery, start_proxy: StartProxy, rst: bool
) -> None:
    with trio.fail_after(5):
        up = HeldUpstream()
        host, port = await start_raw_server(nursery, up.handler)
        proxy = await start_proxy(f"ws://{host}:{port}")
        client = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        await client.send_all(upgrade_request())
        await up.asked.wait()
        if rst:
            set_rst(client)
            await client.aclose()
        else:
            await client.send_eof()
        up.answer.set()
        await up.ended.wait()  # the upstream was not left hanging
        if not rst:
            assert up.after == b""  # the client's FIN, relayed after the 101
            closed = await proxy.sink.wait_for(ConnectionClosed)
            assert (closed.initiator, closed.how) == ("client", "fin")
            await client.aclose()
        else:
            # Either the 101 could not be sent (refused, logged) or the session saw the RST.
            ending = (HandshakeRejected, ConnectionClosed)
            logged = await proxy.sink.wait_for(object, lambda e: isinstance(e, ending))
            assert getattr(logged, "how", None) == "rst" or logged.status == 101
        await wait_no_sessions(proxy)
        assert_healthy(proxy)


# -- the TLS listener (--cert/--key) ----------------------------------------------------------


@pytest.fixture
def server_cert(tmp_path: Any) -> dict[str, str]:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    return {"cert": str(tmp_path / "cert.pem"), "key": str(tmp_path / "key.pem")}


@pytest.mark.parametrize(
    "data",
    [upgrade_request(), b"\x16\x03\x01\x00\x05hello", b""],
    ids=["plain-http", "bad-tls", "nothing"],
)
async def test_a_tls_listener_drops_non_tls_input_without_error(
    nursery: trio.Nursery, start_proxy: StartProxy, server_cert: dict[str, str], data: bytes
) -> None:
    with trio.fail_after(5):
        proxy = await start_proxy(await start_ws_server(nursery, echo), handshake_timeout=0.5, **server_cert)
        stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        with contextlib.suppress(trio.BrokenResourceError):
            if data:
                await stream.send_all(data)
            # No TLS answer a plain client could mistake for HTTP; the connection just ends.
            answer = await read_to_eof(stream)
            assert not answer.startswith(b"HTTP/")
        await stream.aclose()
        # Only silence is logged (408 at the handshake timeout); bad TLS is not a request.
        assert [e.status for e in proxy.sink.of(HandshakeRejected)] == ([] if data else [408])
        assert_healthy(proxy)


async def test_a_stalled_tls_handshake_is_dropped_at_the_handshake_timeout(
    nursery: trio.Nursery, start_proxy: StartProxy, server_cert: dict[str, str]
) -> None:
    with trio.fail_after(5):
        proxy = await start_proxy(await start_ws_server(nursery, echo), handshake_timeout=0.3, **server_cert)
        stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        await stream.send_all(b"\x16\x03\x01")  # the start of a record, then silence
        with contextlib.suppress(trio.BrokenResourceError):
            await read_to_eof(stream)
        await stream.aclose()
        assert_healthy(proxy)


async def test_an_upstream_reset_during_the_handshake_gets_502(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    async def handler(stream: trio.SocketStream) -> None:
        await read_until(stream, b"\r\n\r\n")
        set_rst(stream)
        await stream.aclose()

    with trio.fail_after(5):
        host, port = await start_raw_server(nursery, handler)
        proxy = await start_proxy(f"ws://{host}:{port}")
        status, body = await refused_by(proxy)
        assert status == 502
        assert body.startswith("upstream connection failed during the handshake")
        assert_healthy(proxy)


@st.composite
def frame_streams(draw: st.DrawFn, masked: bool) -> bytes:
    """Well-formed WebSocket traffic as a peer may send it: text and binary messages, some
    fragmented, with pings and pongs between fragments, any RSV bits on a first frame, fresh
    mask keys from the client (none from the server), and length encodings of every size."""
    out = []
    for _ in range(draw(st.integers(1, 12))):
        opcode = draw(st.sampled_from([1, 2]))
        pieces = draw(st.lists(st.binary(max_size=300), min_size=1, max_size=4))
        if opcode == 1:
            pieces = [p.hex().encode() for p in pieces]  # valid UTF-8
        for i, piece in enumerate(pieces):
            key = draw(st.binary(min_size=4, max_size=4)) if masked else None
            first = i == 0
            out.append(encode_frame(opcode if first else 0, piece, fin=i == len(pieces) - 1,
                                    rsv1=first and draw(st.booleans()), mask_key=key))
            if draw(st.integers(0, 4)) == 0:  # a control frame between fragments (§5.4)
                key = draw(st.binary(min_size=4, max_size=4)) if masked else None
                out.append(encode_frame(draw(st.sampled_from([9, 10])),
                                        draw(st.binary(max_size=125)), mask_key=key))
    return b"".join(out)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), from_upstream=st.booleans())
async def test_frame_streams_pass_byte_exact_with_breakpoints_faults_and_scripts_armed(
    data: st.DataObject, from_upstream: bool
) -> None:
    """What the peers send reaches the other side unchanged, however it is cut into reads,
    while breakpoints, faults and scripts are in the path and act on none of it."""
    stream = data.draw(frame_streams(masked=not from_upstream))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    async with trio.open_nursery() as nursery:
        with trio.fail_after(10):
            up = RawUpstream()
            proxy = await start_in(nursery, await start_raw_ws_server(nursery, up.handler),
                                   **ARMED_IDLE)
            client, head, _ = await raw_client(proxy.port)
            assert head.startswith(b"HTTP/1.1 101")
            await up.ready.wait()
            assert up.stream is not None
            sender, receiver = (up.stream, client) if from_upstream else (client, up.stream)
            for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
                if b > a:
                    await sender.send_all(stream[a:b])
            assert await read_exactly(receiver, len(stream)) == stream
            assert not proxy.sink.of(MessageAction)
            up.done.set()
            assert_healthy(proxy)
        nursery.cancel_scope.cancel()
