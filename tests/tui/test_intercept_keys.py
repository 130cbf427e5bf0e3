"""Breakpoints, held messages and injection from the TUI's keys, against the real relay in
Trio guest mode with real WebSocket peers on loopback (and, read-only, from recorded events)."""

from __future__ import annotations

import asyncio
import contextlib
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websockets
from textual.widgets import Footer, Input, OptionList, Select, Static, TextArea
from tui_helpers import cursor_line, detail, lines, make_app, settle, status
from tui_sample import T0, Session, sample_events

from wsinspect.events import ConnectionClosed, Event, FrameSeen, MessageAction
from wsinspect.settings import Settings, Upstream
from wsinspect.tui.app import InspectorApp
from wsinspect.tui.intercept_screens import BreakpointScreen, EditScreen, InjectScreen
from wsinspect.tui.live import build_live_app
from wsinspect.tui.screens import KEYS

SIZE = (120, 40)


@dataclass
class Live:
    app: InspectorApp
    pilot: Any
    client: Any  # the websockets client connection, through the relay
    upstream: asyncio.Queue[str | bytes]  # what the upstream server received

    async def wait_for(self, predicate: Any, seconds: float = 5.0) -> None:
        async with asyncio.timeout(seconds):
            while not predicate():
                await self.pilot.pause(0.02)

    async def received(self, seconds: float = 5.0) -> str | bytes:
        async with asyncio.timeout(seconds):
            return await self.upstream.get()

    async def nothing_received(self, seconds: float = 0.2) -> None:
        await self.pilot.pause(seconds)
        assert self.upstream.empty()

    def notifications(self) -> list[str]:
        return [n.message for n in self.app._notifications]

    async def arm(self, spec: str) -> None:
        """Arm a breakpoint with ``b``, typing ``spec``, and wait until the relay has it."""
        await self.pilot.press("b")
        await self.pilot.pause()
        assert isinstance(self.app.screen, BreakpointScreen)
        field = self.app.screen.query_one("#break-input", Input)
        field.value = spec
        await self.pilot.press("enter")
        await self.wait_for(lambda: any(b["spec"] == spec for b in self.app.ui.breakpoints))

    async def held(self, count: int = 1) -> None:
        """Wait until ``count`` messages are held and drawn, the newest selected."""
        await self.wait_for(lambda: len(self.app.ui.store.held) >= count)
        await settle(self.app, self.pilot)
        self.app.frames.action_last()
        await self.pilot.pause()


