"""``wsinspect demo``: the page is served, and its WebSocket echoes through the proxy."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import partial
from typing import Any

import pytest
import trio
from trio_websocket import open_websocket_url

from wsinspect.demo.run import run_demo
from wsinspect.demo.server import serve_demo
from wsinspect.events import Event, FrameSeen
from wsinspect.hub import Hub
from wsinspect.settings import Settings

pytestmark = pytest.mark.trio


class ListSink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)


async def http_get(host: str, port: int, path: str) -> tuple[int, bytes]:
    """A plain HTTP/1.1 GET over a raw socket; returns (status, body)."""
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_demo_page_is_served_and_points_at_the_proxy() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            hub = Hub()
            relay = await nursery.start(run_demo, Settings(listen_port=0), hub)
            host, port = relay.address[:2]
            page_host, page_port = relay.settings.upstream.host, relay.settings.upstream.port
            status, body = await http_get(page_host, page_port, "/")
            assert status == 200
            assert b"<button id=\"send\"" in body and b"<button id=\"close\"" in body
            assert f'"ws://{host}:{port}/echo"'.encode() in body
            nursery.cancel_scope.cancel()


async def test_demo_echoes_through_the_proxy_and_the_proxy_sees_the_frames() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            hub = Hub()
            sink = ListSink()
            hub.subscribe(sink)
            relay = await nursery.start(run_demo, Settings(listen_port=0), hub)
            host, port = relay.address[:2]
            async with open_websocket_url(f"ws://{host}:{port}/echo") as ws:
                await ws.send_message("hello demo")
                assert await ws.get_message() == "hello demo"
                await ws.send_message(b"\x00\x01\x02")
                assert await ws.get_message() == b"\x00\x01\x02"
            frames = [e for e in sink.events if isinstance(e, FrameSeen)]
            assert [(f.direction, f.frame.payload) for f in frames[:2]] == [
                ("c2s", b"hello demo"),
                ("s2c", b"hello demo"),
            ]
            nursery.cancel_scope.cancel()


async def test_echo_server_answers_a_close_with_the_same_code() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            demo = await nursery.start(serve_demo, "127.0.0.1", 0)
            async with open_websocket_url(demo.upstream_url + "/echo") as ws:
                await ws.aclose(code=4000, reason="done")
            assert ws.closed is not None and ws.closed.code == 4000
            nursery.cancel_scope.cancel()


async def test_unknown_paths_get_404() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            demo = await nursery.start(serve_demo, "127.0.0.1", 0)
            status, _ = await http_get(*demo.address, "/nope")
            assert status == 404
            nursery.cancel_scope.cancel()


async def test_demo_command_without_tui_prints_the_url_and_echoes() -> None:
    cmd = [sys.executable, "-m", "wsinspect", "demo", "--no-tui", "--port", "0", "--listen", "127.0.0.1:0"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            run = partial(trio.run_process, cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, check=False)
            proc: Any = await nursery.start(run)
            out = b""
            while b"\n" not in out:
                chunk = await proc.stdout.receive_some(4096)
                assert chunk, "demo exited before printing its URL"
                out += chunk
            first = out.decode().splitlines()[0]
            match = re.search(r"open (http://127\.0\.0\.1:(\d+)/) .* (ws://127\.0\.0\.1:\d+/echo)", first)
            assert match, first
            status, body = await http_get("127.0.0.1", int(match.group(2)), "/")
            assert status == 200 and match.group(3).encode() in body
            async with open_websocket_url(match.group(3)) as ws:
                await ws.send_message("from the test")
                assert await ws.get_message() == "from the test"
            with trio.move_on_after(5):  # the console log shows the echoed frame
                while b'"from the test"' not in out or out.count(b'"from the test"') < 2:
                    out += await proc.stdout.receive_some(4096)
            assert out.count(b'"from the test"') >= 2
            proc.terminate()


async def test_echo_server_echoes_a_message_longer_than_a_mebibyte_whole() -> None:
    from websockets.trio.client import connect

    message = "y" * (2 << 20)  # over the frame parser's default 1 MiB capture limit
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            demo = await nursery.start(serve_demo, "127.0.0.1", 0)
            async with connect(demo.upstream_url + "/echo", compression=None, max_size=None,
                               proxy=None) as ws:
                await ws.send(message)
                assert await ws.recv() == message
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("offer", "answer"),
    [
        ("permessage-deflate; client_max_window_bits", "permessage-deflate"),  # Chrome's
        ("permessage-deflate", "permessage-deflate"),
        ("x-webkit-deflate-frame, permessage-deflate; client_no_context_takeover", "permessage-deflate"),
        ("permessage-deflate; server_max_window_bits=10, permessage-deflate", "permessage-deflate"),
        ("permessage-deflate; server_max_window_bits=10", None),  # its window would be too small
        ("permessage-deflate; server_no_context_takeover", None),  # it keeps the client's context
        ("permessage-deflate; client_max_window_bits; client_max_window_bits", None),
        ('permessage-deflate; x="unterminated', None),
        ("", None),
    ],
)
async def test_echo_server_accepts_deflate_only_when_it_can_echo_compressed_frames(
    offer: str, answer: str | None
) -> None:
    from wsinspect.demo.server import accept_deflate

    assert accept_deflate(offer) == answer


async def test_compressed_messages_echo_through_the_proxy_and_are_shown_inflated() -> None:
    from websockets.trio.client import connect

    messages = ["grüße " * 2000, "second message, same context", "🚀" * 100]
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            hub = Hub()
            sink = ListSink()
            hub.subscribe(sink)
            relay = await nursery.start(run_demo, Settings(listen_port=0), hub)
            host, port = relay.address[:2]
            # websockets offers "permessage-deflate; client_max_window_bits", as browsers do.
            async with connect(f"ws://{host}:{port}/echo", proxy=None) as ws:
                assert ws.protocol.extensions  # negotiated
                for message in messages:
                    await ws.send(message)
                    assert await ws.recv() == message
            nursery.cancel_scope.cancel()
    from wsinspect.events import ConnectionOpened, MessageSeen

    opened = [e for e in sink.events if isinstance(e, ConnectionOpened)]
    assert opened[0].extensions == "permessage-deflate"
    frames = [e.frame for e in sink.events if isinstance(e, FrameSeen) and e.frame.opcode == 1]
    assert [f.rsv1 for f in frames] == [True] * 6
    shown = [(e.direction, e.message.payload.decode()) for e in sink.events
             if isinstance(e, MessageSeen)]
    assert shown == [(d, m) for m in messages for d in ("c2s", "s2c")]


async def test_demo_refuses_an_unwritable_recording_before_listening() -> None:
    cmd = [sys.executable, "-m", "wsinspect", "demo", "--no-tui", "--port", "0",
           "--listen", "127.0.0.1:0", "-w", "/nonexistent-dir/demo.jsonl"]
    with trio.fail_after(30):
        done = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True, check=False)
    assert done.returncode == 2
    assert b"--record /nonexistent-dir/demo.jsonl: cannot write" in done.stderr
    assert b"open http://" not in done.stdout  # nothing was served


async def test_demo_ends_its_recording_cleanly_on_sigterm(tmp_path: Any) -> None:
    from wsinspect.events import ConnectionOpened
    from wsinspect.recording.reader import read_events

    rec = tmp_path / "demo.jsonl"
    cmd = [sys.executable, "-m", "wsinspect", "demo", "--no-tui", "-q", "--port", "0",
           "--listen", "127.0.0.1:0", "-w", str(rec)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            run = partial(trio.run_process, cmd, stdout=subprocess.PIPE, env=env, check=False)
            proc: Any = await nursery.start(run)
            out = b""
            while b"\n" not in out:
                chunk = await proc.stdout.receive_some(4096)
                assert chunk, "demo exited before printing its URL"
                out += chunk
            match = re.search(r"(ws://127\.0\.0\.1:\d+/echo)", out.decode())
            assert match, out
            async with open_websocket_url(match.group(1)) as ws:
                await ws.send_message("kept on SIGTERM")
                assert await ws.get_message() == "kept on SIGTERM"
            proc.terminate()  # SIGTERM
            assert await proc.wait() == 0
    warnings: list[str] = []
    events = list(read_events(str(rec), warn=warnings.append))
    assert warnings == []  # no torn line: the file was ended, not cut
    assert any(isinstance(e, ConnectionOpened) for e in events)
    assert sum(isinstance(e, FrameSeen) and e.frame.payload == b"kept on SIGTERM" for e in events) == 2
