"""``wsinspect view`` over a recording's index: more frames than the store keeps in memory
(10,000 frames, a 500-row window), paged from the recording; End, the filter over all frames,
selection and its payload, a recording that grows, the handshake read when asked for."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from textual.widgets import Input
from tui_helpers import cursor_line, detail, lines, settle, status

from wsinspect.cli import main
from wsinspect.events import ConnectionClosed, ConnectionOpened, Event, FrameSeen, MessageSeen
from wsinspect.recording.index import open_index
from wsinspect.recording.writer import Recorder
from wsinspect.tui.app import InspectorApp
from wsinspect.tui.paged import PagedStore, PagedView
from wsinspect.wire.frames import encode_frame
from wsinspect.wire.inspector import Inspector

T0 = 1_700_000_000.0
WINDOW = 500
HEADERS = (("Host", "127.0.0.1:9000"), ("Upgrade", "websocket"))


def echoes(start: int, n: int, inspectors: dict[str, Inspector], seq0: int) -> list[Event]:
    out: list[Event] = []
    seq = seq0
    for i in range(start, start + n):
        for d in ("c2s", "s2c"):
            data = encode_frame(1, b"echo %06d" % i, mask_key=b"abcd" if d == "c2s" else None)
            for f in inspectors[d].feed(data):
                seq += 1
                out.append(FrameSeen(1, seq, d, T0 + i * 0.001, f))
                assert f.message is not None
                out.append(MessageSeen(1, d, T0 + i * 0.001, f.message, f.message_no))
    return out


def write(path: Path, events: list[Event]) -> None:
    rec = Recorder.create(str(path))
    for e in events:
        rec.publish(e)
    rec.close()


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10,000 frames on one connection: "echo 000000" to "echo 004999", each way."""
    path = tmp_path_factory.mktemp("paged") / "rec.jsonl"
    inspectors = {"c2s": Inspector("c2s"), "s2c": Inspector("s2c")}
    opened = ConnectionOpened(1, T0, "127.0.0.1:40000", "/echo", "ws://127.0.0.1:9000/echo",
                              HEADERS, 101, (("Upgrade", "websocket"),))
    closed = ConnectionClosed(1, T0 + 6, "client", "close-handshake", 1000, "bye")
    write(path, [opened, *echoes(0, 5000, inspectors, 0), closed])
    index = open_index(str(path), warn=pytest.fail)
    index.update()
    index.close()
    return path


@asynccontextmanager
async def viewer(
    path: Path, *, start: bool = False
) -> AsyncIterator[tuple[InspectorApp, PagedStore, PagedView, object]]:
    """The app as ``wsinspect view`` makes it; ``start``: with its indexing thread (which
    indexes what is not indexed yet, then follows the file)."""
    index = open_index(str(path), warn=pytest.fail)
    store = PagedStore(index, WINDOW)
    view = PagedView(index)
    app = InspectorApp(store, view=view, source_name=str(path), progress=store.index_progress)
    if start:
        store.start()
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(app, pilot)
            yield app, store, view, pilot
    finally:
        view.close()
        store.close()
        index.close()


async def filter_by(app: InspectorApp, view: PagedView, pilot: object, query: str) -> None:
    await pilot.press("slash")  # type: ignore[attr-defined]
    app.query_one("#filter", Input).value = ""
    for ch in query:
        await pilot.press("space" if ch == " " else ch)  # type: ignore[attr-defined]
    await pilot.press("enter")  # type: ignore[attr-defined]
    for _ in range(400):  # bounded: the filter runs in a worker thread
        if view.progress is None and not view.pending:
            break
        await pilot.pause(0.02)  # type: ignore[attr-defined]
    await settle(app, pilot)


@pytest.mark.asyncio
async def test_the_viewer_opens_on_the_last_frames_and_keeps_only_its_window(recording: Path) -> None:
    async with viewer(recording) as (app, store, _view, pilot):
        assert store.total == 10_000
        assert "frames 10000" in status(app)
        assert "echo 004999" in cursor_line(app.frames)
        await pilot.press("home")  # type: ignore[attr-defined]
        await settle(app, pilot)
        assert "echo 000000" in cursor_line(app.frames)
        for _ in range(30):
            await pilot.press("pagedown")  # type: ignore[attr-defined]
        await settle(app, pilot)
        assert "echo 000" in cursor_line(app.frames)
        assert store.kept <= WINDOW


