"""Both handshakes: the client's request validated (RFC 6455 §4.2.1), the upstream's done first."""

from __future__ import annotations

import socket

import pytest
import trio
from relay_helpers import (
    KEY,
    StartProxy,
    echo,
    raw_client,
    read_to_eof,
    read_until,
    start_raw_server,
    start_raw_ws_server,
    start_ws_server,
    upgrade_request,
)
from websockets.trio.client import connect

from wsinspect.events import ConnectionOpened, HandshakeRejected
from wsinspect.wire.handshake import accept_key

pytestmark = pytest.mark.trio


async def _ask(port: int, request: bytes) -> bytes:
    """Send ``request`` to the proxy and return its whole answer."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(request)
    try:
        return await read_to_eof(stream)
    finally:
        await stream.aclose()


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


async def _unused_upstream(nursery: trio.Nursery) -> str:
    return await start_ws_server(nursery, echo)


@pytest.mark.parametrize(
    ("request_bytes", "status", "reason"),
    [
        (upgrade_request().replace(b"GET", b"POST", 1), 400, b"must use GET"),
        (upgrade_request().replace(f"Sec-WebSocket-Key: {KEY}\r\n".encode(), b""), 400, b"missing Sec-WebSocket-Key"),
        (upgrade_request(key="c2hvcnQ="), 400, b"invalid Sec-WebSocket-Key"),
        (upgrade_request().replace(b"Connection: Upgrade", b"Connection: keep-alive"), 400, b"Connection"),
        (b"GARBAGE\r\n\r\n", 400, b"malformed"),
        (upgrade_request().replace(b"Version: 13", b"Version: 8"), 426, b"Sec-WebSocket-Version"),
    ],
    ids=["post", "no-key", "short-key", "no-connection-upgrade", "garbage", "version-8"],
)
async def test_bad_upgrade_requests_get_the_right_status(
    nursery: trio.Nursery, start_proxy: StartProxy, request_bytes: bytes, status: int, reason: bytes
) -> None:
    with trio.fail_after(10):
        proxy = await start_proxy(await _unused_upstream(nursery))
        answer = await _ask(proxy.port, request_bytes)
        assert _status(answer) == status
        assert reason in answer.partition(b"\r\n\r\n")[2]
        event = await proxy.sink.wait_for(HandshakeRejected)
        assert event.status == status and event.by == "proxy"


async def test_version_426_names_the_supported_version(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        proxy = await start_proxy(await _unused_upstream(nursery))
        answer = await _ask(proxy.port, upgrade_request().replace(b"Version: 13", b"Version: 8"))
        assert b"\r\nSec-WebSocket-Version: 13\r\n" in answer


async def test_oversized_headers_get_431(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    with trio.fail_after(10):
        proxy = await start_proxy(await _unused_upstream(nursery), max_header_size=4096)
        answer = await _ask(proxy.port, upgrade_request(extra="X-Big: " + "a" * 8000 + "\r\n"))
        assert _status(answer) == 431


async def test_a_silent_client_is_dropped_after_the_timeout_without_blocking_others(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo, compression=None)
        proxy = await start_proxy(upstream, handshake_timeout=0.5)
        silent = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        # Meanwhile another client is served at once.
        async with connect(proxy.url(), proxy=None, compression=None) as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
        start = trio.current_time()
        answer = await read_to_eof(silent)  # the proxy ends it
        assert trio.current_time() - start < 2
        assert answer == b"" or _status(answer) == 408
        event = await proxy.sink.wait_for(HandshakeRejected)
        assert event.status == 408


async def test_upstream_refused_gives_502_promptly(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    with trio.fail_after(5):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()  # nothing listens there now
        proxy = await start_proxy(f"ws://127.0.0.1:{port}")
        answer = await _ask(proxy.port, upgrade_request())
        assert _status(answer) == 502
        assert b"cannot connect" in answer
        event = await proxy.sink.wait_for(HandshakeRejected)
        assert event.status == 502


async def test_upstream_dns_failure_gives_502(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    with trio.fail_after(10):
        proxy = await start_proxy("ws://no-such-host.invalid:9")
        answer = await _ask(proxy.port, upgrade_request())
        assert _status(answer) == 502


async def test_silent_upstream_gives_504(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    with trio.fail_after(10):
        host, port = await start_raw_server(nursery, silent)
        proxy = await start_proxy(f"ws://{host}:{port}", handshake_timeout=0.3)
        answer = await _ask(proxy.port, upgrade_request())
        assert _status(answer) == 504
        assert (await proxy.sink.wait_for(HandshakeRejected)).status == 504


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 12\r\n\r\nlog in first",
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nno socket",
        b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbusy\r\n0\r\n\r\n",
    ],
    ids=["401", "404", "302", "503-chunked"],
)
async def test_upstream_refusals_are_relayed_as_is(
    nursery: trio.Nursery, start_proxy: StartProxy, response: bytes
) -> None:
    async def refuse(stream: trio.SocketStream) -> None:
        await read_until(stream, b"\r\n\r\n")
        await stream.send_all(response)
        await stream.aclose()

    with trio.fail_after(10):
        host, port = await start_raw_server(nursery, refuse)
        proxy = await start_proxy(f"ws://{host}:{port}")
        answer = await _ask(proxy.port, upgrade_request())
        status_line = response.split(b"\r\n", 1)[0]
        assert answer.split(b"\r\n", 1)[0] == status_line
        head, _, body = answer.partition(b"\r\n\r\n")
        for line in response.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
            if not line.lower().startswith((b"content-length", b"transfer-encoding")):
                assert line in head.split(b"\r\n")
        expected_body = {b"401": b"log in first", b"404": b"no socket", b"302": b"", b"503": b"busy"}
        assert body == expected_body[status_line.split(b" ")[1]]
        event = await proxy.sink.wait_for(HandshakeRejected)
        assert event.by == "upstream" and event.status == _status(response)


async def test_upstream_101_with_a_wrong_accept_gives_502(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    async def wrong(stream: trio.SocketStream) -> None:
        await read_until(stream, b"\r\n\r\n")
        await stream.send_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(KEY).encode() + b"\r\n\r\n"
        )  # the accept for the *client's* key, not for the proxy's fresh one
        await trio.sleep_forever()

    with trio.fail_after(10):
        host, port = await start_raw_server(nursery, wrong)
        proxy = await start_proxy(f"ws://{host}:{port}")
        answer = await _ask(proxy.port, upgrade_request())
        assert _status(answer) == 502
        assert b"Sec-WebSocket-Accept" in answer


async def test_client_headers_reach_upstream_in_order_with_host_and_path_prefix(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    heads: list[bytes] = []

    async def server(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        heads.append(head)
        await trio.sleep_forever()

    with trio.fail_after(10):
        upstream = await start_raw_ws_server(nursery, server)
        proxy = await start_proxy(upstream + "/base")
        extra = (
            "Cookie: session=abc\r\nAuthorization: Bearer t0k3n\r\nOrigin: http://app.test\r\n"
            "User-Agent: test-agent/1.0\r\nX-Custom: one\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
            "Sec-WebSocket-Extensions: x-custom-ext; a=1\r\nX-Custom: two\r\n"
        )
        stream, head, _ = await raw_client(proxy.port, "/chat?room=1&x=%20", extra)
        assert head.startswith(b"HTTP/1.1 101")
        lines = heads[0].decode().split("\r\n")
        assert lines[0] == "GET /base/chat?room=1&x=%20 HTTP/1.1"
        upstream_port = upstream.rsplit(":", 1)[1]
        assert lines[1] == f"Host: 127.0.0.1:{upstream_port}"
        end_to_end = [line for line in lines[1:] if line.split(":")[0] in (
            "Cookie", "Authorization", "Origin", "User-Agent", "X-Custom",
            "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions")]
        assert end_to_end == extra.strip().split("\r\n")
        key_line = next(line for line in lines if line.startswith("Sec-WebSocket-Key"))
        assert KEY not in key_line  # a fresh key upstream
        await stream.aclose()


async def test_upstream_101_headers_reach_the_client_with_its_own_accept(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    async def server(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        await trio.sleep_forever()

    with trio.fail_after(10):
        upstream = await start_raw_ws_server(
            nursery, server, "Sec-WebSocket-Protocol: chat\r\nSet-Cookie: id=42; HttpOnly\r\nX-Server: up\r\n"
        )
        proxy = await start_proxy(upstream)
        stream, head, _ = await raw_client(proxy.port, extra="Sec-WebSocket-Protocol: chat\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0] == "HTTP/1.1 101 Switching Protocols"
        assert f"Sec-WebSocket-Accept: {accept_key(KEY)}" in lines
        assert lines[-3:] == ["Sec-WebSocket-Protocol: chat", "Set-Cookie: id=42; HttpOnly", "X-Server: up"]
        opened = await proxy.sink.wait_for(ConnectionOpened)
        assert opened.subprotocol == "chat"
        await stream.aclose()


async def test_subprotocol_negotiation_works_with_a_real_client_and_server(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        upstream = await start_ws_server(nursery, echo, subprotocols=["v2.chat"], compression=None)
        proxy = await start_proxy(upstream)
        async with connect(proxy.url(), proxy=None, subprotocols=["v1.chat", "v2.chat"],
                           compression=None) as ws:
            assert ws.subprotocol == "v2.chat"


async def test_no_compression_removes_the_deflate_offer_and_says_so(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    from wsinspect.events import Notice

    heads: list[bytes] = []

    async def server(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        heads.append(head)
        await trio.sleep_forever()

    with trio.fail_after(10):
        proxy = await start_proxy(await start_raw_ws_server(nursery, server), no_compression=True)
        stream, _head, _ = await raw_client(
            proxy.port, extra="Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-other\r\n"
        )
        assert b"Sec-WebSocket-Extensions: x-other\r\n" in heads[0] + b"\r\n"
        assert b"permessage-deflate" not in heads[0]
        notice = await proxy.sink.wait_for(Notice, lambda n: "no-compression" in n.text)
        assert notice.conn == 1
        await stream.aclose()
