"""Helpers for end-to-end fault tests: a collecting sink, peers, raw WebSocket clients."""

from __future__ import annotations

import base64
import os
from collections.abc import Awaitable, Callable

import loopback
import trio

# Shared with the relay tests (tests/loopback.py), re-exported for the fault tests.
from loopback import Collector as Collector
from loopback import Proxy as Proxy
from loopback import StartProxy as StartProxy
from loopback import echo as echo
from websockets.trio.server import ServerConnection

from wsinspect.wire.frames import Frame, FrameParser, encode_frame


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
                          handler: Callable[[ServerConnection], Awaitable[None]]) -> str:
    """A websockets server without compression, so fault tests see plain payloads."""
    return await loopback.start_ws_server(nursery, handler, compression=None)


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
        )
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
