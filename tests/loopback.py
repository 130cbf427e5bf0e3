"""Loopback test support shared by the relay and fault tests: a collecting sink, a handle on
an in-process proxy, and a ``websockets`` server on a free port."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio
from websockets.trio.server import ServerConnection, serve

from wsinspect.events import Event
from wsinspect.relay.server import Relay


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
        """The first event of ``cls`` matching ``pred`` (waits; bound it with fail_after)."""
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

    def url(self, path: str = "/", scheme: str = "ws") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"


async def start_ws_server(
    nursery: trio.Nursery, handler: Callable[[ServerConnection], Awaitable[None]], **kw: Any
) -> str:
    """A websockets (trio) server on a free loopback port; returns ``ws://127.0.0.1:PORT``."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    kw.setdefault("ping_interval", None)
    await nursery.start(lambda task_status: serve(handler, listeners=listeners, task_status=task_status, **kw))
    return f"ws://127.0.0.1:{port}"


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


StartProxy = Callable[..., Awaitable[Proxy]]
