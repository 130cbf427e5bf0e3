"""The TUI with the relay in forward mode: a client configured to use it as its proxy reaches
a host, and the connection list shows that host with the path, as reverse mode shows the path."""

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
async def test_forward_mode_connections_show_their_host_and_frames(tmp_path: Path) -> None:
    async with asyncio.timeout(30), websockets.serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        settings = Settings(listen_port=0, forward=True, ca_dir=str(tmp_path / "ca"))
        app = build_live_app(settings, max_frames=1000)
        bridge = app.ui.bridge
        assert bridge is not None
        async with app.run_test(size=(120, 40)) as pilot:
            relay = await bridge.wait_ready()
            proxy = f"http://127.0.0.1:{relay.address[1]}"
            async with websockets.connect(f"ws://127.0.0.1:{port}/feed", proxy=proxy) as ws:
                await ws.send("via the proxy")
                assert await ws.recv() == "via the proxy"
            async with asyncio.timeout(5):
                while app.ui.store.total < 4:  # 1+1 data, 2 close
                    await pilot.pause(0.02)
            assert "forward proxy" in status(app)
            row = app.conns.row_cells(1, 120)[0][0]
            shown = row.split()[2]  # id, client, then the host and path the client asked for
            assert f"127.0.0.1:{port}/feed".startswith(shown.rstrip("…")) and "ws://" not in row
            info = app.ui.store.connections[1]
            assert info.path == f"ws://127.0.0.1:{port}/feed"
            assert info.upstream == f"ws://127.0.0.1:{port}/feed"
            assert '"via the proxy"' in "".join(t for t, _ in app.frames.row_cells(0, 120))
            await pilot.press("q")
            await pilot.pause()
        assert bridge.error is None

