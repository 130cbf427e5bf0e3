"""``--script`` in the proxy: every hook and answer, both directions, with real peers."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
import trio
from loopback import Collector, Proxy, echo, start_ws_server
from websockets.exceptions import ConnectionClosed as WsClosed
from websockets.trio.client import connect
from websockets.trio.server import ServerConnection

from wsinspect.compose import serve_proxy
from wsinspect.events import ConnectionClosed, FrameSeen, MessageAction, Notice
from wsinspect.hub import Hub
from wsinspect.settings import ConfigError, Settings, Upstream

pytestmark = pytest.mark.trio


def script(tmp_path: Path, source: str, name: str = "rules.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return str(path)


async def start(nursery: trio.Nursery, upstream: str, *scripts: str, **overrides: Any) -> Proxy:
    settings = Settings(listen_port=0, upstream=Upstream.parse(upstream), scripts=scripts,
                        **overrides)
    hub = Hub()
    sink = Collector()
    hub.subscribe(sink)
    relay = await nursery.start(serve_proxy, settings, hub)
    return Proxy(relay, sink)


async def recorder(nursery: trio.Nursery) -> tuple[str, list[str | bytes]]:
    """An upstream that keeps what it receives and answers ``ack N``."""
    got: list[str | bytes] = []

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            got.append(message)
            await ws.send(f"ack {len(got)}")

    return await start_ws_server(nursery, handler), got


RULES = """
    from wsinspect.script import DROP

    def on_message(conn, msg):
        if msg.direction == "c2s":
            if msg.text == "drop me":
                return DROP
            if msg.text == "shout":
                return msg.text.upper()
            if msg.text == "twice":
                return ["one", b"two"]
            if msg.text == "bytes":
                return b"\\x00\\x01"
        elif msg.text == "ack 2":
            return "ack two (rewritten)"
        return None
