"""Wiring for ``wsinspect tui`` and ``wsinspect demo``: a hub feeding the UI's store, the relay
(and recorder) started in Trio guest mode by a ``GuestRelay``, and the app around them."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from wsinspect.hub import Hub
from wsinspect.settings import Settings
from wsinspect.tui.app import InspectorApp
from wsinspect.tui.bridge import GuestRelay
from wsinspect.tui.store import EventStore

if TYPE_CHECKING:
    from wsinspect.recording.writer import Recorder

__all__ = ["build_live_app", "run_relay"]


async def run_relay(
    settings: Settings,
    hub: Hub,
    recorder: Recorder | None = None,
    *,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Relay (and write ``recorder``'s batches) until cancelled; cancelling ``recorder.run``
    writes what is pending and closes the file."""
    from wsinspect.compose import serve_proxy

    async with trio.open_nursery() as nursery:
        if recorder is not None:
            nursery.start_soon(recorder.run)
        relay = await nursery.start(partial(serve_proxy, settings, hub))
        task_status.started(relay)


def build_live_app(
    settings: Settings,
    *,
    max_frames: int,
    starter: Callable[..., Any] | None = None,
    banner: str | None = None,
) -> InspectorApp:
    """An ``InspectorApp`` whose store is fed by a relay running in guest mode.

    ``starter(hub, task_status=...)`` replaces the plain relay (the demo starts its echo server
    first, and records itself); by default it is :func:`run_relay` with ``settings`` and a
    recorder created here, so an unwritable ``--record`` path raises ``ConfigError`` before the
    UI starts.
    """
    from wsinspect.recording.writer import start_recorder
    from wsinspect.sinks.decoded import decoding_for

    hub = Hub()
    store = EventStore(max_frames, live=True)
    store.use_decoding(decoding_for(settings))
    hub.subscribe(store)
    recorder: Recorder | None = None
    if starter is not None:
        start = partial(starter, hub)
    else:
        recorder = start_recorder(settings, hub)
        start = partial(run_relay, settings, hub, recorder)
    bridge = GuestRelay(start)
    app = InspectorApp(
        store,
        bridge=bridge,
        recording=settings.record,
        listen=f"{settings.listen_host}:{settings.listen_port}",
        upstream=settings.upstream.url if settings.upstream else (
            "any host (forward proxy)" if settings.forward else None),
    )
    app.ui.banner = banner
    if recorder is not None:
        app.ui.closers.append(recorder.close)  # idempotent; normally done by recorder.run
    return app
