"""``H`` in the live UI: the whole recording, frames the live window has evicted included.

The live store keeps the last ``--ui-max-frames`` frames. When a recording is written, every
older frame is still in it: ``H`` swaps the frames table, the connection list and the detail
pane over to the recording, read through its index as ``wsinspect view`` reads it
(``tui.paged``), following it as it grows. ``H`` again comes back to the live window. The relay
goes on meanwhile, and the live store keeps taking its events.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual.app import App

from wsinspect.events import Notice

if TYPE_CHECKING:
    from wsinspect.tui.app import UiState
    from wsinspect.tui.paged import PagedStore, PagedView
    from wsinspect.tui.store import EventStore, FrameView
    from wsinspect.tui.table import ConnTable, FrameTable

__all__ = ["HISTORY_WINDOW", "History", "HistoryActions"]

HISTORY_WINDOW = 20_000  # rows of the recording kept in memory while it is shown


class History:
    """The live store and view set aside while the recording is shown, and what shows it."""

    def __init__(self, live: tuple[EventStore, FrameView], paged: tuple[PagedStore, PagedView]) -> None:
        self.live = live
        self.paged = paged

    def close(self) -> None:
        store, view = self.paged
        view.close()
        store.close()
        store.index.close()


class HistoryActions(App[int]):
    """The ``history`` action of ``InspectorApp`` (mixed in; it owns ``ui``, ``frames``,
    ``conns`` and the redraw methods)."""

    ui: UiState
    history: History | None = None

    if TYPE_CHECKING:
        @property
        def frames(self) -> FrameTable: ...
        @property
        def conns(self) -> ConnTable: ...
        def update_status(self) -> None: ...
        def update_detail(self) -> None: ...

    def action_history(self) -> None:
        """Show the whole recording (live: needs ``--record``), or come back to live."""
        if self.history is not None:
            history, self.history = self.history, None
            self._show(*history.live)
            history.close()
            self.notify("back to the live window")
            return
        if self.ui.bridge is None or not self.ui.recording:
            self.notify("H shows the whole recording: start with --record FILE", severity="warning")
            return
        from wsinspect.recording.index import open_index
        from wsinspect.recording.reader import RecordingError
        from wsinspect.tui.paged import PagedStore, PagedView

        warnings: list[str] = []
        try:
            index = open_index(self.ui.recording, warn=warnings.append)
        except (RecordingError, OSError) as exc:
            self.notify(f"cannot read the recording: {exc}", severity="error")
            return
        store = PagedStore(index, HISTORY_WINDOW)
        store.use_decoding(self.ui.store.decoding_copy())
        for text in warnings:
            store.publish(Notice(time.time(), "warning", text))
        view = PagedView(index)
        self.history = History((self.ui.store, self.ui.view), (store, view))
        store.start()
        self._show(store, view)
        self.notify("the whole recording (H: back to live)")

    def _show(self, store: EventStore, view: FrameView) -> None:
        ui = self.ui
        ui.store, ui.view = store, view
        ui.query, ui.conn = "", None
        frames, conns = self.frames, self.conns
        frames.store, frames.view = store, view
        conns.store = store
        conns.order = []
        store.drain()
        view.rebuild(store)
        frames.view_replaced()
        conns.sync()
        self.update_status()
        self.update_detail()

    def drain_set_aside(self) -> None:
        """Keep the live store taking the relay's events while the recording is shown."""
        if self.history is not None:
            self.history.live[0].drain()

    def close_history(self) -> None:
        if self.history is not None:
            self.history.close()
            self.history = None
