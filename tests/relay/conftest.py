"""Fixtures for relay tests: ``start_proxy`` runs the proxy in-process on a free port."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import pytest
import trio
from relay_helpers import Collector, Proxy, StartProxy

from wsinspect.compose import serve_proxy
from wsinspect.hub import Hub
from wsinspect.relay.hooks import Hooks
from wsinspect.settings import Settings, Upstream


@pytest.fixture
def start_proxy(nursery: trio.Nursery) -> StartProxy:
    """``await start_proxy(upstream_url, **settings)`` → a running ``Proxy`` on a free port."""

    async def start(upstream: str, *, frames: bool = True, messages: bool = True,
                    hooks: Hooks | None = None, **overrides: Any) -> Proxy:
        settings = dataclasses.replace(
            Settings(listen_port=0, upstream=Upstream.parse(upstream)), **overrides
        )
        hub = Hub()
        sink = Collector()
        # frames=False, messages=False: connection events only, so the light tier is used
        hub.subscribe(sink, frames=frames, messages=messages)
        relay = await nursery.start(functools.partial(serve_proxy, hooks=hooks), settings, hub)
        return Proxy(relay, sink)

    return start