@pytest.mark.asyncio
async def test_end_jumps_to_the_last_frame_from_the_first(recording: Path) -> None:
    async with viewer(recording) as (app, store, _view, pilot):
        await pilot.press("home")  # type: ignore[attr-defined]
        await settle(app, pilot)
        before = store.pages_read
        await pilot.press("end")  # type: ignore[attr-defined]
        await settle(app, pilot)
        line = cursor_line(app.frames)
        assert "echo 004999" in line and "←" in line
        assert store.pages_read - before <= 2  # the last page, not everything in between
        assert store.kept <= WINDOW


@pytest.mark.asyncio
async def test_the_filter_finds_a_frame_far_from_the_window_and_shows_its_payload(
    recording: Path,
) -> None:
    async with viewer(recording) as (app, store, view, pilot):
        # The window holds the last frames; the match is near the start of the recording.
        await filter_by(app, view, pilot, "echo 000042")
        assert len(view) == 2
        assert "shown 2" in status(app)
        shown = [line for line in lines(app.frames)[1:] if line]
        assert len(shown) == 2 and all("echo 000042" in line for line in shown)
        await pilot.press("home")  # type: ignore[attr-defined]
        await settle(app, pilot)
        text = detail(app)
        assert "Frame 85 of connection #1" in text and "echo 000042" in text
        await filter_by(app, view, pilot, "dir:s2c re:0049[0-9]9$")
        assert len(view) == 10
        assert "echo 004999" in cursor_line(app.frames)
        assert store.kept <= WINDOW


@pytest.mark.asyncio
async def test_the_handshake_is_read_from_the_recording_when_asked_for(recording: Path) -> None:
    async with viewer(recording) as (app, _store, _view, pilot):
        await pilot.press("h")  # type: ignore[attr-defined]
        await settle(app, pilot)
        text = detail(app)
        assert "GET /echo HTTP/1.1" in text and "Host: 127.0.0.1:9000" in text
        assert "closed by" in text


def growing(recording: Path, tmp_path: Path) -> tuple[Path, Callable[[], None]]:
    """A copy of ``recording`` without its index, and a function that appends 10 more echoes
    to it (20 frames), as lines of the recorder."""
    path = tmp_path / "growing.jsonl"
    path.write_bytes(recording.read_bytes())
    more = tmp_path / "more.jsonl"
    inspectors = {"c2s": Inspector("c2s"), "s2c": Inspector("s2c")}
    echoes(0, 5000, inspectors, 0)  # the inspectors' message numbers continue from there
    write(more, echoes(5000, 10, inspectors, 10_000))

    def append() -> None:
        with open(path, "ab") as f:  # the recorder's lines, after its header
            f.write(more.read_bytes().split(b"\n", 1)[1])

    return path, append


@pytest.mark.asyncio
async def test_the_viewer_indexes_a_new_recording_and_follows_what_is_appended(
    recording: Path, tmp_path: Path
) -> None:
    path, append = growing(recording, tmp_path)
    async with viewer(path, start=True) as (app, store, _view, pilot):
        for _ in range(500):  # bounded wait for the indexing thread
            if store.total == 10_000 and not store.pending:
                break
            await pilot.pause(0.02)  # type: ignore[attr-defined]
        await settle(app, pilot)
        assert store.total == 10_000
        append()
        for _ in range(500):  # the thread polls the file's size
            if store.total == 10_020:
                break
            await pilot.pause(0.02)  # type: ignore[attr-defined]
        await settle(app, pilot)
        assert store.total == 10_020
        assert "echo 005009" in cursor_line(app.frames)  # following the tail
        assert store.kept <= WINDOW


def test_view_index_only_builds_the_index_and_says_so(
    recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "copy.jsonl"
    path.write_bytes(recording.read_bytes())
    assert main(["view", "--index-only", str(path)]) == 0
    out = capsys.readouterr().out
    assert "10000 rows indexed (10000 new" in out and str(path) + ".wsidx" in out
    assert main(["view", "--index-only", str(path)]) == 0
    assert "(0 new" in capsys.readouterr().out
