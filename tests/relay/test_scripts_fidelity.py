"""A script that answers ``None`` to every message keeps the wire byte-exact, plain or async."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from relay_helpers import RawReceiver, StartProxy, raw_client, start_raw_ws_server
from test_relay_fidelity import _client_bytes

from wsinspect.events import MessageAction

pytestmark = pytest.mark.trio

SCRIPTS = Path(__file__).parent.parent / "script"


@pytest.mark.parametrize("name", ["noop.py", "noop_async.py"])
async def test_a_script_that_answers_none_keeps_the_wire_byte_exact(
    nursery: trio.Nursery, start_proxy: StartProxy, name: str
) -> None:
    sent = _client_bytes()  # fragments, a ping between them, RSV bits, odd lengths, mask keys
    upstream = RawReceiver(len(sent))
    with trio.fail_after(10):
        proxy = await start_proxy(await start_raw_ws_server(nursery, upstream.serve),
                                  scripts=(str(SCRIPTS / name),))
        stream, _, _ = await raw_client(proxy.port)
        for i in range(0, len(sent), 7):
            await stream.send_all(sent[i : i + 7])
        await upstream.done.wait()
        # (the script really is in the path: the message gate of both directions)
        assert all(p.gate is not None for p in proxy.relay.sessions[1]._pumps.values())
    assert upstream.got == sent
    assert not proxy.sink.of(MessageAction)


async def test_every_acting_feature_armed_but_idle_keeps_the_wire_byte_exact(
    nursery: trio.Nursery, start_proxy: StartProxy
) -> None:
    """A breakpoint that matches nothing, a no-op script, faults that never fire and decoders,
    all at once: the upstream still gets the client's bytes as they were sent."""
    from wsinspect.faults.spec import parse_fault
    from wsinspect.intercept.breakpoints import parse_breakpoint

    sent = _client_bytes()
    upstream = RawReceiver(len(sent))
    with trio.fail_after(10):
        proxy = await start_proxy(
            await start_raw_ws_server(nursery, upstream.serve),
            scripts=(str(SCRIPTS / "noop.py"),),
            breakpoints=(parse_breakpoint("re:^never-matches"),),
            faults=(parse_fault("drop:match=^never-matches"), parse_fault("latency:ms=5,p=0")),
            decode=("socketio",),
        )
        stream, _, _ = await raw_client(proxy.port)
        for i in range(0, len(sent), 7):
            await stream.send_all(sent[i : i + 7])
        await upstream.done.wait()
    assert upstream.got == sent
    assert not proxy.sink.of(MessageAction)
