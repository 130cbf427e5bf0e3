"""Helpers for end-to-end fault tests: a collecting sink, peers, raw WebSocket clients."""

from __future__ import annotations

import base64
import os
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from websockets.trio.server import ServerConnection, serve

from wsinspect.events import Event
from wsinspect.relay.server import Relay
from wsinspect.wire.frames import Frame, FrameParser, encode_frame


class Collector:
    """A sink that keeps every event and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = trio.Event()

    def publish(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    def of(self, cls: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]

    async def wait_for(self, cls: type, pred: Callable[[Any], bool] = lambda e: True) -> Any:
        """The first event of ``cls`` matching ``pred`` (bound it with fail_after)."""
        while True:
            for e in self.events:
                if isinstance(e, cls) and pred(e):
                    return e
            self._changed = trio.Event()
            await self._changed.wait()


class Proxy:
    def __init__(self, relay: Relay, sink: Collector) -> None:
        self.relay = relay
        self.sink = sink

    @property
    def port(self) -> int:
        return self.relay.address[1]

    def url(self, path: str = "/") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"


StartProxy = Callable[..., Awaitable[Proxy]]


class CountingUpstream:
    """A raw TCP listener that only counts accepted connections (and holds them open)."""

    def __init__(self) -> None:
        self.accepted = 0
        self.url = ""

    async def start(self, nursery: trio.Nursery) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.url = f"ws://127.0.0.1:{listeners[0].socket.getsockname()[1]}"

        async def handler(stream: trio.SocketStream) -> None:
            self.accepted += 1
            await trio.sleep_forever()

        nursery.start_soon(trio.serve_listeners, handler, listeners)


async def start_ws_server(nursery: trio.Nursery,
                          handler: Callable[[ServerConnection], Awaitable[None]]) -> str:  # fmt: skip
    """A websockets (trio) server on a free loopback port; returns its ws:// URL."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    await nursery.start(lambda task_status: serve(
        handler, listeners=listeners, task_status=task_status, ping_interval=None,
        compression=None))  # fmt: skip
    return f"ws://127.0.0.1:{port}"


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


class RawClient:
    """A hand-written WebSocket client, for checks where the exact TCP ending matters."""

    def __init__(self, stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        self.stream = stream
        self.head = head
        self.rest = rest
        self._parser = FrameParser()
        self._frames: list[Frame] = self._parser.feed(rest)

    @property
    def status(self) -> int:
        return int(self.head.split(b" ", 2)[1])

    @classmethod
    async def connect(cls, port: int, path: str = "/", headers: str = "") -> RawClient:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        await stream.send_all(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"{headers}\r\n".encode()
        )  # fmt: skip
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        return cls(stream, head, rest)

    async def send(self, opcode: int, payload: bytes) -> None:
        await self.stream.send_all(encode_frame(opcode, payload, mask_key=os.urandom(4)))

    async def ending(self) -> str:
        """Read until the connection ends: ``"fin"`` or ``"rst"`` (frames are kept)."""
        while True:
            try:
                chunk = await self.stream.receive_some(65536)
            except trio.BrokenResourceError as exc:
                if isinstance(exc.__cause__, ConnectionResetError):
                    return "rst"
                raise
            if not chunk:
                return "fin"
            self._frames += self._parser.feed(chunk)

    async def body(self) -> bytes:
        data = b""
        while True:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                return data
            data += chunk

    @property
    def frames(self) -> list[Frame]:
        return self._frames
