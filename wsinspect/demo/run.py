"""Start the demo: its page-and-echo server, then the proxy in front of it (and the recorder).

Used by ``wsinspect demo`` both with the TUI (as the guest-mode starter) and headless.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

import trio

from wsinspect.demo.server import ECHO_PATH, DemoServer, serve_demo
from wsinspect.hub import Hub
from wsinspect.settings import Settings, Upstream

__all__ = ["demo_banner", "run_demo"]


def demo_banner(demo: DemoServer) -> str:
    return f"demo: open {demo.url} in a browser"


async def run_demo(
    settings: Settings,
    hub: Hub,
    page_host: str = "127.0.0.1",
    page_port: int = 0,
    *,
    on_ready: Callable[[DemoServer, Any], None] | None = None,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the demo page and echo endpoint on ``page_host:page_port``, then the relay on
    ``settings``' listen address with the echo server as its upstream; ``on_ready(demo,
    relay)`` is called once both listen, and ``task_status.started(relay)``. Runs until
    cancelled; the recording (``settings.record``) is closed on the way out."""
    from wsinspect.compose import serve_proxy
    from wsinspect.recording.writer import open_recorder

    async with trio.open_nursery() as nursery:
        demo: DemoServer = await nursery.start(serve_demo, page_host, page_port)
        settings = replace(settings, upstream=Upstream.parse(demo.upstream_url))
        async with open_recorder(settings, hub), trio.open_nursery() as inner:
            relay = await inner.start(partial(serve_proxy, settings, hub))
            host, port = relay.address[:2]
            shown = f"[{host}]" if ":" in host else host
            demo.ws_url = f"ws://{shown}:{port}{ECHO_PATH}"
            if on_ready is not None:
                on_ready(demo, relay)
            task_status.started(relay)
