"""Run the relay headless: every event is one line on stdout.

Point a WebSocket client at the --listen address; wsinspect completes the handshake with the
upstream first, then relays every frame unchanged and logs it.

examples:
  wsinspect proxy --upstream ws://127.0.0.1:9000
  wsinspect proxy -l 127.0.0.1:8443 -u wss://echo.example.com/base --cert cert.pem --key key.pem
  wsinspect proxy -u ws://127.0.0.1:9000 --log-format json | jq .
"""

from __future__ import annotations

import argparse
import sys

from wsinspect.commands import is_interrupt
from wsinspect.config import ConfigError, add_proxy_arguments, settings_from_args

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    add_proxy_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        print(f"wsinspect proxy: error: {exc}", file=sys.stderr)
        return 2

    import trio

    from wsinspect.hub import Hub
    from wsinspect.relay.server import serve
    from wsinspect.sinks.console import ConsoleSink
    from wsinspect.sinks.recorder import cancel_on_sigterm, start_recorder

    hub = Hub()
    console = None
    if not settings.quiet:
        console = ConsoleSink(fmt=settings.log_format)
        hub.subscribe(console)
    try:
        recorder = start_recorder(settings, hub)  # refuses an unwritable path before listening
    except ConfigError as exc:
        print(f"wsinspect proxy: error: {exc}", file=sys.stderr)
        return 2

    failure: list[str] = []

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            if console is not None:
                await nursery.start(console.run)
            if recorder is not None:
                nursery.start_soon(recorder.run)
            nursery.start_soon(cancel_on_sigterm, nursery.cancel_scope)
            try:
                await nursery.start(serve, settings, hub)
            except OSError as exc:  # e.g. the address is in use
                failure.append(f"cannot listen on {args.listen}: {exc.strerror or exc}")
                nursery.cancel_scope.cancel()
            except ConfigError as exc:  # e.g. a --control socket that cannot be created
                failure.append(str(exc))
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
        print(f"wsinspect proxy: error: {failure[0]}", file=sys.stderr)
        return 1
    return 0
