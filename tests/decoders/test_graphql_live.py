"""A strawberry-graphql server (aiohttp) and a gql client through the proxy, over
``graphql-transport-ws`` and the legacy ``graphql-ws``: the recorded messages decode as the
subscription's subscribe, next and complete, named by its operation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import pytest
import strawberry
import trio
from aiohttp import web
from decoder_live import in_asyncio, only_connection, summaries, wait_closed
from gql import Client, gql
from gql.transport.aiohttp_websockets import AIOHTTPWebsocketsTransport
from loopback import Proxy, StartProxy
from strawberry.aiohttp.views import GraphQLView

from wsinspect.wire.decoders import get_decoder

pytestmark = pytest.mark.trio


@strawberry.type
class Query:
    @strawberry.field
    def hello(self, name: str) -> str:
        return f"hello {name}"


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def count(self, to: int) -> AsyncGenerator[int, None]:
        for n in range(to):
            yield n


SCHEMA = strawberry.Schema(query=Query, subscription=Subscription)


async def _session(start_proxy: StartProxy, subprotocol: str) -> tuple[Proxy, dict[str, Any]]:
    app = web.Application()
    app.router.add_route("*", "/graphql", GraphQLView(schema=SCHEMA))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    results: dict[str, Any] = {}
    try:
        proxy: Proxy = trio.from_thread.run(start_proxy, f"ws://127.0.0.1:{port}")
        transport = AIOHTTPWebsocketsTransport(url=proxy.url("/graphql"), subprotocols=[subprotocol])
        async with Client(transport=transport) as session:
            subscription = gql("subscription OnCount($to: Int!) { count(to: $to) }")
            subscription.variable_values = {"to": 3}
            results["counts"] = [r["count"] async for r in session.subscribe(subscription)]
            if subprotocol == "graphql-transport-ws":  # strawberry runs only subscriptions on graphql-ws
                query = gql("query Greet { hello(name: \"ws\") }")
                results["hello"] = (await session.execute(query))["hello"]
    finally:
        await asyncio.wait_for(runner.cleanup(), 5)
    return proxy, results


async def test_graphql_transport_ws_subscription_decodes(start_proxy: StartProxy) -> None:
    with trio.fail_after(20):
        proxy, results = await in_asyncio(lambda: _session(start_proxy, "graphql-transport-ws"))
        await wait_closed(proxy.sink)
    assert results == {"counts": [0, 1, 2], "hello": "hello ws"}

    seen = only_connection(proxy.sink)
    assert summaries(seen, "c2s")[:2] == ["graphql connection_init", "graphql subscribe id=1 op=OnCount"]
    assert summaries(seen, "s2c")[:5] == [
        "graphql connection_ack", "graphql next id=1 op=OnCount", "graphql next id=1 op=OnCount",
        "graphql next id=1 op=OnCount", "graphql complete id=1 op=OnCount"]
    assert "graphql subscribe id=2 op=Greet" in summaries(seen, "c2s")
    assert "graphql next id=2 op=Greet" in summaries(seen, "s2c")

    gql_decoder = get_decoder("graphql")
    subscribes = [d for _, d in seen if gql_decoder.field_matches(d, "op", "subscribe")]
    assert [d.fields["operation"] for d in subscribes] == ["OnCount", "Greet"]
    assert subscribes[0].body["payload"]["variables"] == {"to": 3}
    assert subscribes[0].fields["operation_type"] == "subscription"
    on_count = [d.kind for _, d in seen if gql_decoder.field_matches(d, "op", "OnCount")]
    assert on_count == ["subscribe", "next", "next", "next", "complete"]


async def test_legacy_graphql_ws_subscription_decodes(start_proxy: StartProxy) -> None:
    with trio.fail_after(20):
        proxy, results = await in_asyncio(lambda: _session(start_proxy, "graphql-ws"))
        await wait_closed(proxy.sink)
    assert results["counts"] == [0, 1, 2]

    seen = only_connection(proxy.sink)
    sent, received = summaries(seen, "c2s"), summaries(seen, "s2c")
    assert sent[:2] == ["graphql connection_init", "graphql start id=1 op=OnCount"]
    assert received.count("graphql data id=1 op=OnCount") == 3
    assert "graphql complete id=1 op=OnCount" in received
    assert [d.fields["operation_type"] for _, d in seen if d.kind == "start"] == ["subscription"]
