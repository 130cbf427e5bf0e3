"""Plain HTTP requests pass through to the upstream (one line each), or get 400 when refused."""

from __future__ import annotations

import h11
import pytest
import trio
from relay_helpers import (
    StartProxy,
    echo,
    read_exactly,
    read_to_eof,
    read_until,
    start_keep_alive_http_server,
    start_raw_server,
    start_ws_server,
    upgrade_request,
)
from websockets.trio.client import connect

from wsinspect.events import ConnectionOpened, HttpExchange

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


async def read_response(stream: trio.abc.Stream, method: str = "GET") -> tuple[h11.Response, bytes]:
    """One response as a client reads it (the connection may stay open after it)."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=method, target="/", headers=[("Host", "x"), ("Content-Length", "0")]))
    conn.send(h11.EndOfMessage())
    response = None
    body = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            assert response is not None
            return response, body


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
        response, body = await read_response(stream, "POST")
        assert response.status_code == 200
        assert (b"x-up", b"yes") in list(response.headers)
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


async def test_requests_on_one_connection_are_answered_in_turn_over_one_upstream_connection(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    connections: list[int] = []
    with trio.fail_after(10):
        proxy = await start_proxy(f"ws://127.0.0.1:{await start_keep_alive_http_server(nursery, connections)}")
        stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        # Two requests pipelined in one write, then a third after their answers.
        await stream.send_all(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await read_until(stream, b"page /two")
        assert data.count(b"HTTP/1.1 200 ") == 2 and data.index(b"page /one") < data.index(b"page /two")
        await stream.send_all(b"GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        rest = await read_to_eof(stream)  # the client said close: the proxy closes after it
        assert rest.startswith(b"HTTP/1.1 200 ") and rest.endswith(b"page /three")
        await proxy.sink.wait_for(HttpExchange, lambda e: e.path == "/three")
        assert [e.path for e in proxy.sink.of(HttpExchange)] == ["/one", "/two", "/three"]
        assert len(connections) == 1


async def test_an_idle_kept_alive_upstream_connection_that_closed_is_replaced(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    connections: list[int] = []

    async def handler(stream: trio.SocketStream) -> None:  # answers one request, then hangs up
        connections.append(1)
        conn = h11.Connection(h11.SERVER)
        while not isinstance(event := conn.next_event(), h11.EndOfMessage):
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
        await stream.send_all(conn.send(h11.Response(status_code=204, headers=[])) or b"")
        await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
        await stream.aclose()

    with trio.fail_after(10):
        host, port = await start_raw_server(nursery, handler)
        proxy = await start_proxy(f"ws://{host}:{port}")
        stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        for _ in range(2):
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await read_until(stream, b"\r\n\r\n")).startswith(b"HTTP/1.1 204 ")
            await trio.sleep(0.05)  # the upstream's FIN arrives while the connection is idle
        assert len(connections) == 2


async def test_a_websocket_can_follow_plain_requests_on_the_same_connection(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        proxy = await start_proxy(await start_ws_server(nursery, echo, compression=None))
        stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        await stream.send_all(b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _, body = (await read_until(stream, b"\r\n\r\n")).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 426 ")  # websockets' answer to a plain GET
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await read_exactly(stream, length - len(body))
        await stream.send_all(upgrade_request("/after"))
        assert (await read_until(stream, b"\r\n\r\n")).startswith(b"HTTP/1.1 101 ")
        opened = await proxy.sink.wait_for(ConnectionOpened)
        assert opened.path == "/after"
        assert opened.conn == proxy.sink.of(HttpExchange)[0].conn


async def test_garbage_pipelined_after_a_request_gets_its_answer_then_400(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    with trio.fail_after(10):
        proxy = await start_proxy(f"ws://127.0.0.1:{await start_keep_alive_http_server(nursery, [])}")
        stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
        await stream.send_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01 not http\r\n\r\n")
        answer = await read_to_eof(stream)
        assert answer.startswith(b"HTTP/1.1 200 ") and b"page /ok" in answer
        assert b"HTTP/1.1 400 " in answer
