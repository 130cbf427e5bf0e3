"""The ``conn`` a script's hooks get: what the connection is, and what a script may do to it.

``send``, ``close`` and ``log`` may be called from any hook, plain or ``async``, and from
tasks a script starts (``start_soon``): they only queue the action (they never block), and one
task per connection (``run``) carries the actions out in the order they were asked for. Who carries
them out is given: the proxy injects into the relayed connection, a mock writes to its client.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from wsinspect.wire.sides import Direction

__all__ = ["CloseInfo", "Conn"]

Headers = tuple[tuple[str, str], ...]
SendFn = Callable[[Direction, int, bytes], Awaitable[None]]
CloseFn = Callable[[int, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class CloseInfo:
    """What ``on_close`` gets: who ended the connection (``client``, ``upstream`` or ``proxy``)
    and how (``close-handshake``, ``fin``, ``rst``, ...), the first close frame's code and
    reason, and each side's ``(code, reason)`` when it sent a close frame."""

    initiator: str
    how: str
    code: int | None = None
    reason: str | None = None
    client_close: tuple[int | None, str] | None = None
    upstream_close: tuple[int | None, str] | None = None


class Conn:
    """One connection as a script sees it."""

    def __init__(self, id: int, path: str, *, request_headers: Headers = (),
                 response_headers: Headers = (), subprotocol: str | None = None,
                 extensions: str | None = None, send: SendFn, close: CloseFn,
                 log: Callable[[str], None],
                 start_soon: Callable[..., None] | None = None,
                 failed: Callable[[BaseException], None] | None = None) -> None:
        self.id = id
        self.path = path
        self.request_headers = request_headers
        self.response_headers = response_headers
        self.subprotocol = subprotocol
        self.extensions = extensions
        self._send = send
        self._close = close
        self._log = log
        self._start_soon = start_soon
        self._failed = failed
        self._actions, self._queue = trio.open_memory_channel[Callable[[], Awaitable[None]]](
            math.inf)

    def __repr__(self) -> str:
        return f"<conn #{self.id} {self.path}>"

    def send(self, direction: Direction, payload: str | bytes) -> None:
        """Send a message toward ``direction``'s receiver (``"c2s"``: the server,
        ``"s2c"``: the client): text for a ``str``, binary for ``bytes``."""
        if direction not in ("c2s", "s2c"):
            raise ValueError(f"direction is 'c2s' or 's2c', not {direction!r}")
        if isinstance(payload, str):
            opcode, data = 1, payload.encode()
        elif isinstance(payload, bytes | bytearray | memoryview):
            opcode, data = 2, bytes(payload)
        else:
            raise TypeError(f"conn.send takes str or bytes, not {type(payload).__name__}")
        self._actions.send_nowait(lambda: self._send(direction, opcode, data))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection with ``code`` and ``reason`` (both sides, in a proxy)."""
        self._actions.send_nowait(lambda: self._close(code, reason))

    def log(self, text: str) -> None:
        """A line in the log (and the recording), marked with the connection."""
        self._log(str(text))

    def start_soon(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        """Run ``fn(*args)`` as a task of this connection: cancelled when it ends. An
        exception in it is a script error, as in a hook: it never ends the connection by
        itself (unless ``--script-errors close``)."""
        if self._start_soon is None:
            raise RuntimeError("this connection cannot start tasks yet")

        async def guarded() -> None:
            try:
                await fn(*args)
            except Exception as exc:
                if self._failed is None:
                    raise
                self._failed(exc)

        self._start_soon(guarded)

    def attach(self, start_soon: Callable[..., None]) -> None:
        """Where ``start_soon`` starts tasks (the connection's nursery, once it runs)."""
        self._start_soon = start_soon

    async def run(self) -> None:
        """Carry out the queued actions, in order, until cancelled (one task per
        connection)."""
        async for action in self._queue:
            await action()
