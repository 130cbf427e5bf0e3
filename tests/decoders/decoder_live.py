"""Helpers for the decoders' live tests: run an asyncio library beside the Trio proxy, wait
for the recording of a connection to end, and decode what the proxy saw."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import trio
from loopback import Collector

from wsinspect.events import ConnectionClosed, ConnectionOpened, MessageSeen
from wsinspect.wire.decoders import Decoded, Decoding
from wsinspect.wire.sides import Direction

T = TypeVar("T")

Seen = list[tuple[Direction, Decoded]]


async def in_asyncio(scenario: Callable[[], Awaitable[T]]) -> T:
    """Run ``scenario`` (an asyncio coroutine function) on its own event loop in a worker thread;
    from there ``trio.from_thread.run`` reaches the test's Trio loop (to start the proxy). The
    caller's ``fail_after`` abandons the thread if the scenario hangs."""

    async def main() -> T:
        return await scenario()

    return await trio.to_thread.run_sync(lambda: asyncio.run(main()), abandon_on_cancel=True)


async def wait_closed(sink: Collector, count: int = 1) -> None:
    """Until ``count`` connections have ended (every message of theirs is then recorded)."""
    while len(sink.of(ConnectionClosed)) < count:
        await sink.wait_for(ConnectionClosed, lambda e: len(sink.of(ConnectionClosed)) >= count)


def decode_recorded(sink: Collector, decoding: Decoding | None = None) -> dict[int, Seen]:
    """Each recorded connection's messages, decoded as a consumer of the events would."""
    decoding = decoding or Decoding()
    out: dict[int, Seen] = {}
    for event in sink.events:
        if isinstance(event, ConnectionOpened):
            decoding.opened(event.conn, event.path, event.subprotocol)
            out[event.conn] = []
        elif isinstance(event, MessageSeen):
            decoded = decoding.message(event.conn, event.direction, event.message.opcode,
                                       event.message.payload)
            assert decoded is not None, f"connection {event.conn} got no decoder"
            out[event.conn].append((event.direction, decoded))
    return out


def only_connection(sink: Collector, decoding: Decoding | None = None) -> Seen:
    (seen,) = decode_recorded(sink, decoding).values()
    assert all(d.error is None for _, d in seen), [d.summary for _, d in seen if d.error]
    return seen


def summaries(seen: Seen, direction: Direction | None = None) -> list[str]:
    return [d.summary for dr, d in seen if direction in (None, dr)]
