"""Helpers for relay tests: a collecting sink, loopback peers, raw WebSocket ends."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Awaitable, Callable

import h11
import trio

# Shared with the fault tests (tests/loopback.py), re-exported for the relay tests.
from loopback import Collector as Collector
from loopback import Proxy as Proxy
from loopback import StartProxy as StartProxy
from loopback import echo as echo
from loopback import start_ws_server as start_ws_server

RawHandler = Callable[[trio.SocketStream], Awaitable[None]]


async def start_raw_server(nursery: trio.Nursery, handler: RawHandler) -> tuple[str, int]:
    """A raw TCP server running ``handler(stream)`` per connection; returns ``(host, port)``."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    nursery.start_soon(trio.serve_listeners, handler, listeners)
    return "127.0.0.1", port


async def start_keep_alive_http_server(
    nursery: trio.Nursery, connections: list[int], tls: ssl.SSLContext | None = None
) -> int:
    """An HTTP/1.1 server (over TLS with ``tls``) that keeps every connection alive and answers
    each request with ``page TARGET``; ``connections`` counts the connections it accepted.
    Returns its port on 127.0.0.1."""

    async def handler(stream: trio.abc.Stream) -> None:
        if tls is not None:
            stream = trio.SSLStream(stream, tls, server_side=True)
        connections.append(1)
        conn = h11.Connection(h11.SERVER)
        target = b""
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some(65536))
                elif isinstance(event, h11.Request):
                    target = event.target
                elif isinstance(event, h11.EndOfMessage):
                    body = b"page " + target
                    await stream.send_all(conn.send(h11.Response(
                        status_code=200, headers=[("Content-Length", str(len(body)))])) or b"")
                    await stream.send_all(conn.send(h11.Data(data=body)) or b"")
                    await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
                    conn.start_next_cycle()
                else:  # the client closed
                    return
        except (trio.BrokenResourceError, h11.ProtocolError):
            return

    _host, port = await start_raw_server(nursery, handler)  # type: ignore[arg-type]
    return port


async def read_until(stream: trio.abc.ReceiveStream, marker: bytes, limit: int = 1 << 20) -> bytes:
    """Bytes from ``stream`` up to and including ``marker`` (an HTTP head)."""
    data = b""
    while marker not in data:
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        data += chunk
        assert len(data) < limit
    return data


async def read_exactly(stream: trio.abc.ReceiveStream, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = await stream.receive_some(n - len(data))
        if not chunk:
            raise EOFError(f"EOF after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)


async def read_to_eof(stream: trio.abc.ReceiveStream) -> bytes:
    data = bytearray()
    while chunk := await stream.receive_some(65536):
        data += chunk
    return bytes(data)


def set_rst(stream: trio.SocketStream) -> None:
    """Make the next close of ``stream`` send an RST (SO_LINGER 0)."""
    import struct

    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def upgrade_request(path: str = "/", host: str = "127.0.0.1", extra: str = "",
                    key: str = KEY) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


async def raw_client(port: int, path: str = "/", extra: str = "") -> tuple[trio.SocketStream, bytes, bytes]:
    """Connect and upgrade by hand: ``(stream, response head, bytes after the head)``."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(upgrade_request(path, extra=extra))
    data = await read_until(stream, b"\r\n\r\n")
    head, _, rest = data.partition(b"\r\n\r\n")
    return stream, head, rest


RawWsHandler = Callable[[trio.SocketStream, bytes, bytes], Awaitable[None]]


async def start_raw_ws_server(nursery: trio.Nursery, handler: RawWsHandler,
                              extra_headers: str = "") -> str:
    """A hand-written WebSocket server: answers the upgrade with a correct 101, then runs
    ``handler(stream, request head, bytes after the head)``; returns its ws:// URL."""
    from wsinspect.wire.handshake import accept_key

    async def serve_one(stream: trio.SocketStream) -> None:
        data = await read_until(stream, b"\r\n\r\n")
        head, _, rest = data.partition(b"\r\n\r\n")
        key = ""
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-key":
                key = value.strip()
        await stream.send_all(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept_key(key)}\r\n{extra_headers}\r\n"
            ).encode()
        )
        await handler(stream, head, rest)

    host, port = await start_raw_server(nursery, serve_one)
    return f"ws://{host}:{port}"


class RawReceiver:
    """A raw upstream (``start_raw_ws_server(nursery, r.serve)``) that keeps the first ``n``
    bytes the proxy sends it after the 101: ``got``, once ``done`` is set."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.got = b""
        self.done = trio.Event()

    async def serve(self, stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        self.got = rest + await read_exactly(stream, self.n - len(rest))
        self.done.set()
        await trio.sleep_forever()
