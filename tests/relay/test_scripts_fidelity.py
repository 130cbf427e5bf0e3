"""A script that answers ``None`` to every message keeps the wire byte-exact, plain or async."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from relay_helpers import StartProxy, raw_client, read_exactly, start_raw_ws_server
from test_relay_fidelity import _client_bytes

from wsinspect.events import MessageAction

pytestmark = pytest.mark.trio

SCRIPTS = Path(__file__).parent.parent / "script"


@pytest.mark.parametrize("name", ["noop.py", "noop_async.py"])
async def test_a_script_that_answers_none_keeps_the_wire_byte_exact(
    nursery: trio.Nursery, start_proxy: StartProxy, name: str
) -> None:
    sent = _client_bytes()  # fragments, a ping between them, RSV bits, odd lengths, mask keys
    got: list[bytes] = []
    done = trio.Event()

    async def server(stream: trio.SocketStream, head: bytes, rest: bytes) -> None:
        got.append(rest + await read_exactly(stream, len(sent) - len(rest)))
        done.set()
        await trio.sleep_forever()

    with trio.fail_after(10):
        proxy = await start_proxy(await start_raw_ws_server(nursery, server),
                                  scripts=(str(SCRIPTS / name),))
        stream, _, _ = await raw_client(proxy.port)
        for i in range(0, len(sent), 7):
            await stream.send_all(sent[i : i + 7])
        await done.wait()
        # (the script really is in the path: the message gate of both directions)
        assert all(p.gate is not None for p in proxy.relay.sessions[1]._pumps.values())
    assert got == [sent]
    assert not proxy.sink.of(MessageAction)
