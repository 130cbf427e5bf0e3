"""Real python-socketio traffic through the proxy, seen by the consumers of decoded messages:
the JSON log carries ``"decoded"``, ``stats`` counts events by name, ``wsinspect view``
filters ``sio:event=chat`` over the recording's index."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import socketio
import trio
from aiohttp import web
from decoder_live import in_asyncio, wait_closed
from loopback import Collector, Proxy

from wsinspect.compose import serve_proxy
from wsinspect.hub import Hub
from wsinspect.recording.index import open_index
from wsinspect.recording.reader import read_recording
from wsinspect.recording.writer import Recorder
from wsinspect.settings import Settings, Upstream
from wsinspect.sinks.console import ConsoleSink
from wsinspect.sinks.decoded import new_decoding
from wsinspect.sinks.stats import Stats
from wsinspect.tui.paged import PagedStore, PagedView
from wsinspect.tui.store import FrameFilter

pytestmark = pytest.mark.trio


async def _session(start: Any) -> None:
    sio = socketio.AsyncServer(async_mode="aiohttp")
    app = web.Application()
    sio.attach(app)

    @sio.on("chat")
    async def chat(sid: str, text: str) -> dict[str, str]:
        await sio.emit("said", {"text": text}, to=sid)
        return {"echo": text}

    @sio.on("typing")
    async def typing(sid: str) -> None:
        return None

    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        proxy: Proxy = trio.from_thread.run(start, f"ws://127.0.0.1:{runner.addresses[0][1]}")
        client = socketio.AsyncClient()
        await client.connect(f"http://127.0.0.1:{proxy.port}", transports=["websocket"])
        for text in ("one", "two", "three"):
            await client.emit("typing")
            assert await client.call("chat", text, timeout=5) == {"echo": text}
        await client.disconnect()
        await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()


async def test_log_stats_and_view_see_socketio_events(nursery: trio.Nursery, tmp_path: Path) -> None:
    out = io.StringIO()
    console = ConsoleSink(out, fmt="json", decoding=new_decoding())
    collected = Collector()
    started: list[Proxy] = []

    async def start(upstream: str) -> Proxy:
        hub = Hub()
        hub.subscribe(collected)
        hub.subscribe(console)
        relay = await nursery.start(serve_proxy, Settings(listen_port=0, upstream=Upstream.parse(upstream)), hub)
        started.append(Proxy(relay, collected))
        return started[0]

    with trio.fail_after(20):
        await in_asyncio(lambda: _session(start))
        await wait_closed(collected)
    console.flush()

    # The JSON log: message lines carry the decoded view.
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    decoded = [d["decoded"] for d in lines if d["type"] == "message" and "decoded" in d]
    assert sum(1 for d in decoded if d["fields"].get("event") == "chat") == 3
    assert all(d["protocol"] == "socket.io" for d in decoded)
    assert not any("decoded" in d for d in lines if d["type"] == "frame")

    # stats: events by name.
    stats = Stats(new_decoding())
    for event in collected.events:
        stats.publish(event)
    total = stats.total()["decoded"]["socket.io"]
    assert total["by_field"]["event"] == {"chat": 3, "said": 3, "typing": 3}
    assert total["errors"] == 0

    # view: the filter over the recording's index.
    path = tmp_path / "rec.jsonl"
    rec = Recorder.create(str(path))
    for event in collected.events:
        rec.publish(event)
    rec.close()
    assert read_recording(str(path)).size > 0

    # cat: a summary line after each decoded message; --grep finds them; JSON carries them.
    def cat(*argv: str) -> list[str]:
        done = subprocess.run([sys.executable, "-m", "wsinspect", "cat", str(path), *argv],
                              capture_output=True, text=True, timeout=30, check=True)
        return done.stdout.splitlines()

    summaries = [line for line in cat() if " ↳ " in line]
    assert sum('socket.io event "chat"' in line for line in summaries) == 3
    assert all('"chat"' in line for line in cat("--grep", "event .chat"))
    assert len(cat("--grep", 'event "chat"')) == 3
    assert len(cat("--no-decode", "--grep", 'event "chat"')) == 0
    json_decoded = [json.loads(line)["decoded"] for line in cat("--log-format", "json")
                    if '"decoded"' in line]
    assert sum(d["fields"].get("event") == "chat" for d in json_decoded) == 3
    index = open_index(str(path), warn=pytest.fail)
    index.update()
    store = PagedStore(index, 500)
    store.use_decoding(new_decoding())
    store.drain()
    view = PagedView(index)
    try:
        view.rebuild(store, FrameFilter.parse("sio:event=chat"))
        deadline = time.monotonic() + 10
        while (view.progress is not None or view.pending) and time.monotonic() < deadline:
            view.update(store)
            await trio.sleep(0.01)
        payloads = [store.frame(i).frame.payload for i in view.indices]
        assert len(payloads) == 3 and all(b'"chat"' in p for p in payloads)
    finally:
        view.close()
        store.close()
        index.close()
