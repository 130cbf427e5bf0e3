"""JSON-RPC 2.0 built by jsonrpcclient and answered by jsonrpcserver, carried over a
``websockets`` connection (subprotocol ``jsonrpc``) through the proxy: the recorded messages
decode as calls, notifications, results, errors and batches, responses paired with their calls."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from decoder_live import only_connection, summaries, wait_closed
from jsonrpcclient import Ok, notification_json, parse_json, request, request_json
from jsonrpcserver import Error, Result, Success, dispatch
from loopback import StartProxy, start_ws_server
from websockets.trio.client import connect
from websockets.trio.server import ServerConnection
from websockets.typing import Subprotocol

from wsinspect.wire.decoders import get_decoder

pytestmark = pytest.mark.trio


def get_user(id: int) -> Result:
    return Success({"id": id, "name": "ada"}) if id == 7 else Error(404, "no such user")


def add(a: int, b: int) -> Result:
    return Success(a + b)


def log(text: str) -> Result:
    return Success(None)


METHODS = {"getUser": get_user, "add": add, "log": log}


async def rpc_server(ws: ServerConnection) -> None:
    async for message in ws:
        answer = dispatch(message if isinstance(message, str) else message.decode(), methods=METHODS)
        if answer:  # notifications get none
            await ws.send(answer)


async def test_jsonrpc_libraries_traffic_decodes(nursery: trio.Nursery, start_proxy: StartProxy) -> None:
    answers: list[Any] = []
    with trio.fail_after(20):
        upstream = await start_ws_server(nursery, rpc_server, subprotocols=["jsonrpc"])
        proxy = await start_proxy(upstream)
        async with connect(proxy.url("/rpc"), subprotocols=[Subprotocol("jsonrpc")]) as ws:
            await ws.send(request_json("getUser", params={"id": 7}, id=7))
            answers.append(parse_json(await ws.recv()))
            await ws.send(request_json("getUser", params={"id": 8}, id="u-8"))
            answers.append(parse_json(await ws.recv()))
            await ws.send(notification_json("log", params={"text": "hi"}))
            await ws.send(request_json("nope", id=9))
            answers.append(parse_json(await ws.recv()))
            batch = [request("add", params={"a": 1, "b": 2}, id=10),
                     request("getUser", params={"id": 7}, id=11)]
            await ws.send(json.dumps(batch))
            answers.append(parse_json(await ws.recv()))
        await wait_closed(proxy.sink)
    assert isinstance(answers[0], Ok) and answers[0].result == {"id": 7, "name": "ada"}
    assert [a.result for a in answers[3]] == [3, {"id": 7, "name": "ada"}]

    seen = only_connection(proxy.sink)
    assert summaries(seen, "c2s") == [
        "jsonrpc call getUser id=7", "jsonrpc call getUser id=u-8", "jsonrpc notify log",
        "jsonrpc call nope id=9", "jsonrpc batch of 2: call add id=10, call getUser id=11"]
    received = summaries(seen, "s2c")
    assert received[:3] == [
        "jsonrpc result id=7 (getUser)", "jsonrpc error 404 id=u-8 (getUser): no such user",
        "jsonrpc error -32601 id=9 (nope): Method not found"]
    assert received[3].startswith("jsonrpc batch of 2: ")
    assert sorted(received[3].removeprefix("jsonrpc batch of 2: ").split(", ")) == [
        "result id=10 (add)", "result id=11 (getUser)"]

    rpc = get_decoder("jsonrpc")
    about_users = [(dr, d.kind) for dr, d in seen if rpc.field_matches(d, "method", "getUser")]
    assert about_users == [("c2s", "call"), ("s2c", "result"), ("c2s", "call"), ("s2c", "error"),
                           ("c2s", "batch"), ("s2c", "batch")]
    errors = [d.fields["code"] for _, d in seen if rpc.field_matches(d, "kind", "error")]
    assert errors == [404, -32601]
