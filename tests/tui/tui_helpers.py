"""Read what the TUI shows: table lines as drawn, the detail pane, the status bar."""

from __future__ import annotations

from collections.abc import Iterable

from textual.widgets import Static

from wsinspect.events import Event
from wsinspect.tui.app import InspectorApp
from wsinspect.tui.store import EventStore
from wsinspect.tui.table import RowTable


def make_app(events: Iterable[Event], *, max_frames: int = 100_000, name: str = "sample.jsonl") -> InspectorApp:
    store = EventStore(max_frames, live=False)
    store.load(events)
    return InspectorApp(store, source_name=name)


def lines(table: RowTable) -> list[str]:
    """The table's visible lines (header first), as drawn."""
    height = table.scrollable_content_region.height
    return ["".join(seg.text for seg in table.render_line(y)).rstrip() for y in range(height)]


def cursor_line(table: RowTable) -> str:
    y = table.cursor_row - round(table.scroll_y) + 1
    return lines(table)[y]


def detail(app: InspectorApp) -> str:
    return str(app.query_one("#detail", Static).content)


def status(app: InspectorApp) -> str:
    return str(app.query_one("#status", Static).content)


async def settle(app: InspectorApp, pilot: object, limit: float = 10.0) -> None:
    """Wait until the UI has drained every published event and redrawn (bounded), instead of
    guessing how many timer ticks a loaded machine needs."""
    import time

    deadline = time.monotonic() + limit
    await pilot.pause(0.05)  # type: ignore[attr-defined]
    while app.ui.store.pending and time.monotonic() < deadline:
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]
