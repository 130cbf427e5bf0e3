"""``wsinspect mock``: a scripted server behind the relay, driven by a real ``websockets`` client."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from loopback import Collector, Proxy
from websockets.exceptions import ConnectionClosed as WsClosed
from websockets.trio.client import connect

from wsinspect.events import (
    ConnectionClosed,
    ConnectionOpened,
    FrameSeen,
    HandshakeRejected,
    Notice,
)
from wsinspect.hub import Hub
from wsinspect.script.loader import ScriptFile
from wsinspect.script.mock import serve_mock
from wsinspect.settings import Settings

pytestmark = pytest.mark.trio

MOCK = """
    import trio
    from wsinspect.script import DROP

    def on_open(conn):
        conn.send("s2c", "welcome " + conn.path)

    async def on_message(conn, msg):
        t = msg.text if msg.is_text else None
        if t == "str":
            return "a str"
        if t == "bytes":
            return b"\\x00\\x01"
        if t == "list":
            return ["one", b"two", "three"]
        if t == "drop":
            return DROP
        if t == "none":
            return None
        if t == "slow":
            await trio.sleep(0.05)
            return "slept"
        if t == "boom":
            raise RuntimeError("boom in the hook")
        if t == "bye":
            conn.close(4000, "bye")
            return None
        return "echo " + (t if t is not None else msg.data.hex())
