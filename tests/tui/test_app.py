"""Drive the TUI with keys (Textual's Pilot) and check what it shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.events import MouseScrollUp
from tui_helpers import cursor_line, detail, lines, make_app, settle, status
from tui_sample import T0, Session

from wsinspect.events import ConnectionOpened, Event
from wsinspect.recording.reader import read_recording
from wsinspect.recording.writer import Recorder
from wsinspect.tui.app import InspectorApp
from wsinspect.tui.store import EventStore

SIZE = (120, 40)


def more_frames(n: int, start: float) -> list[Event]:
    out: list[Event] = []
    session = Session(2, out)
    session.seq = 1000
    for i in range(n):
        session.frame("s2c", start + i * 0.001, 1, f"late {i}".encode())
    return [e for e in out if e.type == "frame"]


@pytest.mark.asyncio
async def test_the_newest_frame_is_selected_and_detailed_at_start(events: list[Event]) -> None:
    app = make_app(events)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.frames.follow
        assert '"{\\"tick\\":29,\\"price\\":129.5}"' in cursor_line(app.frames)
        assert "Frame 30 of connection #2" in detail(app)


@pytest.mark.asyncio
async def test_moving_up_selects_the_previous_frame_and_shows_its_header_fields(events: list[Event]) -> None:
    app = make_app(events)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("home")
        await pilot.press("down")  # frame 2: the server's "hello"
        await pilot.pause()
        assert "← text" in cursor_line(app.frames)
        shown = detail(app)
        assert "Frame 2 of connection #1" in shown
        assert "mask key   (none)" in shown
        assert "header     81 05" in shown
        await pilot.press("up")
        await pilot.pause()
        shown = detail(app)
        assert "mask key   1a2b3c4d" in shown
        assert "header     81 85 1a 2b 3c 4d" in shown
        assert "MASK=1" in shown


@pytest.mark.asyncio
async def test_clicking_a_row_selects_it(events: list[Event]) -> None:
    app = make_app(events)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("home")
        await pilot.click("#frames", offset=(5, 3))  # header line, then rows 0, 1, 2
        await pilot.pause()
        assert app.frames.cursor_row == 2
        assert "Frame 3 of connection #1" in detail(app)


@pytest.mark.asyncio
async def test_selecting_a_connection_shows_only_its_frames(events: list[Event]) -> None:
    app = make_app(events)
    async with app.run_test(size=SIZE) as pilot:
        app.conns.focus()
        await pilot.press("down")  # row 0 is "all connections"
        await pilot.pause()
        assert len(app.ui.view) == 14
        assert all("#1" in line for line in lines(app.frames)[1:15])
        await pilot.press("a")
        await pilot.pause()
        assert len(app.ui.view) == 44


@pytest.mark.asyncio
async def test_filter_bar_shows_only_matching_frames(events: list[Event]) -> None:
    app = make_app(events)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash")
        await pilot.press(*"op:ping,pong", "enter")
        await pilot.pause()
        shown = [line for line in lines(app.frames)[1:] if line]
        assert len(shown) == 2
        assert "ping" in shown[0] and "pong" in shown[1]
        assert "shown 2" in status(app)
        assert app.frames.has_focus


@pytest.mark.asyncio
async def test_a_bad_filter_is_reported_and_the_view_is_unchanged(events: list[Event]) -> None:
    app = make_app(events)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("slash", *"re:(", "enter")
        await pilot.pause()
        assert len(app.ui.view) == 44
        assert any("re:(" in n.message for n in app._notifications)
        assert app.query_one("#filter").has_class("error")


@pytest.mark.asyncio
async def test_payload_toggles_between_text_json_and_hex(events: list[Event]) -> None:
    app = make_app(events)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", *"subscribe", "enter")
        await pilot.pause()
        assert 'payload as text' in detail(app)
        assert '{"op":"subscribe"' in detail(app)
        await pilot.press("j")
        assert 'payload as JSON' in detail(app)
        assert '  "topics": [\n    "a",' in detail(app)
        await pilot.press("x")
        shown = detail(app)
        assert "payload as hex" in shown
        assert '00000000  7b 22 6f 70 22 3a 22 73  75 62 73 63 72 69 62 65  |{"op":"subscribe|' in shown
        await pilot.press("t")
        assert 'payload as text' in detail(app)


@pytest.mark.asyncio
async def test_json_mode_says_when_a_payload_is_not_json(events: list[Event]) -> None:
    app = make_app(events)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("home", "j")
        assert "payload: not JSON" in detail(app)
        assert "hello" in detail(app)


@pytest.mark.asyncio
async def test_close_frame_detail_explains_the_code(events: list[Event]) -> None:
    app = make_app(events)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", *"op:close", "enter")
        await settle(app, pilot)
        await pilot.press("home")
        await pilot.pause()
        assert "close      1000 — normal closure" in detail(app)
        assert "reason     'bye'" in detail(app)


@pytest.mark.asyncio
async def test_violations_show_their_rfc_section_and_marker(events: list[Event]) -> None:
    app = make_app(events)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", *"is:bad", "enter", "home")
        assert " ✗ " in cursor_line(app.frames)
        assert "NO: received and not passed on" in detail(app)
        await pilot.press("down")
        assert " ! " in cursor_line(app.frames)
        assert "RFC 6455 §8.1 (client): text frame payload is not valid UTF-8" in detail(app)
        assert "1007" in detail(app)


@pytest.mark.asyncio
async def test_message_view_reassembles_fragments(events: list[Event]) -> None:
    app = make_app(events)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", *"frag-two", "enter")
        await settle(app, pilot)  # the filter applied and the table redrawn, however loaded
        await pilot.press("home", "m")
        await pilot.pause()
        shown = detail(app)
        assert "Message #4 of connection #1" in shown
        assert "frames     3" in shown
        assert "frag-one frag-two frag-end" in shown
        await pilot.press("m")
        await pilot.pause()
        assert "Frame 6 of connection #1" in detail(app)


@pytest.mark.asyncio
async def test_handshake_view_shows_request_and_response_headers(events: list[Event]) -> None:
    app = make_app(events)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("home", "h")
        shown = detail(app)
        assert "GET /chat HTTP/1.1" in shown
        assert "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" in shown
        assert "HTTP/1.1 101" in shown
        assert "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in shown
        assert "closed by  client (close-handshake)" in shown


@pytest.mark.asyncio
async def test_new_frames_are_followed_by_default(events: list[Event]) -> None:
    app = make_app(events)
    async with app.run_test(size=SIZE) as pilot:
        for event in more_frames(50, T0 + 5):
            app.ui.store.publish(event)
        await settle(app, pilot)
        assert app.ui.store.total == 94
        assert app.frames.follow
        assert '"late 49"' in cursor_line(app.frames)
        assert "late 49" in detail(app)
        assert "following" in status(app)


@pytest.mark.asyncio
async def test_moving_up_stops_following_and_the_selection_does_not_jump(events: list[Event]) -> None:
    app = make_app(events)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("up", "up")
        await pilot.pause()
        before = cursor_line(app.frames)
        shown_before = lines(app.frames)
        assert "tick\\\":27" in before
        for event in more_frames(40, T0 + 5):
            app.ui.store.publish(event)
        await settle(app, pilot)
        assert app.ui.store.total == 84
        assert not app.frames.follow
        assert cursor_line(app.frames) == before
        assert lines(app.frames) == shown_before  # nothing on screen moved
        assert '"tick":27' in detail(app)
        assert "40 new ↓" in status(app)
        await pilot.press("f")
        await pilot.pause()
        assert app.frames.follow
        assert '"late 39"' in cursor_line(app.frames)
        assert "following" in status(app)


@pytest.mark.asyncio
async def test_scrolling_up_with_the_mouse_stops_following(events: list[Event]) -> None:
    app = make_app(events)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.frames
        top = table.scroll_y
        # The wheel, as the driver reports it over the frames table.
        table.post_message(MouseScrollUp(table, 5, 5, 0, -1, 0, False, False, False))
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        assert not table.follow
        assert table.scroll_y < top
        for event in more_frames(5, T0 + 5):
            app.ui.store.publish(event)
        await settle(app, pilot)
        assert table.scroll_y < top  # still where the user scrolled to
        assert "5 new ↓" in status(app)


@pytest.mark.asyncio
async def test_selection_stays_on_its_frame_while_old_frames_are_evicted(events: list[Event]) -> None:
    app = make_app(events, max_frames=50)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("up")
        await pilot.pause()
        selected = app.frames.selected
        for event in more_frames(30, T0 + 5):
            app.ui.store.publish(event)
        await settle(app, pilot)
        assert app.ui.store.dropped > 0
        assert app.frames.selected == selected
        assert "tick\\\":28" in cursor_line(app.frames)
        assert "older frames dropped from view" in status(app)


@pytest.mark.asyncio
async def test_save_writes_the_selected_payload_to_a_file(events: list[Event], tmp_path: Path) -> None:
    app = make_app(events)
    target = tmp_path / "payload.bin"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", *"op:binary", "enter", "home", "s")
        await pilot.pause()
        prompt = app.screen.query_one("#prompt-input")
        prompt.value = str(target)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
    assert target.read_bytes() == bytes(range(40))


@pytest.mark.asyncio
async def test_connection_commands_are_refused_when_read_only(events: list[Event]) -> None:
    app = make_app(events)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        for key in ("k", "K", "c"):
            app.clear_notifications()
            await pilot.press(key)
            await pilot.pause()
            assert any("Read-only" in n.message for n in app._notifications), key


@pytest.mark.asyncio
async def test_help_screen_lists_the_keys(events: list[Event]) -> None:
    app = make_app(events)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        await pilot.pause()
        assert type(app.screen).__name__ != "HelpScreen"


async def wait_loaded(app: InspectorApp, pilot: object) -> None:
    for _ in range(200):
        if not app.ui.loading and not app.ui.store.pending:
            break
        await pilot.pause(0.02)  # type: ignore[attr-defined]
    await pilot.pause(0.1)  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_view_opens_a_recording_file(events: list[Event], tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    recorder = Recorder.create(str(path), redact=False)
    for event in events:
        recorder.publish(event)
    recorder.close()
    recording = read_recording(str(path))
    app = InspectorApp(EventStore(live=False), source=recording.events, source_name=str(path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        assert app.ui.store.total == 44
        assert "(read-only)" in status(app)
        assert "session.jsonl" in status(app)
        assert '"{\\"tick\\":29,\\"price\\":129.5}"' in cursor_line(app.frames)
        await pilot.press("home")
        assert "hello" in detail(app)


@pytest.mark.asyncio
async def test_view_opens_a_chrome_har_file(tmp_path: Path) -> None:
    har = {
        "log": {
            "version": "1.2",
            "creator": {"name": "WebInspector", "version": "537.36"},
            "entries": [
                {
                    "startedDateTime": "2023-11-14T22:13:20.000Z",
                    "_resourceType": "websocket",
                    "request": {"method": "GET", "url": "wss://example.com/socket",
                                "headers": [{"name": "Origin", "value": "https://example.com"}]},
                    "response": {"status": 101, "headers": [{"name": "Upgrade", "value": "websocket"}]},
                    "_webSocketMessages": [
                        {"type": "send", "time": T0 + 1, "opcode": 1, "data": '{"hi":1}'},
                        {"type": "receive", "time": T0 + 2, "opcode": 1, "data": '{"hi":2}'},
                        {"type": "receive", "time": T0 + 3, "opcode": 2, "data": "AAEC"},
                    ],
                }
            ],
        }
    }
    path = tmp_path / "devtools.har"
    path.write_text(json.dumps(har))
    recording = read_recording(str(path))
    app = InspectorApp(EventStore(live=False), source=recording.events, source_name=str(path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        assert app.ui.store.total == 3
        assert isinstance(app.ui.store.connections[1].opened, ConnectionOpened)
        assert "/socket" in lines(app.conns)[2]
        assert "0x000102" in cursor_line(app.frames)
        await pilot.press("up", "j")
        assert '"hi": 2' in detail(app)


@pytest.mark.asyncio
async def test_a_tick_while_the_app_closes_finds_nothing_to_draw_and_does_not_fail(
    events: list[Event],
) -> None:
    """Textual removes the screen's widgets before it stops the app's timers: a last tick
    must not raise (it failed a run under load with NoMatches '#status')."""
    app = make_app(events)
    async with app.run_test(size=SIZE) as pilot:
        await app.query_one("#status").remove()
        await pilot.pause()
        app.ui.last_rate_sample = 0.0  # the status bar is due
        app.tick()
