"""The real relay in Trio guest mode inside the TUI, with real WebSocket peers on loopback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import trio
import websockets
from tui_helpers import detail, status

from wsinspect.settings import Settings, Upstream
from wsinspect.tui.app import InspectorApp
from wsinspect.tui.bridge import GuestRelay
from wsinspect.tui.live import build_live_app
from wsinspect.tui.store import EventStore


async def echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


async def wait_for(pilot: Any, predicate: Any, seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not predicate():
            await pilot.pause(0.02)


@pytest.mark.asyncio
async def test_live_traffic_through_the_guest_relay_appears_and_quitting_stops_it(tmp_path: Any) -> None:
    record = tmp_path / "live.jsonl"
    async with asyncio.timeout(30), websockets.serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        settings = Settings(listen_port=0, upstream=Upstream.parse(f"ws://127.0.0.1:{port}"),
                            record=str(record))
        app = build_live_app(settings, max_frames=1000)
        bridge = app.ui.bridge
        assert bridge is not None
        async with app.run_test(size=(120, 40)) as pilot:
            relay = await bridge.wait_ready()
            host, lport = relay.address[:2]
            async with websockets.connect(f"ws://{host}:{lport}/live") as ws:
                for i in range(3):
                    await ws.send(f"live {i}")
                    assert await ws.recv() == f"live {i}"
            await wait_for(pilot, lambda: app.ui.store.total >= 8)  # 3+3 data, 2 close
            await wait_for(pilot, lambda: app.ui.store.connections[1].state == "closed")
            assert "● live 127.0.0.1:" in status(app)
            assert f"rec {record}" in status(app)
            assert "/live" in app.conns.row_cells(1, 120)[0][0]
            await pilot.press("slash", *"live", "space", "2", "enter")
            await pilot.pause()
            assert '"live 2"' in "".join(t for t, _ in app.frames.row_cells(0, 120))
            assert "permessage-deflate" in detail(app)  # websockets compresses by default
            await pilot.press("m")
            assert "live 2" in detail(app)
            await pilot.press("q")
            await pilot.pause()
        assert not bridge.running
        assert bridge.error is None
        assert app.return_code == 0
    lines = record.read_text().splitlines()  # the recorder was flushed and closed
    assert sum('"type": "frame"' in line or '"type":"frame"' in line for line in lines) == 8


@pytest.mark.asyncio
async def test_close_command_from_the_ui_closes_the_selected_connection() -> None:
    async with asyncio.timeout(30), websockets.serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        settings = Settings(listen_port=0, upstream=Upstream.parse(f"ws://127.0.0.1:{port}"))
        app = build_live_app(settings, max_frames=1000)
        assert app.ui.bridge is not None
        async with app.run_test(size=(120, 40)) as pilot:
            relay = await app.ui.bridge.wait_ready()
            host, lport = relay.address[:2]
            async with websockets.connect(f"ws://{host}:{lport}/c") as ws:
                await ws.send("hi")
                await ws.recv()
                await wait_for(pilot, lambda: app.ui.store.total >= 2)
                await pilot.press("c")
                await pilot.pause()
                prompt = app.screen.query_one("#prompt-input")
                prompt.value = "4001 closed from the UI"  # type: ignore[attr-defined]
                await pilot.press("enter")
                with pytest.raises(websockets.ConnectionClosed) as info:
                    async with asyncio.timeout(5):
                        await ws.recv()
                assert info.value.rcvd is not None
                assert info.value.rcvd.code == 4001
                assert info.value.rcvd.reason == "closed from the UI"
            await pilot.press("q")


@pytest.mark.asyncio
async def test_a_relay_crash_ends_the_ui_with_the_error(capsys: pytest.CaptureFixture[str]) -> None:
    async def broken(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        raise OSError("address already in use (simulated)")

    app = InspectorApp(EventStore(), bridge=GuestRelay(broken))
    async with asyncio.timeout(10), app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.return_code is not None)
    assert app.return_code == 1
    assert app.ui.bridge is not None and isinstance(app.ui.bridge.error, OSError)
    err = capsys.readouterr().err
    assert "the relay stopped: OSError: address already in use (simulated)" in err


@pytest.mark.asyncio
async def test_cut_key_drops_the_selected_connection_without_a_close_frame() -> None:
    async with asyncio.timeout(30), websockets.serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        settings = Settings(listen_port=0, upstream=Upstream.parse(f"ws://127.0.0.1:{port}"))
        app = build_live_app(settings, max_frames=1000)
        assert app.ui.bridge is not None
        async with app.run_test(size=(120, 40)) as pilot:
            relay = await app.ui.bridge.wait_ready()
            host, lport = relay.address[:2]
            async with websockets.connect(f"ws://{host}:{lport}/cut") as ws:
                await ws.send("hi")
                await ws.recv()
                await wait_for(pilot, lambda: app.ui.store.total >= 2)
                await pilot.press("k")
                with pytest.raises(websockets.ConnectionClosed) as info:
                    async with asyncio.timeout(5):
                        await ws.recv()
                assert info.value.rcvd is None  # no close frame: the TCP connection was cut
            await wait_for(pilot, lambda: app.ui.store.connections[1].state == "closed")
            await pilot.press("q")
