"""Fixtures for fault tests over real loopback sockets: ``start_proxy`` runs the relay with
fault settings, ``counting_upstream`` is a raw listener that counts the TCP connections it gets."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import trio
from fault_helpers import Collector, CountingUpstream, Proxy, StartProxy

from wsinspect.compose import serve_proxy
from wsinspect.faults.spec import parse_fault
from wsinspect.hub import Hub
from wsinspect.settings import Settings, Upstream


@pytest.fixture
def start_proxy(nursery: trio.Nursery) -> StartProxy:
    """``await start_proxy(upstream_url, faults=["drop:..."], **settings)`` → a running proxy."""

    async def start(upstream: str, *, faults: tuple[str, ...] | list[str] = (),
                    **overrides: Any) -> Proxy:
        settings = dataclasses.replace(
            Settings(listen_port=0, upstream=Upstream.parse(upstream)),
            faults=tuple(parse_fault(f) for f in faults), **overrides,
        )
        hub = Hub()
        sink = Collector()
        hub.subscribe(sink)
        relay = await nursery.start(serve_proxy, settings, hub)
        return Proxy(relay, sink)

    return start


@pytest.fixture
async def counting_upstream(nursery: trio.Nursery) -> CountingUpstream:
    upstream = CountingUpstream()
    await upstream.start(nursery)
    return upstream
