"""Control-socket requests map onto relay.control commands; malformed ones say why."""

from __future__ import annotations

import pytest

from wsinspect.faults.control_socket import command_from_request
from wsinspect.relay.control import (
    AddFault,
    ClearFaults,
    CloseConnection,
    ControlError,
    CutConnection,
    IdleCutNow,
    SetLatency,
)


def test_requests_become_commands() -> None:
    assert command_from_request({"cmd": "close", "conn": 3, "code": 4000}) == CloseConnection(3, 4000, "")
    assert command_from_request({"cmd": "cut", "conn": 3, "rst": True}) == CutConnection(3, True)
    assert command_from_request({"cmd": "idle-cut", "conn": 2}) == IdleCutNow(2)
    assert command_from_request({"cmd": "latency", "conn": 2, "ms": 250}) == SetLatency(2, 250.0)
    assert command_from_request({"cmd": "fault-add", "spec": "drop"}) == AddFault("drop", None)
    assert command_from_request({"cmd": "fault-clear", "conn": 4}) == ClearFaults(4)


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
        command_from_request(request_)
