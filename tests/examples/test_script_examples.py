"""The example scripts of ``examples/scripts/`` do what their docstrings say, run the way a
user runs them: through a real proxy (or mock) between real ``websockets`` peers on loopback."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from loopback import Collector, Proxy, start_ws_server
from websockets.trio.client import ClientConnection, connect
from websockets.trio.server import ServerConnection

from wsinspect.compose import serve_proxy
from wsinspect.events import MessageAction, MessageSeen
from wsinspect.hub import Hub
from wsinspect.settings import Settings, Upstream
from wsinspect.wire.frames import encode_frame
from wsinspect.wire.inspector import Inspector
from wsinspect.wire.sides import Direction

pytestmark = pytest.mark.trio

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scripts"


def example(name: str) -> str:
    return str(EXAMPLES / name)


async def start_proxy(nursery: trio.Nursery, upstream: str, name: str) -> Proxy:
    settings = Settings(listen_port=0, upstream=Upstream.parse(upstream),
                        scripts=(example(name),))
    hub = Hub()
    sink = Collector()
    hub.subscribe(sink)
    relay = await nursery.start(serve_proxy, settings, hub)
    return Proxy(relay, sink)


class Received(list[str | bytes]):
    """What the upstream received, in order; ``await got.wait(n)`` for the first ``n``."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = trio.Event()

    def add(self, message: str | bytes) -> None:
        self.append(message)
        self._changed.set()

    async def wait(self, n: int) -> None:
        while len(self) < n:
            self._changed = trio.Event()
            await self._changed.wait()


def server_sending(messages: list[str], got: Received | None = None) -> Any:
    """An upstream that sends ``messages`` when a client connects, then keeps what it gets."""

    async def handler(ws: ServerConnection) -> None:
        for m in messages:
            await ws.send(m)
        async for message in ws:
            if got is not None:
                got.add(message)

    return handler


async def recorder(nursery: trio.Nursery) -> tuple[str, Received]:
    """An upstream that keeps what it receives and answers nothing."""
    got = Received()
    return await start_ws_server(nursery, server_sending([], got)), got


@asynccontextmanager
async def client(url: str) -> AsyncIterator[ClientConnection]:
    async with connect(url, proxy=None, compression=None) as ws:
        yield ws


# ---- proxy examples -------------------------------------------------------------------------


async def test_uppercase_turns_the_clients_text_upper_and_leaves_the_rest(
    nursery: trio.Nursery,
) -> None:
    with trio.fail_after(5):
        upstream, got = await recorder(nursery)
        proxy = await start_proxy(nursery, upstream, "uppercase.py")
        async with client(proxy.url()) as ws:
            await ws.send("hello, World")
            await ws.send(b"binary stays")
            await ws.send("ALREADY UPPER")
            await ws.send("last one")
            await got.wait(4)
    assert got == ["HELLO, WORLD", b"binary stays", "ALREADY UPPER", "LAST ONE"]
    edits = [(e.action, e.by) for e in proxy.sink.of(MessageAction)]
    assert edits == [("edited", "script")] * 2  # what was already upper is not an edit


async def test_drop_heartbeats_keeps_them_from_the_other_side_both_ways(
    nursery: trio.Nursery,
) -> None:
    got = Received()
    from_server = ['{"type": "heartbeat"}', "tick 1", "ping", '{"type": "trade", "n": 1}',
                   "PONG", "tick 2"]
    with trio.fail_after(5):
        upstream = await start_ws_server(nursery, server_sending(from_server, got))
        proxy = await start_proxy(nursery, upstream, "drop_heartbeats.py")
        async with client(proxy.url()) as ws:
            for m in ['{"type": "heartbeat", "at": 1}', "hello", "ping", "not a ping",
                      '{"type": "chat"}', "heartbeat", "bye"]:
                await ws.send(m)
            received = [await ws.recv() for _ in range(3)]  # (the last one sent: "tick 2")
            await got.wait(4)  # (the last one sent: "bye")
    assert received == ["tick 1", '{"type": "trade", "n": 1}', "tick 2"]
    assert got == ["hello", "not a ping", '{"type": "chat"}', "bye"]
    dropped = [(e.direction, e.by) for e in proxy.sink.of(MessageAction)]
    assert sorted(dropped) == [("c2s", "script")] * 3 + [("s2c", "script")] * 3