"""


def write(tmp_path: Path, source: str, name: str = "chat_mock.py") -> ScriptFile:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    f = ScriptFile(str(path))
    f.load()
    return f


async def start(nursery: trio.Nursery, *scripts: ScriptFile, **kw: Any) -> Proxy:
    hub = Hub()
    sink = Collector()
    hub.subscribe(sink)
    relay = await nursery.start(lambda task_status: serve_mock(
        Settings(listen_port=0), hub, scripts, task_status=task_status, **kw))
    return Proxy(relay, sink)


async def test_welcome_and_every_kind_of_answer(nursery: trio.Nursery, tmp_path: Path) -> None:
    mock = await start(nursery, write(tmp_path, MOCK))
    with trio.fail_after(10):
        async with connect(mock.url("/chat"), ping_interval=None) as ws:
            assert await ws.recv() == "welcome /chat"
            await ws.send("str")
            assert await ws.recv() == "a str"
            await ws.send("bytes")
            assert await ws.recv() == b"\x00\x01"
            await ws.send("list")
            assert [await ws.recv() for _ in range(3)] == ["one", b"two", "three"]
            await ws.send("drop")
            await ws.send("none")
            await ws.send("slow")  # async hook awaiting trio.sleep; nothing came for drop/none
            assert await ws.recv() == "slept"
            await ws.send(b"\xff")
            assert await ws.recv() == "echo ff"
        opened = await mock.sink.wait_for(ConnectionOpened)
        assert opened.upstream == "ws://chat_mock.py/chat"
        assert opened.extensions is None  # websockets offered permessage-deflate: declined
        closed = await mock.sink.wait_for(ConnectionClosed)
        assert closed.initiator == "client"


async def test_background_task_pushes_then_closes(nursery: trio.Nursery, tmp_path: Path) -> None:
    mock = await start(nursery, write(tmp_path, """
        import trio

        async def on_open(conn):
            for i in range(3):
                conn.send("s2c", f"tick {i}")
                await trio.sleep(0.01)
            conn.close(4000, "bye")

        def on_message(conn, msg):
            return "answered while ticking"
    """))
    with trio.fail_after(10):
        async with connect(mock.url(), ping_interval=None) as ws:
            await ws.send("hi")
            got = []
            with pytest.raises(WsClosed):
                while True:
                    got.append(await ws.recv())
            assert [m for m in got if m.startswith("tick")] == ["tick 0", "tick 1", "tick 2"]
            assert "answered while ticking" in got
            assert ws.close_code == 4000
            assert ws.close_reason == "bye"
        closed = await mock.sink.wait_for(ConnectionClosed)
        assert closed.initiator == "upstream"


async def test_close_from_on_message_and_on_close_info(nursery: trio.Nursery, tmp_path: Path) -> None:
    seen = tmp_path / "closed.txt"
    mock = await start(nursery, write(tmp_path, MOCK + f"""
    def on_close(conn, info):
        open({str(seen)!r}, "w").write(f"{{info.initiator}} {{info.code}} {{info.reason}}")
    """))
    with trio.fail_after(10):
        async with connect(mock.url(), ping_interval=None) as ws:
            await ws.recv()
            await ws.send("bye")
            with pytest.raises(WsClosed):
                await ws.recv()
            assert (ws.close_code, ws.close_reason) == (4000, "bye")
        await mock.sink.wait_for(ConnectionClosed)
        with trio.move_on_after(2):
            while not seen.exists():  # noqa: ASYNC110 (on_close writes it, no event to wait on)
                await trio.sleep(0.01)
    assert seen.read_text() == "upstream 4000 bye"


async def test_ping_pong_and_client_close(nursery: trio.Nursery, tmp_path: Path) -> None:
    mock = await start(nursery, write(tmp_path, MOCK))
    with trio.fail_after(10):
        async with connect(mock.url(), ping_interval=None) as ws:
            await ws.recv()
            pong = await ws.ping(b"are you there")
            await pong.wait()
            await ws.aclose(4321, "client done")
            assert ws.close_code == 4321  # the mock echoed the code
        closed = await mock.sink.wait_for(ConnectionClosed)
        assert closed.initiator == "client"
        frames = [e for e in mock.sink.of(FrameSeen) if e.frame.opcode == 10]
        assert frames and frames[0].frame.payload == b"are you there"
        closes = [e for e in mock.sink.of(FrameSeen) if e.frame.opcode == 8]
        assert [(e.direction, e.frame.close_code) for e in closes] == [("c2s", 4321), ("s2c", 4321)]


async def test_subprotocol_negotiated_only_when_offered(nursery: trio.Nursery, tmp_path: Path) -> None:
    mock = await start(nursery, write(tmp_path, MOCK), subprotocol="chat.v1")
    with trio.fail_after(10):
        async with connect(mock.url(), subprotocols=["x", "chat.v1"], ping_interval=None) as ws:
            assert ws.subprotocol == "chat.v1"
        async with connect(mock.url(), ping_interval=None) as ws:
            assert ws.subprotocol is None


async def test_bad_request_gets_the_proxys_answer(nursery: trio.Nursery, tmp_path: Path) -> None:
    mock = await start(nursery, write(tmp_path, MOCK))
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", mock.port)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n")
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
        assert data.startswith(b"HTTP/1.1 400 ")
        rejected = await mock.sink.wait_for(HandshakeRejected)
        assert "Sec-WebSocket-Key" in rejected.reason


async def test_hook_error_is_logged_and_the_connection_goes_on(nursery: trio.Nursery, tmp_path: Path) -> None:
    mock = await start(nursery, write(tmp_path, MOCK))
    with trio.fail_after(10):
        async with connect(mock.url(), ping_interval=None) as ws:
            await ws.recv()
            await ws.send("boom")
            await ws.send("str")
            assert await ws.recv() == "a str"
        notice = await mock.sink.wait_for(Notice, lambda n: n.level == "error")
        assert "boom in the hook" in notice.text and "Traceback" in notice.text
        assert "chat_mock.py" in notice.text


async def test_script_errors_close_gives_1011(nursery: trio.Nursery, tmp_path: Path) -> None:
    mock = await start(nursery, write(tmp_path, MOCK), close_on_error=True)
    with trio.fail_after(10):
        async with connect(mock.url(), ping_interval=None) as ws:
            await ws.recv()
            await ws.send("boom")
            with pytest.raises(WsClosed):
                await ws.recv()
            assert ws.close_code == 1011


async def test_errors_stay_with_their_connection(nursery: trio.Nursery, tmp_path: Path) -> None:
    mock = await start(nursery, write(tmp_path, MOCK), close_on_error=True)
    with trio.fail_after(10):
        async with connect(mock.url(), ping_interval=None) as a, \
                connect(mock.url(), ping_interval=None) as b:
            await a.recv()
            await b.recv()
            await a.send("boom")
            with pytest.raises(WsClosed):
                await a.recv()
            await b.send("str")
            assert await b.recv() == "a str"


async def test_several_scripts_each_see_what_the_ones_before_made_of_a_message(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    first = write(tmp_path, """
        from wsinspect.script import DROP

        def on_message(conn, msg):
            if msg.text == "mine":
                return ["str", "bytes"]  # each goes through the next script on its own
            return DROP if msg.text == "secret" else None
    """, "first.py")
    mock = await start(nursery, first, write(tmp_path, MOCK))
    with trio.fail_after(10):
        async with connect(mock.url(), ping_interval=None) as ws:
            await ws.recv()
            await ws.send("mine")
            assert [await ws.recv() for _ in range(2)] == ["a str", b"\x00\x01"]
            await ws.send("secret")  # dropped before the mock's own script sees it
            await ws.send("str")
            assert await ws.recv() == "a str"


async def test_reload_new_connections_get_new_code(nursery: trio.Nursery, tmp_path: Path) -> None:
    f = write(tmp_path, 'def on_message(conn, msg):\n    return "v1"\n')
    mock = await start(nursery, f)
    path = Path(f.path)
    with trio.fail_after(10):
        async with connect(mock.url(), ping_interval=None) as ws:
            await ws.send("x")
            assert await ws.recv() == "v1"
            path.write_text('def on_message(conn, msg):\n    return "v2"\n')  # noqa: ASYNC240
            os.utime(path, (time.time() + 1, time.time() + 1))
            await ws.send("x")
            assert await ws.recv() == "v1"  # an open connection keeps its code
        async with connect(mock.url(), ping_interval=None) as ws:
            await ws.send("x")
            assert await ws.recv() == "v2"
        path.write_text('def on_message(conn, msg):\n    return (\n')  # noqa: ASYNC240
        os.utime(path, (time.time() + 2, time.time() + 2))
        async with connect(mock.url(), ping_interval=None) as ws:
            await ws.send("x")
            assert await ws.recv() == "v2"  # a broken version keeps the old one
        warning = await mock.sink.wait_for(Notice, lambda n: n.level == "warning")
        assert f"{path}:2: SyntaxError" in warning.text


async def test_a_protocol_violation_fails_the_connection(nursery: trio.Nursery, tmp_path: Path) -> None:
    from wsinspect.wire.frames import encode_frame

    mock = await start(nursery, write(tmp_path, MOCK))
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", mock.port)
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        await stream.send_all(encode_frame(1, b"unmasked"))  # §5.1: a client must mask
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
        assert data.startswith(b"HTTP/1.1 101")
        assert encode_frame(8, (1002).to_bytes(2, "big"))[:1] in data
        closes = [e for e in mock.sink.of(FrameSeen) if e.frame.opcode == 8]
        assert closes and closes[0].frame.close_code == 1002