@contextlib.asynccontextmanager
async def live() -> AsyncIterator[Live]:
    """The live app, an upstream that queues what it receives, a client connected through."""
    queue: asyncio.Queue[str | bytes] = asyncio.Queue()

    async def upstream(ws: Any) -> None:
        async for message in ws:
            queue.put_nowait(message)

    async with asyncio.timeout(30), websockets.serve(upstream, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        settings = Settings(listen_port=0, upstream=Upstream.parse(f"ws://127.0.0.1:{port}"))
        app = build_live_app(settings, max_frames=1000)
        assert app.ui.bridge is not None
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            relay = await app.ui.bridge.wait_ready()
            host, lport = relay.address[:2]
            async with websockets.connect(f"ws://{host}:{lport}/i") as client:
                session = Live(app, pilot, client, queue)
                await session.wait_for(lambda: 1 in app.ui.store.connections)
                yield session
            await pilot.press("q")


# -- breakpoints ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_b_arms_a_breakpoint_a_bad_one_is_explained_and_delete_removes_it() -> None:
    async with live() as s:
        await s.pilot.press("b")
        await s.pilot.pause()
        screen = s.app.screen
        assert isinstance(screen, BreakpointScreen)
        assert "(none armed)" in str(screen.query_one("#break-list", OptionList).get_option_at_index(0).prompt)
        await s.pilot.press(*"re:(", "enter")
        await s.pilot.pause()
        assert s.app.screen is screen  # still open, with the parser's words
        assert "invalid breakpoint: match '(':" in str(screen.query_one("#break-error", Static).content)
        await s.pilot.press("backspace", "backspace", "backspace", "backspace", *"dir:c2s order", "enter")
        await s.wait_for(lambda: bool(s.app.ui.breakpoints))
        assert not isinstance(s.app.screen, BreakpointScreen)
        assert s.app.ui.breakpoints[0]["spec"] == "dir:c2s order"
        assert any("breakpoint 1 armed: dir:c2s order" in m for m in s.notifications())
        await s.pilot.press("b")
        await s.pilot.pause()
        options = s.app.screen.query_one("#break-list", OptionList)
        assert "#1  dir:c2s order" in str(options.get_option_at_index(0).prompt)
        await s.pilot.press("tab", "delete")
        await s.wait_for(lambda: not s.app.ui.breakpoints)
        await s.pilot.pause()
        assert "(none armed)" in str(options.get_option_at_index(0).prompt)
        await s.pilot.press("escape")


@pytest.mark.asyncio
async def test_the_breakpoint_editor_starts_with_the_selected_connection() -> None:
    async with live() as s:
        s.app.conns.focus()
        await s.pilot.press("down")
        await s.pilot.press("b")
        await s.pilot.pause()
        assert s.app.screen.query_one("#break-input", Input).value == "#1 "
        await s.pilot.press("escape")


# -- held messages -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_held_message_has_a_row_and_a_status_count_and_enter_forwards_it() -> None:
    async with live() as s:
        await s.arm("order")
        await s.client.send("hello")
        assert await s.received() == "hello"
        await s.client.send("order 42")
        await s.held()
        row = cursor_line(s.app.frames)
        assert "held #1" in row and " ⏸ " in row and '"order 42"' in row
        assert "breakpoint 1" in row
        assert "⏸ 1 held, oldest" in status(s.app)
        assert "Held message #1 of connection #1" in detail(s.app)
        assert "order 42" in detail(s.app)
        await s.nothing_received()
        await s.pilot.press("enter")
        assert await s.received() == "order 42"
        await s.wait_for(lambda: not s.app.ui.store.held)
        await settle(s.app, s.pilot)
        assert "held" not in status(s.app)
        shown = "\n".join(lines(s.app.frames))
        assert " ▶ " in shown and "→ resumed (tui)" in shown  # the held row says what became of it
        assert "resumed #1" in shown


@pytest.mark.asyncio
async def test_e_edits_a_held_text_message_and_the_peer_gets_the_new_text() -> None:
    async with live() as s:
        await s.arm("order")
        await s.client.send("order 42")
        await s.held()
        await s.pilot.press("e")
        await s.pilot.pause()
        assert isinstance(s.app.screen, EditScreen)
        area = s.app.screen.query_one("#edit-text", TextArea)
        assert area.text == "order 42"
        area.text = "order 43 (edited)"
        await s.pilot.press("ctrl+s")
        assert await s.received() == "order 43 (edited)"
        await s.wait_for(lambda: any(
            getattr(e, "written", None) == "edited"
            for e in map(s.app.ui.store.row, range(s.app.ui.store.base, s.app.ui.store.total))))
        await settle(s.app, s.pilot)
        shown = "\n".join(lines(s.app.frames))
        assert "edited #1" in shown and '"order 42" → "order 43 (edited)"' in shown
        assert " ✎ " in cursor_line(s.app.frames)  # the frame the proxy wrote
        assert "written    by the proxy (edited message)" in detail(s.app)


@pytest.mark.asyncio
async def test_a_held_binary_message_is_edited_as_hex_or_from_a_file(tmp_path: Path) -> None:
    async with live() as s:
        await s.arm("op:binary")
        await s.client.send(b"\x01\x02\x03")
        await s.held()
        await s.pilot.press("e")
        await s.pilot.pause()
        area = s.app.screen.query_one("#edit-text", TextArea)
        assert area.text == "01 02 03"
        area.text = "0a 0b zz"
        await s.pilot.press("ctrl+s")
        await s.pilot.pause()
        assert "hex: 'z' is not a hex digit" in str(s.app.screen.query_one("#edit-error", Static).content)
        area.text = "0a 0b\n0c"
        await s.pilot.press("ctrl+s")
        assert await s.received() == b"\x0a\x0b\x0c"
        path = tmp_path / "payload.bin"
        path.write_bytes(b"from a file")
        await s.client.send(b"\xff")
        await s.held()
        await s.pilot.press("e")
        await s.pilot.pause()
        s.app.screen.query_one("#edit-file", Input).value = str(path)
        await s.pilot.press("ctrl+s")
        assert await s.received() == b"from a file"


@pytest.mark.asyncio
async def test_ctrl_o_edits_the_held_message_in_editor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "fake-editor"
    script.write_text('#!/bin/sh\nsed -i "s/42/44/" "$1"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("EDITOR", str(script))
    async with live() as s:
        monkeypatch.setattr(s.app, "suspend", contextlib.nullcontext)  # no terminal to hand over
        await s.arm("order")
        await s.client.send("order 42")
        await s.held()
        await s.pilot.press("e")
        await s.pilot.pause()
        await s.pilot.press("ctrl+o")
        await s.pilot.pause()
        assert s.app.screen.query_one("#edit-text", TextArea).text == "order 44"
        await s.pilot.press("ctrl+s")
        assert await s.received() == "order 44"


@pytest.mark.asyncio
async def test_d_drops_a_held_message_and_the_next_one_passes() -> None:
    async with live() as s:
        await s.arm("order")
        await s.client.send("order 1")
        await s.held()
        await s.pilot.press("d")
        await s.wait_for(lambda: not s.app.ui.store.held)
        await s.client.send("next")
        assert await s.received() == "next"  # "order 1" never arrived
        await settle(s.app, s.pilot)
        shown = "\n".join(lines(s.app.frames))
        assert "dropped #1" in shown and "→ dropped (tui)" in shown


@pytest.mark.asyncio
async def test_shift_a_forwards_every_held_message_in_order() -> None:
    async with live() as s:
        await s.arm("order")
        await s.client.send("order 1")
        await s.client.send("order 2")  # waits behind the first
        await s.held()
        await s.pilot.press("A")
        assert await s.received() == "order 1"
        await s.held()  # the second reaches the breakpoint once the first has gone
        await s.pilot.press("A")
        assert await s.received() == "order 2"
        await s.wait_for(lambda: not s.app.ui.store.held)


@pytest.mark.asyncio
async def test_held_keys_explain_themselves_on_a_row_that_is_not_held() -> None:
    async with live() as s:
        await s.client.send("hello")
        await s.received()
        await settle(s.app, s.pilot)
        for key in ("enter", "e", "d"):
            s.app.clear_notifications()
            await s.pilot.press(key)
            await s.pilot.pause()
            assert any("No message is held" in m for m in s.notifications()), key


@pytest.mark.asyncio
async def test_closing_the_connection_ends_its_held_messages() -> None:
    async with live() as s:
        await s.arm("order")
        await s.client.send("order 1")
        await s.held()
        await s.pilot.press("k")  # (a close frame from the client would wait behind it)
        await s.wait_for(lambda: s.app.ui.store.connections[1].state == "closed")
        await settle(s.app, s.pilot)
        assert not s.app.ui.store.held
        assert "held" not in status(s.app)
        held_line = next(line for line in lines(s.app.frames) if "held #1" in line)
        assert " ✗ " in held_line  # never forwarded: the store ends it at the close (or the
        # relay says "dropped" first, whichever comes)
        assert "→ connection closed" in held_line or "→ dropped" in held_line


# -- injecting -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_i_injects_a_text_message_to_the_client_then_a_close() -> None:
    async with live() as s:
        await s.client.send("hello")
        await s.received()
        await settle(s.app, s.pilot)
        await s.pilot.press("i")
        await s.pilot.pause()
        screen = s.app.screen
        assert isinstance(screen, InjectScreen)
        screen.query_one("#inject-to", Select).value = "client"
        screen.query_one("#inject-payload", TextArea).text = "from the proxy"
        await s.pilot.press("ctrl+s")
        async with asyncio.timeout(5):
            assert await s.client.recv() == "from the proxy"
        await s.wait_for(lambda: any(
            isinstance(e, MessageAction) and e.action == "injected"
            for e in map(s.app.ui.store.row, range(s.app.ui.store.base, s.app.ui.store.total))))
        await settle(s.app, s.pilot)
        shown = "\n".join(lines(s.app.frames))
        assert "injected" in shown and '"from the proxy"' in shown
        assert " + " in shown  # the frame the proxy wrote
        await s.pilot.press("i")
        await s.pilot.pause()
        screen = s.app.screen
        screen.query_one("#inject-to", Select).value = "client"
        screen.query_one("#inject-kind", Select).value = "close"
        await s.pilot.pause()
        screen.query_one("#inject-code", Input).value = "1005"
        await s.pilot.press("ctrl+s")
        await s.pilot.pause()
        assert s.app.screen is screen
        assert "close code 1005 may not be sent" in str(screen.query_one("#inject-error", Static).content)
        screen.query_one("#inject-code", Input).value = "4000"
        screen.query_one("#inject-reason", Input).value = "proxy says bye"
        await s.pilot.press("ctrl+s")
        with pytest.raises(websockets.ConnectionClosed) as info:
            async with asyncio.timeout(5):
                await s.client.recv()
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (4000, "proxy says bye")


@pytest.mark.asyncio
async def test_inject_defaults_to_the_upstream_and_reaches_it() -> None:
    async with live() as s:
        await s.client.send("hello")
        await s.received()
        await settle(s.app, s.pilot)
        await s.pilot.press("i")
        await s.pilot.pause()
        s.app.screen.query_one("#inject-payload", TextArea).text = "to the server"
        await s.pilot.press("ctrl+s")
        assert await s.received() == "to the server"


@pytest.mark.asyncio
async def test_a_relay_error_from_inject_is_shown() -> None:
    async with live() as s:
        await s.client.send("hello")
        await s.received()
        await s.client.close()
        await s.wait_for(lambda: s.app.ui.store.connections[1].state == "closed")
        await settle(s.app, s.pilot)
        await s.pilot.press("i")
        await s.pilot.pause()
        s.app.screen.query_one("#inject-payload", TextArea).text = "too late"
        await s.pilot.press("ctrl+s")
        await s.wait_for(lambda: any("no open connection #1" in m for m in s.notifications()))


# -- read-only, recorded actions, footer and help ------------------------------------------


def recorded_actions() -> list[Event]:
    """The sample session, then on connection 2: a message held and still held, one held and
    edited (with the frame the proxy wrote) and one injected."""
    out = sample_events()
    out.append(MessageAction(2, T0 + 2.0, "held", "c2s", 1, b"order 1", 7, 1, 1, by="breakpoint 1"))
    out.append(MessageAction(2, T0 + 2.1, "held", "c2s", 1, b"order 2", 7, 2, 2, by="breakpoint 1"))
    out.append(MessageAction(2, T0 + 2.2, "edited", "c2s", 1, b"order 3", 7, 2, 2, original=b"order 2",
                             by="tui"))
    session = Session(2, out)
    session.seq = 100
    session.frame("c2s", T0 + 2.2, 1, b"order 3")
    next(e for e in reversed(out) if isinstance(e, FrameSeen)).written = "edited"
    out.append(MessageAction(2, T0 + 2.3, "injected", "s2c", 8, b"", 6, close_code=4000,
                             close_reason="bye", by="ctl"))
    return out


@pytest.mark.asyncio
async def test_recorded_actions_show_read_only_and_the_keys_say_so() -> None:
    app = make_app(recorded_actions())
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(app, pilot)
        shown = lines(app.frames)
        held_line = next(line for line in shown if "held #1" in line)
        assert " ⏸ " in held_line and '"order 1"' in held_line
        assert any("held #2" in line and "→ edited (tui)" in line for line in shown)
        assert any("edited #2" in line and '"order 2" → "order 3"' in line for line in shown)
        assert any(" ✎ " in line and '"order 3"' in line for line in shown)
        assert any("injected" in line and "4000" in line and "bye" in line for line in shown)
        assert "⏸ 1 held" in status(app)
        assert "frames 45" in status(app)  # the actions are rows, not frames
        await pilot.press("slash", *"is:held", "enter")
        await settle(app, pilot)
        assert len(app.ui.view) == 1
        assert "Held message #1 of connection #2" in detail(app)
        assert "HELD: not forwarded yet" in detail(app)
        for key in ("b", "i", "enter", "e", "d", "A"):
            app.clear_notifications()
            await pilot.press(key)
            await pilot.pause()
            assert any("Read-only" in n.message for n in app._notifications), key


@pytest.mark.asyncio
async def test_every_intercept_key_is_in_the_footer_and_the_help(events: list[Event]) -> None:
    app = make_app(events)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        footer = app.screen.query_one(Footer)
        keys = {getattr(k, "key", None) for k in footer.query("FooterKey")}
        assert {"b", "enter", "e", "d", "A", "i"} <= keys
        assert all(k.region.right <= SIZE[0] for k in footer.children)  # all of it fits
        help_keys = " ".join(key for key, _ in KEYS)
        for key in ("b", "Enter", "e", "d", "A", "i"):
            assert key in help_keys.split(), key
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"


def test_a_connection_close_ends_held_messages_in_the_store() -> None:
    from wsinspect.tui.store import EventStore

    store = EventStore()
    store.load([
        MessageAction(1, T0, "held", "c2s", 1, b"a", 1, 1, 1),
        MessageAction(1, T0, "held", "c2s", 1, b"b", 1, 2, 2),
        MessageAction(3, T0, "held", "s2c", 1, b"c", 1, 3, 1),
        MessageAction(1, T0 + 1, "dropped", "c2s", 1, b"a", 1, 1, 1, by="tui"),
    ])
    assert list(store.held) == [2, 3]
    assert store.fates[1] == ("dropped", "tui")
    assert store.frames_total == 0 and store.total == 4
    store.load([ConnectionClosed(1, T0 + 2, "client", "close-handshake", 1000, "", None, None, 2.0,
                                 {"c2s": 0, "s2c": 0}, {"c2s": 0, "s2c": 0})])
    assert list(store.held) == [3]
    assert store.fates[2] == ("closed", "")
    assert store.oldest_held() is not None and store.oldest_held().held == 3  # type: ignore[union-attr]


def test_hex_and_injection_forms_are_checked() -> None:
    from wsinspect.tui.intercept_screens import PayloadError, make_injection, parse_hex

    assert parse_hex("81 05\n0x0a,0x0B") == b"\x81\x05\x0a\x0b"
    with pytest.raises(PayloadError, match="odd number"):
        parse_hex("abc")
    assert make_injection("client", "binary", "00 ff").payload == b"\x00\xff"
    assert make_injection("upstream", "ping", "are you there").payload == b"are you there"
    with pytest.raises(PayloadError, match="at most 125 bytes"):
        make_injection("upstream", "ping", "x" * 126)
    assert make_injection("client", "close", "", "", "").code is None
    with pytest.raises(PayloadError, match="needs a close code"):
        make_injection("client", "close", "", "", "why")
    with pytest.raises(PayloadError, match="a number"):
        make_injection("client", "close", "", "abc")
    with pytest.raises(PayloadError, match="at most 123 bytes"):
        make_injection("client", "close", "", "1000", "r" * 124)
