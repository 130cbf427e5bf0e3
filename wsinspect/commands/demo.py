"""See wsinspect at work in one command: an echo server, the proxy in front of it, and a web
page whose WebSocket goes through the proxy.

Open the printed URL in a browser, type a message and press Send: the frames show up in the
terminal UI (or, with --no-tui, as log lines). Press Close to see a close handshake.

examples:
  wsinspect demo                      # page on http://127.0.0.1:8000/, proxy on :8080
  wsinspect demo --no-tui -w demo.jsonl
  wsinspect demo --port 0 --listen 127.0.0.1:0    # any free ports
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from wsinspect.commands.tui import add_ui_arguments
from wsinspect.config import add_proxy_arguments, settings_from_args
from wsinspect.settings import ConfigError

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", "-p", type=int, default=8000, metavar="N",
                        help="port of the demo web page and echo server on 127.0.0.1 "
                        "(default: 8000; 0 picks a free one)")
    parser.add_argument("--no-tui", action="store_true",
                        help="log to stdout instead of running the terminal UI")
    add_proxy_arguments(parser, upstream_required=False, forward=False)
    add_ui_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.upstream:
        print("wsinspect demo: error: the demo is its own upstream; use 'wsinspect proxy' "
              "or 'wsinspect tui' for --upstream", file=sys.stderr)
        return 2
    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        print(f"wsinspect demo: error: {exc}", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535:
        print(f"wsinspect demo: error: --port {args.port}: out of range", file=sys.stderr)
        return 2
    if args.no_tui:
        return _headless(settings, args.port)

    import trio

    from wsinspect.demo.run import demo_banner, run_demo
    from wsinspect.demo.server import DemoServer
    from wsinspect.hub import Hub
    from wsinspect.tui.live import build_live_app

    urls: list[str] = []

    def ready(demo: DemoServer, relay: Any) -> None:
        urls.append(demo.url)
        app.ui.banner = demo_banner(demo)
        app.notify(f"Open {demo.url} in a browser; its WebSocket goes through {demo.ws_url}.",
                   title="wsinspect demo", timeout=30)

    async def starter(hub: Hub, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        await run_demo(settings, hub, "127.0.0.1", args.port, on_ready=ready, task_status=task_status)

    app = build_live_app(settings, max_frames=args.ui_max_frames, starter=starter)
    app.run()
    if urls and app.return_code == 0:
        print(f"wsinspect demo: the page was at {urls[0]}")
    return app.return_code or 0


def _headless(settings: Any, page_port: int) -> int:
    from dataclasses import replace
    from functools import partial

    from wsinspect.commands.headless import run_headless
    from wsinspect.demo.run import run_demo
    from wsinspect.demo.server import DemoServer

    def ready(demo: DemoServer, relay: Any) -> None:
        print(f"wsinspect demo: open {demo.url} in a browser "
              f"(its WebSocket goes through the proxy at {demo.ws_url})", flush=True)

    # run_headless owns the recording (checked before listening, closed on SIGTERM too).
    demo = partial(run_demo, replace(settings, record=None), page_port=page_port, on_ready=ready)
    return run_headless("demo", settings, demo)
