"""Virtualised tables (Textual Line API): only the visible rows are ever rendered.

A ``DataTable`` holds a Python object per cell and re-lays itself out on every added row; with
100,000+ frames arriving at thousands per second that is far too slow. ``RowTable`` instead asks
its subclass for the row count and for one row's cells when a line is drawn, so the cost of a
redraw is the height of the screen, whatever the number of rows.

The cursor is kept as a *key* (for frames, the absolute frame index), never as a screen position,
so the selected row does not move while rows are appended below it or evicted above it.
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from wsinspect.events import MessageAction
from wsinspect.render import format_time
from wsinspect.tui.rows import (
    CONN_HEADER,
    FRAME_HEADER,
    TimeFormat,
    action_cells,
    conn_cells,
    frame_cells,
)
from wsinspect.tui.store import EventStore, FrameView

__all__ = ["ConnTable", "FrameTable", "RowTable"]


class RowTable(ScrollView, can_focus=True):
    """A scrolling list of rows with a sticky header line and a cursor.

    Subclasses implement ``row_count``, ``row_cells(row, width)`` and ``header``.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "rowtable--header",
        "rowtable--cursor",
        "rowtable--time",
        "rowtable--c2s",
        "rowtable--s2c",
        "rowtable--marker",
        "rowtable--held",
        "rowtable--action",
        "rowtable--preview",
        "rowtable--decoded",
        "rowtable--open",
        "rowtable--closed",
        "rowtable--rejected",
    }

    class CursorMoved(Message):
        """The cursor moved to ``row`` (by key, mouse or program)."""

        def __init__(self, table: RowTable, row: int) -> None:
            super().__init__()
            self.table = table
            self.row = row

        @property
        def control(self) -> RowTable:
            return self.table

    header = ""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.cursor_row = 0
        self._styles: dict[str, Style] = {}

    # -- to implement ---------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        raise NotImplementedError

    def row_cells(self, row: int, width: int) -> list[tuple[str, str]]:
        raise NotImplementedError

    # -- layout ----------------------------------------------------------------------------

    @property
    def page_rows(self) -> int:
        """Rows visible below the header."""
        return max(1, self.scrollable_content_region.height - 1)

    def refresh_rows(self) -> None:
        """Call after rows were added or removed: updates the scroll range and redraws."""
        self.virtual_size = Size(self.scrollable_content_region.width, self.row_count + 1)
        self.refresh()

    def on_resize(self) -> None:
        self.refresh_rows()
        self.jump(self.scroll_y)  # re-clamp: the target may date from a smaller size
        self.scroll_to_cursor()

    def jump(self, y: float) -> None:
        """Scroll to line ``y`` now, without animation (a stale scroll target is replaced)."""
        y = max(0, min(round(y), self.max_scroll_y))
        self.scroll_to(y=y, animate=False, immediate=True, force=True)
        self.scroll_target_y = y

    def scroll_to_cursor(self) -> None:
        top = round(self.scroll_y)
        row = self.cursor_row
        page = self.page_rows
        if row < top:
            self.jump(row)
        elif row >= top + page:
            self.jump(row - page + 1)

    def set_cursor(self, row: int, *, notify: bool = True) -> None:
        count = self.row_count
        row = max(0, min(row, count - 1)) if count else 0
        changed = row != self.cursor_row
        self.cursor_row = row
        self.scroll_to_cursor()
        self.refresh()
        if notify and changed:
            self.post_message(self.CursorMoved(self, row))

    # -- actions ---------------------------------------------------------------------------

    def action_cursor(self, delta: int) -> None:
        self.set_cursor(self.cursor_row + delta)

    def action_page(self, delta: int) -> None:
        self.set_cursor(self.cursor_row + delta * self.page_rows)

    def action_first(self) -> None:
        self.set_cursor(0)

    def action_last(self) -> None:
        self.set_cursor(self.row_count - 1)

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:  # below the header
            self.set_cursor(round(self.scroll_y) + event.y - 1)

    # -- drawing ---------------------------------------------------------------------------

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.get_component_rich_style(f"rowtable--{name}", partial=True)
        return style

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            header = self._style("header")
            return Strip([Segment(self.header, base + header)]).adjust_cell_length(width, base + header)
        row = round(self.scroll_y) + y - 1
        if row >= self.row_count:
            return Strip.blank(width, base)
        line_style = base + self._style("cursor") if row == self.cursor_row else base
        segments = []
        for text, name in self.row_cells(row, width):
            style = line_style if name == "plain" else line_style + self._style(name)
            segments.append(Segment(text, style))
        return Strip(segments).adjust_cell_length(width, line_style)


