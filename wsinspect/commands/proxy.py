"""Run the relay headless: every event is one line on stdout.

Point a WebSocket client at the --listen address; wsinspect completes the handshake with the
upstream first, then relays every frame unchanged and logs it. With --forward, configure the
client to use wsinspect as its HTTP proxy instead, and trust its CA ('wsinspect ca').

examples:
  wsinspect proxy --upstream ws://127.0.0.1:9000
  wsinspect proxy --forward --ignore-hosts pinned.example.com  # then: HTTPS_PROXY=http://127.0.0.1:8080
  wsinspect proxy -l 127.0.0.1:8443 -u wss://echo.example.com/base --cert cert.pem --key key.pem
  wsinspect proxy -u ws://127.0.0.1:9000 --log-format json | jq .
"""

from __future__ import annotations

import argparse
import sys

from wsinspect.config import add_proxy_arguments, settings_from_args
from wsinspect.settings import ConfigError

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    add_proxy_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        print(f"wsinspect proxy: error: {exc}", file=sys.stderr)
        return 2

    from functools import partial

    from wsinspect.commands.headless import run_headless
    from wsinspect.compose import serve_proxy

    return run_headless("proxy", settings, partial(serve_proxy, settings), listen=args.listen)
