"""Plain HTTP requests pass through to the upstream (one line each), or get 400 when refused."""

from __future__ import annotations

import h11
import pytest
import trio
from relay_helpers import StartProxy, echo, read_to_eof, start_raw_server, start_ws_server
from websockets.trio.client import connect

from wsinspect.events import HttpExchange

pytestmark = pytest.mark.trio


async def _http_server(nursery: trio.Nursery, seen: list[h11.Request], bodies: list[bytes]) -> str:
    """An h11 server answering every request with a chunked body naming its path."""

    async def handler(stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        body = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Request):
                seen.append(event)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        bodies.append(body)
        request = seen[-1]
        await stream.send_all(conn.send(h11.Response(status_code=200, headers=[
            ("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked"), ("X-Up", "yes")])))
        for part in (b"page for ", request.target):
            await stream.send_all(conn.send(h11.Data(data=part)))
        await stream.send_all(conn.send(h11.EndOfMessage()))
        await stream.aclose()

    host, port = await start_raw_server(nursery, handler)
    return f"ws://{host}:{port}"


async def test_plain_http_is_passed_through_and_logged(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    seen: list[h11.Request] = []
    bodies: list[bytes] = []
    with trio.fail_after(10):
        upstream = await _http_server(nursery, seen, bodies)
        proxy = await start_proxy(upstream + "/app")
        stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        await stream.send_all(
            b"POST /api/items?x=1 HTTP/1.1\r\nHost: proxy.test\r\nContent-Length: 5\r\n"
            b"Cookie: a=b\r\n\r\nhello"
        )
        answer = await read_to_eof(stream)
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
        conn.send(h11.EndOfMessage())
        conn.receive_data(answer)
        conn.receive_data(b"")
        response = conn.next_event()
        assert isinstance(response, h11.Response) and response.status_code == 200
        assert (b"x-up", b"yes") in list(response.headers)
        body = b""
        while isinstance(event := conn.next_event(), h11.Data):
            body += event.data
        assert body == b"page for /app/api/items?x=1"
        assert seen[0].target == b"/app/api/items?x=1"
        assert dict(seen[0].headers)[b"host"] == upstream.split("//")[1].encode()
        assert dict(seen[0].headers)[b"cookie"] == b"a=b"
        assert bodies == [b"hello"]
        event = await proxy.sink.wait_for(HttpExchange)
        assert (event.method, event.path, event.status) == ("POST", "/api/items?x=1", 200)
        assert event.size == len(body)


async def test_websocket_only_answers_plain_http_400(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    seen: list[h11.Request] = []
    with trio.fail_after(10):
        upstream = await _http_server(nursery, seen, [])
        proxy = await start_proxy(upstream, websocket_only=True)
        stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        await stream.send_all(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await read_to_eof(stream)
        assert answer.startswith(b"HTTP/1.1 400 ")
        assert b"--websocket-only" in answer
        assert seen == []  # the upstream never saw it
        assert (await proxy.sink.wait_for(HttpExchange)).status == 400


async def test_connect_is_refused_405_and_never_reaches_the_upstream(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    seen: list[h11.Request] = []
    with trio.fail_after(10):
        upstream = await _http_server(nursery, seen, [])
        proxy = await start_proxy(upstream)
        stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        await stream.send_all(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        answer = await read_to_eof(stream)
        assert answer.startswith(b"HTTP/1.1 405 ")
        assert b"\r\nAllow: GET" in answer and b"not a forward proxy" in answer
        assert seen == []
        exchange = await proxy.sink.wait_for(HttpExchange)
        assert (exchange.method, exchange.status) == ("CONNECT", 405)


async def test_websockets_still_pass_with_websocket_only(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    with trio.fail_after(10):
        proxy = await start_proxy(await start_ws_server(nursery, echo, compression=None),
                                  websocket_only=True)
        async with connect(proxy.url(), proxy=None, compression=None) as ws:
            await ws.send("ok")
            assert await ws.recv() == "ok"


async def test_plain_http_to_an_unreachable_upstream_gets_502(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with trio.fail_after(10):
        proxy = await start_proxy(f"ws://127.0.0.1:{port}")
        stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await read_to_eof(stream)).startswith(b"HTTP/1.1 502 ")
        assert (await proxy.sink.wait_for(HttpExchange)).status == 502
