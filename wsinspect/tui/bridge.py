"""Run the Trio relay inside Textual's asyncio loop (Trio guest mode) and talk to it.

``trio.lowlevel.start_guest_run`` lets Trio schedule its tasks as callbacks on the host loop, so
the relay and the UI share one thread and no locks are needed: the relay publishes events into
the ``EventStore`` (an O(1) append) and the UI drains it on a timer (STYLE.md item 9).

All the state of that arrangement lives in ``GuestRelay``, not on the App: the cancel scope,
the Trio token, the relay handle, the outcome. The UI only calls ``start``, ``execute`` and
``stop``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import outcome
import trio

__all__ = ["GuestRelay", "RelayStarter"]

# An async function that starts the relay (and whatever goes with it: recorder, echo server)
# and calls ``task_status.started(relay)``; it runs until cancelled.
RelayStarter = Callable[..., Awaitable[None]]


def _unwrap(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


class GuestRelay:
    """The relay running as a Trio guest on the current asyncio loop.

    ``start(on_crash)`` begins the guest run; ``on_crash(exc)`` is called (on the loop) if the
    relay fails, so the UI can end with the error shown instead of hanging. ``stop()`` cancels
    the guest run and waits until Trio has finished (recorder flushed and closed, sockets shut).
    """

    def __init__(self, starter: RelayStarter) -> None:
        self._starter = starter
        self.relay: Any = None  # the Relay handed over by task_status.started()
        self.error: BaseException | None = None
        self._scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._done: asyncio.Future[None] | None = None
        self._stopping = False
        self._ready: asyncio.Event | None = None
        self._on_crash: Callable[[BaseException], None] | None = None
        self._on_result: Callable[[object, object], None] | None = None

    @property
    def running(self) -> bool:
        return self._done is not None and not self._done.done()

    def start(
        self,
        on_crash: Callable[[BaseException], None] | None = None,
        on_result: Callable[[object, object], None] | None = None,
    ) -> None:
        """Start the guest run on the running asyncio loop."""
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        self._ready = asyncio.Event()
        self._on_crash = on_crash
        self._on_result = on_result
        trio.lowlevel.start_guest_run(
            self._main,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            run_sync_soon_not_threadsafe=loop.call_soon,
            done_callback=self._finished,
            # asyncio owns signal.set_wakeup_fd on the main thread; Trio must not replace it.
            host_uses_signal_set_wakeup_fd=True,
        )

    async def wait_ready(self) -> Any:
        """Wait until the relay is listening (or the run ended) and return it."""
        assert self._ready is not None
        await self._ready.wait()
        return self.relay

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as scope:
            self._scope = scope
            if self._stopping:
                scope.cancel()
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self.relay = await nursery.start(self._starter)
                if self._ready is not None:
                    self._ready.set()

    def _finished(self, result: outcome.Outcome[None]) -> None:
        if isinstance(result, outcome.Error):
            exc = _unwrap(result.error)
            if not isinstance(exc, trio.Cancelled):
                self.error = exc
        if self._done is not None and not self._done.done():
            self._done.set_result(None)
        if self._ready is not None:
            self._ready.set()  # wake wait_ready() even when the relay never started
        if self.error is not None and not self._stopping and self._on_crash is not None:
            self._on_crash(self.error)
        elif self.error is None and not self._stopping and self._on_crash is not None:
            self._on_crash(RuntimeError("the relay stopped unexpectedly"))

    def execute(self, command: object) -> None:
        """Send ``command`` to ``Relay.execute`` (the one command path into the relay).

        Runs it as a task in the relay's nursery; its result, or the exception it raised, goes to
        ``on_result(command, result)``. A failing command never takes the relay down.
        """
        if self._token is None or self._nursery is None or self.relay is None:
            raise RuntimeError("the relay is not running")
        nursery = self._nursery
        self._token.run_sync_soon(lambda: nursery.start_soon(self._run_command, command))

    async def _run_command(self, command: object) -> None:
        result: object
        try:
            result = self.relay.execute(command)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            result = exc
        if self._on_result is not None:
            self._on_result(command, result)

    async def stop(self, grace: float = 10.0) -> None:
        """Cancel the relay and wait for the guest run to end (idempotent)."""
        self._stopping = True
        if self._done is None or self._done.done():
            return
        if self._token is not None and self._scope is not None:
            scope = self._scope
            self._token.run_sync_soon(scope.cancel)
        # else: _main has not run yet; it cancels itself on entry (self._stopping).
        await asyncio.wait_for(asyncio.shield(self._done), grace)
