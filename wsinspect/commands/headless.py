"""Running the relay without the UI: the console log, the recording, Ctrl-C and SIGTERM.

``proxy`` and ``demo --no-tui`` share this, so both refuse an unwritable ``--record`` path
before listening and both end the recording cleanly on SIGINT and SIGTERM.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

from wsinspect.commands import is_interrupt
from wsinspect.hub import Hub
from wsinspect.settings import ConfigError, Settings

__all__ = ["run_headless"]

# ``await nursery.start(starter, hub)`` starts what listens (the relay, the demo).
Starter = Callable[..., Awaitable[Any]]


def run_headless(command: str, settings: Settings, starter: Starter, *, listen: str = "") -> int:
    """Run ``starter`` with a console sink and the recorder ``settings`` ask for; the exit
    status: 0, 1 when it could not listen (on ``listen``, named in the message), 2 for a bad
    setting, 130 on Ctrl-C."""
    import trio

    from wsinspect.recording.writer import cancel_on_sigterm, start_recorder
    from wsinspect.sinks.console import ConsoleSink

    hub = Hub()
    console = None
    if not settings.quiet:
        from wsinspect.sinks.decoded import decoding_for

        console = ConsoleSink(fmt=settings.log_format, decoding=decoding_for(settings))
        hub.subscribe(console)
    try:
        recorder = start_recorder(settings, hub)  # refuses an unwritable path before listening
    except ConfigError as exc:
        print(f"wsinspect {command}: error: {exc}", file=sys.stderr)
        return 2

    failure: list[tuple[str, int]] = []  # what went wrong, and the exit status it means

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            if console is not None:
                await nursery.start(console.run)
            if recorder is not None:
                nursery.start_soon(recorder.run)
            nursery.start_soon(cancel_on_sigterm, nursery.cancel_scope)
            try:
                await nursery.start(starter, hub)
            except* OSError as group:  # e.g. an address in use
                exc = group.exceptions[0]
                where = f" on {listen}" if listen else ""
                failure.append(
                    (f"cannot listen{where}: {getattr(exc, 'strerror', None) or exc}", 1))
                nursery.cancel_scope.cancel()
            except* ConfigError as group:  # a script that does not load (2), a --control
                error = group.exceptions[0]  # socket that cannot be created (1)...
                failure.append((str(error), getattr(error, "status", 2)))
                nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    except BaseException as exc:
        if not is_interrupt(exc):
            raise
        if console is not None:
            console.flush()
        return 130
    finally:
        if recorder is not None:
            recorder.close()  # idempotent: run() has closed it unless it never ran
    if failure:
        text, status = failure[0]
        print(f"wsinspect {command}: error: {text}", file=sys.stderr)
        return status
    return 0
