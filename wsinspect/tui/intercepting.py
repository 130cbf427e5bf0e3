"""The TUI's intercepting keys: breakpoints (``b``), the held message selected (``Enter``
forwards it, ``e`` edits it, ``d`` drops it), all held (``A``), and injecting (``i``).

Each answer of an intercept screen (``tui.intercept_screens``) becomes a command of
``wsinspect.intercept.commands`` sent to the relay through the app's one command path.
``InspectorApp`` inherits these actions; they are apart only to keep each file to one concern.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wsinspect.events import MessageAction
from wsinspect.tui.commanding import RelayCommands
from wsinspect.tui.intercept_screens import BreakpointScreen, EditScreen, Injection, InjectScreen

if TYPE_CHECKING:
    from wsinspect.tui.app import UiState
    from wsinspect.tui.store import Row

__all__ = ["InterceptActions"]


class InterceptActions(RelayCommands):
    """The intercepting actions of ``InspectorApp`` (whose methods below it implements)."""

    ui: UiState

    def selected_row(self) -> Row | None:
        raise NotImplementedError

    def breakpoints_listed(self, result: object) -> None:
        """The relay's list of armed breakpoints: kept, and shown by an open editor."""
        listed = [b for b in result if isinstance(b, dict)] if isinstance(result, list) else []
        self.ui.breakpoints = listed
        if isinstance(self.screen, BreakpointScreen):
            self.screen.show(listed)

    def action_breakpoints(self) -> None:
        """``b``: the breakpoint editor, pre-filled with the selected connection."""
        if not self.live():
            return
        from wsinspect.intercept.commands import AddBreakpoint, ClearBreakpoints, ListBreakpoints

        conn = self.selected_conn() if self.ui.conn is not None else None
        self.send_command(ListBreakpoints())

        def arm(spec: str | None) -> None:
            if spec:
                self.send_command(AddBreakpoint(spec))

        def remove(ident: int) -> None:
            self.send_command(ClearBreakpoints(ident))

        value = f"#{conn} " if conn is not None else ""
        self.push_screen(BreakpointScreen(value, self.ui.breakpoints, remove), arm)

    def selected_held(self) -> MessageAction | None:
        """The selected row when it is a message held now; says what to do when it is not."""
        if not self.live():
            return None
        row = self.selected_row()
        if row is not None and type(row) is MessageAction and self.ui.store.is_held(row):
            return row
        if type(row) is MessageAction and row.action == "held":
            self.notify(f"Held message #{row.held} was already decided.", severity="warning")
        elif self.ui.store.held:
            self.notify("Select a held message (⏸ in the frames table; filter is:held), "
                        "or A forwards them all.", severity="warning")
        else:
            self.notify("No message is held (b arms a breakpoint).", severity="warning")
        return None

    def action_resume(self) -> None:
        """``Enter``: forward the selected held message as it came."""
        held = self.selected_held()
        if held is None or held.held is None:
            return
        from wsinspect.intercept.commands import ResumeHeld

        self.send_command(ResumeHeld(held.held, by="tui"))

    def action_drop_held(self) -> None:
        """``d``: drop the selected held message (the receiver never gets it)."""
        held = self.selected_held()
        if held is None or held.held is None:
            return
        from wsinspect.intercept.commands import DropHeld

        self.send_command(DropHeld(held.held, by="tui"))

    def action_resume_all(self) -> None:
        """``A``: forward every held message as it came."""
        if not self.live():
            return
        from wsinspect.intercept.commands import ResumeHeld

        self.send_command(ResumeHeld(all=True, by="tui"))

    def action_edit_held(self) -> None:
        """``e``: edit the selected held message, then forward the new payload in its place."""
        held = self.selected_held()
        if held is None or held.held is None:
            return
        ident = held.held
        from wsinspect.intercept.commands import ResumeHeld

        def edited(payload: bytes | None) -> None:
            if payload is not None:
                self.send_command(ResumeHeld(ident, payload, by="tui"))

        self.push_screen(EditScreen(held), edited)

    def action_inject(self) -> None:
        """``i``: send a message of the proxy's into the selected connection."""
        conn = self.command_target()
        if conn is None:
            return
        row = self.selected_row()
        to = "client" if row is not None and row.conn == conn and row.direction == "s2c" else "upstream"
        from wsinspect.intercept.commands import SendMessage

        def inject(what: Injection | None) -> None:
            if what is not None:
                self.send_command(SendMessage(conn, what.to, what.kind, what.payload, what.code,
                                              what.reason, by="tui"))

        self.push_screen(InjectScreen(conn, to), inject)
