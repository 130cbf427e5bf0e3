"""The wsinspect terminal UI: connections, frames, one frame's detail, a status bar.

The app never gets one message per frame. Events go into an ``EventStore`` (by the relay in
Trio guest mode, or by a loader thread for ``wsinspect view``); a timer drains the store 25
times a second, extends the frames view and redraws only what changed (STYLE.md item 9). The
tables are virtual (``wsinspect.tui.table``), so a million frames cost no more to draw than ten.

All non-widget state lives in ``UiState`` (``app.ui``), not in private attributes of the App.

Intercepting (live only): ``b`` arms breakpoints; a message a breakpoint holds is a row of its
own in the frames table (``⏸``, from the relay's ``held`` action) until it is forwarded
(``Enter``), edited (``e``), dropped (``d``) or all are forwarded (``A``); ``i`` injects a
message. Each goes to the relay as a command of ``wsinspect.intercept.commands``.

Decoded messages (``tui.decoding``): ``y`` shows the selected message decoded, ``p`` chooses
the connection's decoder; the frames table shows decoded summaries, the filter takes
``sio:event=chat``-style words.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.css.query import NoMatches
from textual.widgets import Footer, Input, Static

from wsinspect.events import Event, FrameSeen, MessageAction, Notice
from wsinspect.render import format_bytes, format_time
from wsinspect.tui.bridge import GuestRelay
from wsinspect.tui.decoding import DecodeActions
from wsinspect.tui.detail import (
    PayloadMode,
    render_action_detail,
    render_frame_detail,
    render_handshake,
    render_message,
)
from wsinspect.tui.history import HistoryActions
from wsinspect.tui.intercepting import InterceptActions
from wsinspect.tui.rows import TimeFormat, format_age
from wsinspect.tui.screens import HelpScreen, PromptScreen
from wsinspect.tui.store import EventStore, FilterError, FrameFilter, FrameView, Rates, Row
from wsinspect.tui.table import ConnTable, FrameTable, RowTable

__all__ = ["InspectorApp", "UiState"]

TICK_HZ = 25
DRAIN_BUDGET = 20_000  # events applied per tick at most, so a big file never freezes the UI
LOADER_BACKLOG = 100_000  # the loader thread waits while this many events are undrained
LOADER_BATCH = 500  # events the loader parses between checks
INPUT_GRACE = 1.0  # seconds after a key or mouse event during which the loader yields
# One footer entry for the keys that act on held messages (their own descriptions are tooltips;
# the status bar spells them out while a message is held), so that every key fits on 120 columns.
HELD_KEYS = Binding.Group("held msg", compact=True)


@dataclass
class UiState:
    """Everything the app knows besides its widgets: where events come from, the store and
    view, display modes, the relay bridge, loading progress."""

    store: EventStore
    view: FrameView
    bridge: GuestRelay | None = None
    source_name: str | None = None  # file shown by ``view``
    source: Iterable[Event] | None = None  # events still to load (``view``)
    progress: Callable[[], float] | None = None  # 0..1 while loading
    loading: bool = False
    loaded_events: int = 0
    recording: str | None = None  # path being recorded to, live only
    listen: str | None = None
    upstream: str | None = None
    banner: str | None = None  # first thing in the status bar (the demo's page URL)
    log_seen: int = 0  # store.log_count already turned into notifications
    listen_bound: bool = False  # ``listen`` holds the relay's bound address
    payload_mode: PayloadMode = "text"
    detail_mode: str = "frame"  # "frame", "message", "handshake" or "decoded"
    query: str = ""
    conn: int | None = None  # connection selected in the list (None: all)
    rates: Rates = field(default_factory=Rates)
    last_rate_sample: float = 0.0
    shown_detail: tuple[Any, ...] | None = None  # what the detail pane currently shows
    stop_loading: threading.Event = field(default_factory=threading.Event)
    closers: list[Callable[[], None]] = field(default_factory=list)  # run after the relay stops
    last_input: float = 0.0  # monotonic time of the last key or mouse event
    breakpoints: list[dict[str, object]] = field(default_factory=list)  # as the relay last listed


class InspectorApp(InterceptActions, HistoryActions, DecodeActions):
    """``wsinspect tui`` (live, with a ``GuestRelay``) and ``wsinspect view`` (read-only)."""

    CSS_PATH = "app.tcss"
    TITLE = "wsinspect"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("f", "follow", "Follow"),
        Binding("a", "all_connections", "All conns", show=False),
        Binding("t", "payload('text')", "Text", show=False),
        Binding("j", "payload('json')", "JSON"),
        Binding("x", "payload('hex')", "Hex"),
        Binding("m", "detail('message')", "Message"),
        Binding("h", "detail('handshake')", "Handshake"),
        Binding("y", "detail('decoded')", "Decoded", show=False),
        Binding("p", "choose_decoder", "Decoder", show=False),
        Binding("s", "save", "Save"),
        Binding("c", "close_connection", "Close"),
        Binding("k", "cut(False)", "Cut"),
        Binding("K", "cut(True)", "Cut (RST)", show=False),
        Binding("b", "breakpoints", "Break"),
        Binding("enter", "resume", "Forward", key_display="⏎", group=HELD_KEYS),
        Binding("e", "edit_held", "Edit", group=HELD_KEYS),
        Binding("d", "drop_held", "Drop", group=HELD_KEYS),
        Binding("A", "resume_all", "Forward all held", group=HELD_KEYS),
        Binding("i", "inject", "Inject"),
        Binding("H", "history", "History", show=False),
        Binding("q", "quit", "Quit"),
        Binding("escape", "leave_filter", "Back to frames", show=False),
    ]

    def __init__(
        self,
        store: EventStore,
        *,
        bridge: GuestRelay | None = None,
        source: Iterable[Event] | None = None,
        source_name: str | None = None,
        progress: Callable[[], float] | None = None,
        recording: str | None = None,
        listen: str | None = None,
        upstream: str | None = None,
        time_format: TimeFormat = format_time,
        view: FrameView | None = None,
    ) -> None:
        super().__init__()
        self.ui = UiState(
            store=store,
            view=view if view is not None else FrameView(),
            bridge=bridge,
            source=source,
            source_name=source_name,
            progress=progress,
            recording=recording,
            listen=listen,
            upstream=upstream,
        )
        self.time_format = time_format

    # -- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        ui = self.ui
        yield ConnTable(ui.store, id="conns")
        yield Input(
            placeholder="filter: words  dir:c2s|s2c  op:text,binary  #3  re:REGEX  is:bad   (/ to edit)",
            id="filter",
        )
        yield FrameTable(ui.store, ui.view, time_format=self.time_format, id="frames")
        with VerticalScroll(id="detail-scroll"):
            yield Static("", id="detail")
        yield Static("", id="status")
        # Compact, and without the palette's entry (Ctrl+P still opens it), so that every key
        # fits on 120 columns.
        yield Footer(compact=True, show_command_palette=False)

    @property
    def frames(self) -> FrameTable:
        return self.query_one("#frames", FrameTable)

    @property
    def conns(self) -> ConnTable:
        return self.query_one("#conns", ConnTable)

    def on_mount(self) -> None:
        ui = self.ui
        ui.store.drain()
        ui.view.rebuild(ui.store)
        self.conns.sync()
        self.frames.view_replaced()
        self.frames.focus()
        if ui.source is not None:
            ui.loading = True
            self.load_source()
        if ui.bridge is not None:
            ui.bridge.start(on_crash=self.relay_crashed, on_result=self.command_done)
        self.set_interval(1 / TICK_HZ, self.tick)
        self.update_status()
        self.update_detail()

    # -- the drain timer ---------------------------------------------------------------------

    def tick(self) -> None:
        """Apply what was published since the last tick and redraw the new rows, once."""
        # While the app closes, Textual removes the screen's widgets before it stops the app's
        # timers: a last tick may find nothing to draw on.
        with contextlib.suppress(NoMatches):
            self._tick()

    def _tick(self) -> None:
        ui = self.ui
        applied = ui.store.drain(DRAIN_BUDGET)
        self.drain_set_aside()
        now = time.monotonic()
        if now - ui.last_rate_sample >= 1.0:
            ui.rates.sample(ui.store, now)
            ui.last_rate_sample = now
            self.update_status()
            if not applied:
                self.conns.refresh()  # ages
        if ui.bridge is not None and ui.bridge.relay is not None and ui.listen_bound is False:
            host, port = ui.bridge.relay.address[:2]
            ui.listen = f"{host}:{port}"
            ui.listen_bound = True
            self.update_status()
        if not applied and not ui.view.pending:
            return
        if ui.store.log_count != ui.log_seen:
            self.show_notices()
        added, pruned = ui.view.update(ui.store)
        self.frames.rows_changed(added, pruned)
        self.conns.sync()
        self.update_status()
        self.update_detail()  # a held message shown there may have been decided

    def show_notices(self) -> None:
        """Warnings and errors from the relay or the recorder (``Notice``) pop up; the rest
        stays in the store's log."""
        store = self.ui.store
        fresh = min(store.log_count - self.ui.log_seen, len(store.log))
        self.ui.log_seen = store.log_count
        shown = 0
        for event in list(store.log)[len(store.log) - fresh :]:
            if isinstance(event, Notice) and event.level in ("warning", "error") and shown < 5:
                shown += 1
                conn = f"#{event.conn}: " if event.conn else ""
                self.notify(conn + event.text, title=event.level.capitalize(),
                            severity="error" if event.level == "error" else "warning")

    @work(thread=True, exclusive=True, group="load")
    def load_source(self) -> None:
        """Read the file in a worker thread into the store's inbox (``deque.append`` is
        thread-safe); the timer drains it. Waits while the UI is behind, so memory stays flat."""
        ui = self.ui
        store = ui.store
        assert ui.source is not None
        try:
            for n, event in enumerate(ui.source):
                store.publish(event)
                if n % LOADER_BATCH == 0:
                    ui.loaded_events = n
                    # Parsing holds the GIL; while the user is typing or scrolling, pause
                    # between batches so keys are answered at once (the load goes on after).
                    if time.monotonic() - ui.last_input < INPUT_GRACE:
                        time.sleep(0.01)
                    while store.pending > LOADER_BACKLOG and not ui.stop_loading.is_set():
                        time.sleep(0.005)
                    if ui.stop_loading.is_set():
                        return
        except Exception as exc:  # a damaged file: say so in the UI, keep what was read
            store.publish(Notice(time.time(), "error", f"reading stopped: {exc}"))
        finally:
            ui.loading = False

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseEvent)):
            self.ui.last_input = time.monotonic()
        await super().on_event(event)

    # -- selection and detail ----------------------------------------------------------------

    def on_row_table_cursor_moved(self, message: RowTable.CursorMoved) -> None:
        if isinstance(message.table, ConnTable):
            conn = message.table.selected_conn
            if conn != self.ui.conn:
                self.ui.conn = conn
                self.apply_filter()
        else:
            self.update_detail()
        self.update_status()

    def selected_row(self) -> Row | None:
        selected = self.frames.selected
        if selected is None:
            return None
        try:
            return self.ui.store.row(selected)
        except IndexError:
            return None

    def selected_frame(self) -> FrameSeen | None:
        row = self.selected_row()
        return row if type(row) is FrameSeen else None

    def selected_conn(self) -> int | None:
        if self.ui.conn is not None:
            return self.ui.conn
        event = self.selected_row()
        return event.conn if event is not None else None

    def fragments(self, event: FrameSeen) -> list[FrameSeen]:
        """Frames of ``event``'s message still in the store, oldest first (bounded scan)."""
        store = self.ui.store
        want = (event.direction, event.frame.message_no)
        found: list[FrameSeen] = []
        for index in reversed(store.conn_frames(event.conn)):
            other = store.row(index)
            if type(other) is not FrameSeen:
                continue
            if (other.direction, other.frame.message_no) == want:
                found.append(other)
            elif found and other.direction == event.direction:
                break
            if len(found) > 10_000:
                break
        found.reverse()
        return found

    def update_detail(self) -> None:
        ui = self.ui
        row = self.selected_row()
        key = (self.frames.selected, ui.store.base, ui.detail_mode, ui.payload_mode, ui.conn,
               ui.store.held_version if type(row) is MessageAction else 0)
        if key == ui.shown_detail and ui.detail_mode != "handshake":
            return
        ui.shown_detail = key
        detail = self.query_one("#detail", Static)
        if ui.detail_mode == "handshake":
            conn = self.selected_conn()
            info = ui.store.conn_info(conn) if conn is not None else None
            if info is None:
                detail.update("No connection selected.")
            else:
                detail.update(self.with_decoder(render_handshake(info, self.time_format), info.conn))
            return
        if row is None:
            detail.update("No frame selected." if not ui.store.total else "")
            return
        if type(row) is MessageAction:
            detail.update(render_action_detail(row, ui.store.fate(row), ui.payload_mode, self.time_format))
            return
        event = row
        assert type(event) is FrameSeen
        if ui.detail_mode == "decoded":
            detail.update(self.decoded_detail(event))
        elif ui.detail_mode == "message":
            message = ui.store.messages.get((event.conn, event.direction, event.frame.message_no))
            fragments = self.fragments(event) if message is None else []
            detail.update(render_message(event, message, fragments, ui.payload_mode, self.time_format))
        else:
            detail.update(render_frame_detail(event, ui.payload_mode, self.time_format))

    # -- status bar --------------------------------------------------------------------------

    def status_text(self) -> str:
        ui = self.ui
        store = ui.store
        parts: list[str] = []
        if ui.banner:
            parts.append(ui.banner)
        if ui.bridge is not None:
            parts.append(f"● live {ui.listen or ''} → {ui.upstream or ''}".strip())
            if self.history is not None:
                parts.append(f"showing the whole recording (H: live){' indexing' if store.pending else ''}")
        elif ui.source_name is not None:
            state = "read-only"
            if ui.loading or store.pending:
                pct = f" {ui.progress() * 100:.0f}%" if ui.progress else ""
                state = f"loading{pct}"
            parts.append(f"viewing {ui.source_name} ({state})")
        opened = sum(1 for i in store.connections.values() if i.state == "open")
        parts.append(f"conns {len(store.connections)} ({opened} open)")
        parts.append(f"frames {store.frames_total}" + (f" shown {len(ui.view)}" if ui.query or ui.conn else ""))
        if ui.view.progress is not None:
            parts.append(f"filtering {ui.view.progress * 100:.0f}%")
        oldest = store.oldest_held()
        if oldest is not None:
            age = format_age(max(0.0, store.now() - oldest.ts))
            parts.append(f"⏸ {len(store.held)} held, oldest {age} (⏎ forward, e edit, d drop, A all)")
        if ui.bridge is not None:
            fps, bps = ui.rates.total
            parts.append(f"total {fps:.0f} fr/s {format_bytes(int(bps))}/s")
            conn = self.selected_conn()
            if conn is not None and conn in ui.rates.per_conn:
                cfps, cbps = ui.rates.per_conn[conn]
                parts.append(f"#{conn} {cfps:.0f} fr/s {format_bytes(int(cbps))}/s")
        table = self.frames
        if table.follow:
            parts.append("following")
        else:
            parts.append(f"{table.new} new ↓ (f follows)" if table.new else "paused (f follows)")
        if store.dropped:
            older = " (H: in the recording)" if ui.recording else ""
            parts.append(f"{store.dropped} older frames dropped from view{older}")
        if ui.recording:
            parts.append(f"rec {ui.recording}")
        return "  │  ".join(parts)

    def update_status(self) -> None:
        self.query_one("#status", Static).update(self.status_text())

    # -- filter ------------------------------------------------------------------------------

    def apply_filter(self) -> None:
        ui = self.ui
        try:
            flt = FrameFilter.parse(ui.query)
        except FilterError as exc:
            self.notify(str(exc), title="Filter", severity="error")
            self.query_one("#filter", Input).add_class("error")
            return
        self.query_one("#filter", Input).remove_class("error")
        if ui.conn is not None:
            flt = flt.with_conn(ui.conn)
        ui.view.rebuild(ui.store, flt)
        self.frames.view_replaced()
        self.update_detail()
        self.update_status()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "filter":
            return
        self.ui.query = event.value.strip()
        self.apply_filter()
        self.frames.focus()

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_leave_filter(self) -> None:
        """Esc in the filter bar: back to the frames, the applied filter unchanged."""
        self.frames.focus()

    def action_all_connections(self) -> None:
        self.conns.set_cursor(0)

    def action_follow(self) -> None:
        self.frames.action_last()
        self.update_status()

    # -- detail modes ------------------------------------------------------------------------

    def action_payload(self, mode: str) -> None:
        if mode in ("text", "json", "hex"):
            self.ui.payload_mode = mode  # type: ignore[assignment]
        if self.ui.detail_mode == "handshake":
            self.ui.detail_mode = "frame"
        self.update_detail()

    def action_detail(self, mode: str) -> None:
        self.ui.detail_mode = "frame" if self.ui.detail_mode == mode else mode
        self.update_detail()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    # -- save --------------------------------------------------------------------------------

    def selected_payload(self) -> tuple[bytes, str] | None:
        row = self.selected_row()
        if type(row) is MessageAction:
            name = f"wsinspect-{row.conn}-{row.direction}-{row.action}{row.held or ''}.bin"
            return row.payload, name
        event = self.selected_frame()
        if event is None:
            return None
        f = event.frame
        if self.ui.detail_mode == "message" and f.opcode < 8:
            message = self.ui.store.messages.get((event.conn, event.direction, f.message_no))
            if message is not None:
                payload = message.message.payload
            else:
                payload = b"".join(fr.frame.payload for fr in self.fragments(event))
            return payload, f"wsinspect-{event.conn}-{event.direction}-message{f.message_no}.bin"
        return f.payload, f"wsinspect-{event.conn}-{event.direction}-frame{event.seq}.bin"

    def action_save(self) -> None:
        chosen = self.selected_payload()
        if chosen is None:
            self.notify("No frame selected.", severity="warning")
            return
        payload, name = chosen

        def save(path: str | None) -> None:
            if not path:
                return
            target = Path(os.path.expanduser(path))
            try:
                target.write_bytes(payload)
            except OSError as exc:
                self.notify(f"{target}: {exc.strerror or exc}", title="Save failed", severity="error")
                return
            self.notify(f"saved {len(payload)} bytes to {target}", title="Saved")

        self.push_screen(PromptScreen(f"Save {len(payload)} bytes to:", name), save)

    # -- ending ------------------------------------------------------------------------------

    def relay_crashed(self, exc: BaseException) -> None:
        """The relay died: end the UI and show why (never leave a hung terminal)."""
        self.exit(1, return_code=1, message=f"wsinspect: the relay stopped: {type(exc).__name__}: {exc}")

    async def action_quit(self) -> None:
        await self.shutdown()
        self.exit(0)

    async def shutdown(self) -> None:
        """Stop loading and stop the relay (which closes the recording); idempotent."""
        self.ui.stop_loading.set()
        self.close_history()
        if self.ui.bridge is not None:
            await self.ui.bridge.stop()
        while self.ui.closers:
            self.ui.closers.pop()()

    async def on_unmount(self) -> None:
        await self.shutdown()
