"""``wsinspect mock --tui``: the scripted server's traffic in the terminal UI."""

from __future__ import annotations

import asyncio
import textwrap
from functools import partial
from pathlib import Path

import pytest
import websockets

from wsinspect.commands.mock import build_mock_app
from wsinspect.script.loader import ScriptFile
from wsinspect.script.mock import mock_settings, serve_mock
from wsinspect.settings import Settings


@pytest.mark.asyncio
async def test_a_mock_in_the_tui_shows_the_clients_messages_and_its_answers(tmp_path: Path) -> None:
    path = tmp_path / "answer.py"
    path.write_text(textwrap.dedent("""
        def on_message(conn, msg):
            return f"mock says {msg.text}"
    """))
    script = ScriptFile(str(path))
    script.load()
    settings = mock_settings(Settings(listen_port=0), [script])
    app = build_mock_app(settings, partial(serve_mock, settings, scripts=[script]), 1000)
    assert app.ui.bridge is not None
    async with asyncio.timeout(30), app.run_test(size=(120, 40)) as pilot:
        relay = await app.ui.bridge.wait_ready()
        host, port = relay.address[:2]
        async with websockets.connect(f"ws://{host}:{port}/m") as ws:
            await ws.send("hi")
            assert await ws.recv() == "mock says hi"
        while app.ui.store.total < 4:  # hi, the answer, the two close frames
            await pilot.pause(0.02)
        shown = ["".join(t for t, _ in app.frames.row_cells(i, 120)) for i in range(4)]
        assert any('"hi"' in row for row in shown)
        assert any('"mock says hi"' in row for row in shown)
        assert "/m" in app.conns.row_cells(1, 120)[0][0]
        assert app.ui.store.connections[1].upstream == "ws://answer.py/m"  # what served it
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