"""


async def test_every_answer_of_on_message_in_both_directions(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    with trio.fail_after(10):
        upstream, got = await recorder(nursery)
        proxy = await start(nursery, upstream, script(tmp_path, RULES))
        async with connect(proxy.url(), proxy=None, compression=None) as ws:
            await ws.send("as it is")
            assert await ws.recv() == "ack 1"
            await ws.send("shout")
            assert await ws.recv() == "ack two (rewritten)"  # s2c rewritten too
            await ws.send("drop me")
            await ws.send("twice")
            assert [await ws.recv() for _ in range(2)] == ["ack 3", "ack 4"]
            await ws.send("bytes")
            assert await ws.recv() == "ack 5"
    assert got == ["as it is", "SHOUT", "one", b"two", b"\x00\x01"]
    actions = [(e.action, e.direction, e.by) for e in proxy.sink.of(MessageAction)]
    assert actions == [("edited", "c2s", "script"), ("edited", "s2c", "script"),
                       ("dropped", "c2s", "script"), ("edited", "c2s", "script"),
                       ("edited", "c2s", "script")]
    written = [(e.written, e.frame.opcode) for e in proxy.sink.of(FrameSeen) if e.written]
    assert written == [("edited", 1), ("edited", 1), ("edited", 1), ("edited", 2),
                       ("edited", 2)]


async def test_async_hooks_on_open_and_a_background_task_send_and_close(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    path = script(tmp_path, """
        import trio

        async def on_open(conn):
            conn.log(f"hello {conn.path} {conn.subprotocol}")
            conn.send("s2c", "welcome")

        async def on_message(conn, msg):
            if msg.direction == "c2s" and msg.text == "slow":
                await trio.sleep(0.05)
                return "slow, then changed"
            if msg.direction == "c2s" and msg.text == "start":
                async def pusher():
                    for i in range(3):
                        conn.send("s2c", f"push {i}")
                        await trio.sleep(0.01)
                    conn.send("c2s", "from the script")
                    conn.close(4000, "bye")
                conn.start_soon(pusher)
            return None
    """)
    with trio.fail_after(10):
        upstream, got = await recorder(nursery)
        proxy = await start(nursery, upstream, path)
        async with connect(proxy.url("/room"), proxy=None, compression=None,
                           subprotocols=None) as ws:
            assert await ws.recv() == "welcome"
            await ws.send("slow")
            assert await ws.recv() == "ack 1"
            await ws.send("start")
            received = []
            with pytest.raises(WsClosed):
                while True:
                    received.append(await ws.recv())
            assert ws.close_code == 4000 and ws.close_reason == "bye"
    assert got == ["slow, then changed", "start", "from the script"]
    # The pushes in order, the upstream's answers in between wherever they came.
    assert [m for m in received if m.startswith("push")] == ["push 0", "push 1", "push 2"]
    assert "ack 2" in received
    assert any(n.text == "hello /room None" and n.conn == 1 for n in proxy.sink.of(Notice))


async def test_on_close_hears_who_ended_it(nursery: trio.Nursery, tmp_path: Path) -> None:
    marker = tmp_path / "closed.txt"
    path = script(tmp_path, f"""
        def on_close(conn, info):
            with open({str(marker)!r}, "w") as f:
                f.write(f"{{conn.id}} {{info.initiator}} {{info.how}} {{info.code}}")
    """)
    with trio.fail_after(10):
        proxy = await start(nursery, await start_ws_server(nursery, echo), path)
        async with connect(proxy.url(), proxy=None) as ws:
            await ws.send("x")
            await ws.recv()
        await proxy.sink.wait_for(ConnectionClosed)  # (after the connection's hooks ended)
    assert marker.read_text() == "1 client close-handshake 1000"


@pytest.mark.parametrize("errors", ["log", "close"])
async def test_an_exception_in_a_hook_is_logged_and_the_message_goes_on(
    nursery: trio.Nursery, tmp_path: Path, errors: str
) -> None:
    path = script(tmp_path, """
        def on_message(conn, msg):
            if msg.text == "boom":
                raise RuntimeError("the script broke")
            return None
    """)
    with trio.fail_after(10):
        upstream, got = await recorder(nursery)
        proxy = await start(nursery, upstream, path, script_errors=errors)
        async with connect(proxy.url(), proxy=None, compression=None) as ws:
            await ws.send("boom")
            if errors == "log":
                assert await ws.recv() == "ack 1"
                # another connection never sees it: a second one works as usual
                async with connect(proxy.url(), proxy=None, compression=None) as other:
                    await other.send("fine")
                    assert await other.recv() == "ack 2"
            else:
                with pytest.raises(WsClosed):
                    await ws.recv()
                assert ws.close_code == 1011
    failures = [n for n in proxy.sink.of(Notice) if n.level == "error"]
    assert len(failures) == 1 and "RuntimeError: the script broke" in failures[0].text
    assert "rules.py" in failures[0].text and "line 4" in failures[0].text
    if errors == "log":
        assert got == ["boom", "fine"]


async def test_a_changed_script_serves_new_connections_and_a_broken_one_keeps_the_old(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    path = script(tmp_path, 'def on_message(conn, msg):\n    return "v1" if msg.direction == "c2s" else None\n')
    with trio.fail_after(10):
        upstream, got = await recorder(nursery)
        proxy = await start(nursery, upstream, path)

        async def one() -> None:
            async with connect(proxy.url(), proxy=None, compression=None) as ws:
                await ws.send("x")
                await ws.recv()

        await one()
        await trio.Path(path).write_text(
            'def on_message(conn, msg):\n    return "v2" if msg.direction == "c2s" else None\n')
        os.utime(path, (1, 1))  # a new modification time, whatever the clock's resolution
        await one()
        await trio.Path(path).write_text("def on_message(conn, msg):\n    return (\n")
        os.utime(path, (2, 2))
        # The file is watched: the error is said when it is saved, before any new connection.
        warning = await proxy.sink.wait_for(
            Notice, lambda n: n.level == "warning" and "reload failed" in n.text)
        await one()
    assert got == ["v1", "v2", "v2"]
    assert f"{path}:2: SyntaxError" in warning.text and "keeping the previous version" in warning.text
    assert len([n for n in proxy.sink.of(Notice) if "reload failed" in n.text]) == 1


async def test_a_script_that_does_not_load_is_refused_before_listening(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    path = script(tmp_path, "x = 1\nraise ValueError('nope')\n")
    with pytest.raises(ConfigError, match=r"rules\.py:2: ValueError: nope"):
        await start(nursery, "ws://127.0.0.1:9", path)


async def test_a_script_without_on_message_leaves_the_relay_on_its_fast_path(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    path = script(tmp_path, "def on_open(conn):\n    conn.log('opened')\n")
    with trio.fail_after(10):
        proxy = await start(nursery, await start_ws_server(nursery, echo), path)
        async with connect(proxy.url(), proxy=None) as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
            session = proxy.relay.sessions[1]
            assert all(p.gate is None for p in session._pumps.values())



async def test_several_scripts_see_what_the_ones_before_made_of_a_message(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    first = script(tmp_path, """
        from wsinspect.script import DROP

        def on_message(conn, msg):
            if msg.direction == "c2s" and msg.text == "split":
                return ["a", "b"]
            return DROP if msg.text == "secret" else None
    """, "first.py")
    second = script(tmp_path, """
        def on_message(conn, msg):
            return msg.text.upper() if msg.direction == "c2s" else None
    """, "second.py")
    with trio.fail_after(10):
        upstream, got = await recorder(nursery)
        proxy = await start(nursery, upstream, first, second)
        async with connect(proxy.url(), proxy=None, compression=None) as ws:
            await ws.send("split")
            await ws.send("secret")
            await ws.send("plain")
            assert [await ws.recv() for _ in range(3)] == ["ack 1", "ack 2", "ack 3"]
    assert got == ["A", "B", "PLAIN"]


async def test_a_failing_task_is_a_script_error_and_a_plain_on_open_runs_first(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    path = script(tmp_path, """
        seen = []

        async def fails():
            raise KeyError("in the task")

        def on_open(conn):
            seen.append("open")
            conn.start_soon(fails)

        def on_message(conn, msg):
            seen.append("message")
            if msg.direction == "c2s":
                return f"{seen[0]} {msg.length} {msg.complete}"
            return None
    """)
    with trio.fail_after(10):
        upstream, got = await recorder(nursery)
        proxy = await start(nursery, upstream, path)
        async with connect(proxy.url(), proxy=None, compression=None) as ws:
            await ws.send("12345")
            assert await ws.recv() == "ack 1"
            await ws.send("again")  # the connection outlived its task's failure
            assert await ws.recv() == "ack 2"
    assert got == ["open 5 True", "open 5 True"]
    [failure] = [n for n in proxy.sink.of(Notice) if n.level == "error"]
    assert "a script's task failed" in failure.text and "KeyError: 'in the task'" in failure.text
    assert "rules.py" in failure.text and "wsinspect/" not in failure.text  # the script's lines
