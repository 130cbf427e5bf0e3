"""``H`` in the live UI: frames the live window evicted are reached through the recording."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import websockets
from tui_helpers import status

from wsinspect.settings import Settings
from wsinspect.tui.live import build_live_app


async def echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


@pytest.mark.asyncio
async def test_h_shows_the_frames_the_live_window_evicted_from_the_recording(tmp_path: Path) -> None:
    """A live window of 20 frames, 60 echoes recorded: H reaches the first frame through the
    recording's index, H again comes back to the live window."""
    from wsinspect.settings import Upstream
    from wsinspect.tui.paged import PagedStore

    record = tmp_path / "live.jsonl"
    async with asyncio.timeout(30), websockets.serve(echo, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        settings = Settings(listen_port=0, upstream=Upstream.parse(f"ws://127.0.0.1:{port}"),
                            record=str(record))
        app = build_live_app(settings, max_frames=20)
        bridge = app.ui.bridge
        assert bridge is not None
        async with app.run_test(size=(140, 40)) as pilot:
            relay = await bridge.wait_ready()
            async with websockets.connect(f"ws://127.0.0.1:{relay.address[1]}/h",
                                          compression=None) as ws:
                for i in range(60):
                    await ws.send(f"echo {i:02d}")
                    assert await ws.recv() == f"echo {i:02d}"
            async with asyncio.timeout(10):
                while app.ui.store.dropped == 0 or app.ui.store.connections[1].state != "closed":
                    await pilot.pause(0.02)
            live_store = app.ui.store
            assert "H: in the recording" in status(app)
            assert live_store.frames_total == 122  # 60 echoes each way and the closes
            await asyncio.sleep(0.3)  # the recorder writes every 100 ms
            await pilot.press("H")
            async with asyncio.timeout(10):
                while app.ui.store.total < 122:
                    await pilot.pause(0.05)
            assert isinstance(app.ui.store, PagedStore)
            assert "whole recording" in status(app)
            await pilot.press("home")
            await pilot.pause()
            first = "".join(t for t, _ in app.frames.row_cells(0, 140))
            assert '"echo 00"' in first  # evicted from the live window, read from the recording
            await pilot.press("H")
            await pilot.pause()
            assert app.ui.store is live_store
            assert app.history is None
            await pilot.press("q")
            await pilot.pause()
        assert bridge.error is None