async def test_delay_type_lets_a_later_message_overtake_the_delayed_type(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DELAY_MS", "100")
    price = '{"type": "price", "value": 42}'
    from_server = [price, '{"type": "news", "n": 1}', "plain text"]
    with trio.fail_after(5):
        upstream = await start_ws_server(nursery, server_sending(from_server))
        proxy = await start_proxy(nursery, upstream, "delay_type.py")
        async with client(proxy.url()) as ws:
            arrivals = []
            start = trio.current_time()
            for _ in range(3):
                message = await ws.recv()
                arrivals.append((message, trio.current_time() - start))
    assert [m for m, _ in arrivals] == ['{"type": "news", "n": 1}', "plain text", price]
    (_, news_at), _, (_, price_at) = arrivals
    assert news_at < price_at and 0.095 <= price_at < 1
    actions = [(e.action, e.direction) for e in proxy.sink.of(MessageAction)]
    assert actions == [("dropped", "s2c"), ("injected", "s2c")]


async def test_server_push_pushes_every_n_seconds(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUSH_EVERY", "0.05")
    with trio.fail_after(5):
        upstream, got = await recorder(nursery)
        proxy = await start_proxy(nursery, upstream, "server_push.py")
        async with client(proxy.url()) as ws:
            start = trio.current_time()
            pushes = []
            for _ in range(3):
                pushes.append((json.loads(await ws.recv()), trio.current_time() - start))
            await ws.send("the client still talks to the server")
            await got.wait(1)
    assert [p for p, _ in pushes] == [{"type": "push", "n": n} for n in (1, 2, 3)]
    times = [t for _, t in pushes]
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    assert all(0.045 <= gap < 0.5 for gap in gaps), gaps
    assert got == ["the client still talks to the server"]  # the server never saw a push
    assert {(e.action, e.by) for e in proxy.sink.of(MessageAction)} == {("injected", "script")}


# ---- mock examples --------------------------------------------------------------------------


async def start_mock(nursery: trio.Nursery, name: str) -> Proxy:
    mock = pytest.importorskip("wsinspect.script.mock")
    from wsinspect.script.runtime import load_scripts

    hub = Hub()
    sink = Collector()
    hub.subscribe(sink)
    relay = await nursery.start(mock.serve_mock, Settings(listen_port=0), hub,
                                load_scripts([example(name)]))
    return Proxy(relay, sink)


async def test_chat_mock_sends_every_message_to_every_client(nursery: trio.Nursery) -> None:
    with trio.fail_after(5):
        mock = await start_mock(nursery, "chat_mock.py")
        async with client(mock.url("/room")) as alice:
            await alice.send("alice joined")  # her own copy back: she is in the room
            assert await alice.recv() == "alice joined"
            async with client(mock.url("/room")) as bob:
                await bob.send("bob joined")
                assert await bob.recv() == "bob joined"
                assert await alice.recv() == "bob joined"
                await alice.send("hi bob")
                assert [await alice.recv(), await bob.recv()] == ["hi bob", "hi bob"]
                await bob.send(b"\x00 binary")
                assert [await alice.recv(), await bob.recv()] == [b"\x00 binary"] * 2
            await alice.send("bob left")  # he is out of the room: only alice hears it
            assert await alice.recv() == "bob left"
    # Logged like a proxy's traffic: both connections, both directions.
    seen = {(e.conn, e.direction) for e in mock.sink.of(MessageSeen)}
    assert seen == {(1, "c2s"), (1, "s2c"), (2, "c2s"), (2, "s2c")}


def write_recording(path: Path, conversation: list[tuple[Direction, bytes | str]]) -> None:
    """A recording of one connection's data messages, as ``--record`` writes it."""
    from wsinspect.events import ConnectionOpened, Event, FrameSeen
    from wsinspect.recording.writer import Recorder

    inspectors = {"c2s": Inspector("c2s"), "s2c": Inspector("s2c")}
    events: list[Event] = [ConnectionOpened(1, 1.0, "127.0.0.1:50000", "/", "ws://x", (), 101,
                                            (), None)]
    for seq, (direction, payload) in enumerate(conversation, 1):
        opcode, data = (1, payload.encode()) if isinstance(payload, str) else (2, payload)
        mask = os.urandom(4) if direction == "c2s" else None
        for f in inspectors[direction].feed(encode_frame(opcode, data, mask_key=mask)):
            events.append(FrameSeen(1, seq, direction, 1.0 + seq, f))
            assert f.message is not None
            events.append(MessageSeen(1, direction, 1.0 + seq, f.message, f.message_no))
    rec = Recorder.create(str(path))
    for event in events:
        rec.publish(event)
    rec.close()


async def test_replay_mock_answers_with_the_recorded_server_messages_in_order(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = tmp_path / "session.jsonl"
    write_recording(recording, [
        ("s2c", "welcome"),
        ("c2s", "login alice"), ("s2c", '{"ok": true}'),
        ("c2s", "get"), ("s2c", "item 1"), ("s2c", b"\x01\x02"),
        ("c2s", "bye"),
    ])
    monkeypatch.setenv("REPLAY_RECORDING", str(recording))
    with trio.fail_after(5):
        mock = await start_mock(nursery, "replay_mock.py")
        async with client(mock.url()) as ws:
            assert await ws.recv() == "welcome"
            await ws.send("anything")  # the answer does not depend on what the client says
            assert await ws.recv() == '{"ok": true}'
            await ws.send("get")
            assert [await ws.recv() for _ in range(2)] == ["item 1", b"\x01\x02"]
            await ws.send("bye")
            await ws.send("more")
            with trio.move_on_after(0.05):
                pytest.fail(f"nothing more was recorded, yet {await ws.recv()!r} came")


# ---- a script's own decoder (docs/decoders.md) ------------------------------------------------


async def test_kv_decoder_is_chosen_by_subprotocol_and_decodes_the_log(nursery: trio.Nursery) -> None:
    import argparse
    import io

    from wsinspect.config import decode_settings
    from wsinspect.sinks.console import ConsoleSink
    from wsinspect.sinks.decoded import new_decoding
    from wsinspect.wire.decoders import decoder_names

    # --decode names it once the script is loaded (the proxy loads its --script files first).
    checked = decode_settings(argparse.Namespace(decode=["kv:^/legacy"],
                                                 scripts=[example("kv_decoder.py")]))
    assert checked["decode"] == ("kv:^/legacy",) and "kv" in decoder_names()

    async def kv_server(ws: ServerConnection) -> None:
        async for _message in ws:
            await ws.send("REPLY ok=true")

    out = io.StringIO()
    console = ConsoleSink(out, fmt="text", decoding=new_decoding())
    with trio.fail_after(5):
        upstream = await start_ws_server(nursery, kv_server, subprotocols=["kv.v1"])
        settings = Settings(listen_port=0, upstream=Upstream.parse(upstream),
                            scripts=(example("kv_decoder.py"),))
        hub = Hub()
        sink = Collector()
        hub.subscribe(sink)
        hub.subscribe(console)
        relay = await nursery.start(serve_proxy, settings, hub)
        proxy = Proxy(relay, sink)
        async with connect(proxy.url(), proxy=None, compression=None,
                           subprotocols=["kv.v1"]) as ws:  # type: ignore[list-item]
            await ws.send("SET user=7 name=ada")
            assert await ws.recv() == "REPLY ok=true"
            await ws.send("SET broken")
            assert await ws.recv() == "REPLY ok=true"
    console.flush()
    summaries = [line.split("↳ ")[1] for line in out.getvalue().splitlines() if "↳" in line]
    assert summaries == ["kv SET user=7 name=ada", "kv REPLY ok=true to=SET",
                         "kv: not a kv message", "kv REPLY ok=true"]
    # and the wire is untouched
    assert [e.message.payload for e in sink.of(MessageSeen)] == [
        b"SET user=7 name=ada", b"REPLY ok=true", b"SET broken", b"REPLY ok=true"]
