"""Control-socket requests become the commands a relay registered; malformed ones say why."""

from __future__ import annotations

import pytest

from wsinspect.faults.commands import AddFault, ClearFaults, IdleCutNow, ListFaults, SetLatency
from wsinspect.faults.runtime import install
from wsinspect.hub import Hub
from wsinspect.relay.control import (
    BlackholeConnection,
    CloseConnection,
    ControlError,
    CutConnection,
    ListConnections,
)
from wsinspect.relay.server import Relay
from wsinspect.settings import Settings, Upstream


def _relay(*, faults: bool = True) -> Relay:
    relay = Relay(Settings(listen_port=0, upstream=Upstream.parse("ws://127.0.0.1:9/")), Hub())
    if faults:
        install(relay)
    return relay


def test_requests_become_commands() -> None:
    parse = _relay().commands.from_request
    assert parse({"cmd": "list"}) == ListConnections()
    assert parse({"cmd": "close", "conn": 3, "code": 4000}) == CloseConnection(3, 4000, "")
    assert parse({"cmd": "cut", "conn": 3, "rst": True}) == CutConnection(3, True)
    assert parse({"cmd": "blackhole", "conn": 3, "on": False}) == BlackholeConnection(3, False)
    assert parse({"cmd": "faults"}) == ListFaults()
    assert parse({"cmd": "idle-cut", "conn": 2}) == IdleCutNow(2)
    assert parse({"cmd": "latency", "conn": 2, "ms": 250}) == SetLatency(2, 250.0)
    assert parse({"cmd": "fault-add", "spec": "drop"}) == AddFault("drop", None)
    assert parse({"cmd": "fault-clear", "conn": 4}) == ClearFaults(4)


@pytest.mark.parametrize(
    ("request_", "says"),
    [
        ({"cmd": "explode"}, "unknown command 'explode'"),
        ({"cmd": "cut"}, "'conn' must be an integer"),
        ({"cmd": "close", "conn": "3"}, "'conn' must be an integer"),
        ({"cmd": "latency", "conn": 1, "ms": "fast"}, "'ms' must be a number"),
    ],
)
def test_malformed_requests_say_why(request_: dict[str, object], says: str) -> None:
    with pytest.raises(ControlError, match=says):
        _relay().commands.from_request(request_)


@pytest.mark.trio
async def test_a_relay_without_faults_answers_only_connection_commands() -> None:
    relay = _relay(faults=False)
    assert relay.commands.from_request({"cmd": "cut", "conn": 1}) == CutConnection(1)
    with pytest.raises(ControlError, match="unknown command 'latency'"):
        relay.commands.from_request({"cmd": "latency", "conn": 1, "ms": 5})
    with pytest.raises(ControlError, match="unknown command SetLatency"):
        await relay.execute(SetLatency(1, 5))
    assert await relay.execute(ListConnections()) == []


def test_each_relay_has_its_own_commands() -> None:
    with_faults, without = _relay(), _relay(faults=False)
    assert SetLatency in with_faults.commands
    assert SetLatency not in without.commands
