"""Fixtures for the decoders' live tests: an in-process proxy with a collecting sink."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from loopback import Collector, Proxy, StartProxy

from wsinspect.compose import serve_proxy
from wsinspect.hub import Hub
from wsinspect.settings import Settings, Upstream

# The relay tests' raw peers (relay_helpers), for byte-exact tests with decoders armed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "relay"))


@pytest.fixture
def start_proxy(nursery: trio.Nursery) -> StartProxy:
    """``await start_proxy(upstream_url, **settings)`` → a running ``Proxy`` on a free port whose
    sink collects connection and message events."""

    async def start(upstream: str, **overrides: Any) -> Proxy:
        settings = dataclasses.replace(
            Settings(listen_port=0, upstream=Upstream.parse(upstream)), **overrides
        )
        hub = Hub()
        sink = Collector()
        hub.subscribe(sink, frames=False, messages=True)
        relay = await nursery.start(serve_proxy, settings, hub)
        return Proxy(relay, sink)

    return start