class FrameTable(RowTable):
    """Frames (and message actions: held, edited, injected...) of the current ``FrameView``;
    follows the tail until the user moves away.

    ``follow`` is true while the cursor sits on the newest frame: new frames then move it down.
    Moving up, paging up, going home or scrolling up with the mouse stops following; ``new``
    counts the frames that arrived since, and going to the end (``end``/``f``) resumes.
    """

    DEFAULT_CSS = """
    FrameTable { overflow-x: hidden; }
    """

    header = FRAME_HEADER

    def __init__(
        self,
        store: EventStore,
        view: FrameView,
        *,
        time_format: TimeFormat = format_time,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.store = store
        self.view = view
        self.time_format = time_format
        self.follow = True
        self.new = 0
        self.selected: int | None = None  # absolute frame index under the cursor

    @property
    def row_count(self) -> int:
        return len(self.view)

    def row_cells(self, row: int, width: int) -> list[tuple[str, str]]:
        event = self.store.row(self.view.indices[row])
        if isinstance(event, MessageAction):
            return action_cells(event, width, self.time_format, self.store.fate(event))
        message = None
        f = event.frame
        if f.rsv1:
            message = self.store.messages.get((event.conn, event.direction, f.message_no))
        source = self.store.decoded
        decoded = None
        if source is not None and f.message_no and f.opcode < 8:
            decoded = source.get((event.conn, event.direction, f.message_no))
        return frame_cells(event, width, self.time_format, message, decoded)

    def set_cursor(self, row: int, *, notify: bool = True) -> None:
        super().set_cursor(row, notify=notify)
        count = self.row_count
        self.selected = self.view.indices[self.cursor_row] if count else None
        if count == 0 or self.cursor_row >= count - 1:
            self.follow = True
            self.new = 0
        else:
            self.follow = False

    def action_last(self) -> None:
        self.follow = True
        self.new = 0
        super().action_last()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        if self.row_count > self.page_rows:
            self.follow = False

    def rows_changed(self, added: int, pruned: int) -> None:
        """The view grew by ``added`` rows at the end and lost ``pruned`` at the start.

        Following: jump to the newest row. Otherwise the cursor stays on the same frame and the
        visible rows stay put (the scroll offset moves with the pruned rows).
        """
        if self.follow:
            self.refresh_rows()
            if self.row_count:
                self.cursor_row = self.row_count - 1
                self.selected = self.view.indices[-1]
                self.jump(max(0, self.row_count - self.page_rows))
                if added:
                    self.post_message(self.CursorMoved(self, self.cursor_row))
            return
        self.new += added
        if pruned:
            if self.selected is not None:
                self.cursor_row = max(0, self.view.position(self.selected))
                self.selected = self.view.indices[self.cursor_row] if self.row_count else None
            self.jump(max(0, round(self.scroll_y) - pruned))
        self.refresh_rows()

    def view_replaced(self) -> None:
        """The view was rebuilt (new filter or connection): keep the selected frame if it is
        still shown, else follow the tail."""
        self.refresh_rows()
        if self.selected is not None and not self.follow:
            pos = self.view.position(self.selected)
            if pos < self.row_count and self.view.indices[pos] == self.selected:
                self.cursor_row = pos
                self.jump(max(0, pos - self.page_rows // 2))
                self.refresh()
                self.post_message(self.CursorMoved(self, pos))
                return
        self.follow = True
        self.new = 0
        self.rows_changed(0, 0)
        self.post_message(self.CursorMoved(self, self.cursor_row))


class ConnTable(RowTable):
    """The connections list: row 0 is "all connections", then one row per connection."""

    header = CONN_HEADER

    DEFAULT_CSS = """
    ConnTable { overflow-x: hidden; }
    """

    def __init__(self, store: EventStore, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.store = store
        self.order: list[int] = []

    def sync(self) -> None:
        if len(self.order) != len(self.store.connections):
            self.order = sorted(self.store.connections)
            self.refresh_rows()
        else:
            self.refresh()

    @property
    def row_count(self) -> int:
        return len(self.order) + 1

    @property
    def selected_conn(self) -> int | None:
        return self.order[self.cursor_row - 1] if 0 < self.cursor_row <= len(self.order) else None

    def row_cells(self, row: int, width: int) -> list[tuple[str, str]]:
        store = self.store
        if row == 0:
            n = len(store.connections)
            opened = sum(1 for i in store.connections.values() if i.state == "open")
            return [(f"*     all connections ({n}, {opened} open), {store.frames_total} frames", "plain")]
        info = store.connections[self.order[row - 1]]
        return conn_cells(info, store.now())
