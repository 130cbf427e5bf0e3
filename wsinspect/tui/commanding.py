"""The TUI's commands to the relay: close (``c``) and cut (``k``/``K``) the selected connection,
and the one path every command takes (``GuestRelay.execute`` → ``Relay.execute``), with its
result shown when it comes back. ``InspectorApp`` inherits these actions (through
``InterceptActions``, whose keys send their commands the same way); they are apart only to
keep each file to one concern.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import App

from wsinspect.tui.screens import PromptScreen

if TYPE_CHECKING:
    from wsinspect.tui.app import UiState

__all__ = ["RelayCommands"]


class RelayCommands(App[int]):
    """The relay commands of ``InspectorApp`` (whose methods below it implements)."""

    ui: UiState

    def selected_conn(self) -> int | None:
        raise NotImplementedError

    def breakpoints_listed(self, result: object) -> None:
        raise NotImplementedError

    def live(self) -> bool:
        """Whether there is a relay to command; says so when there is not."""
        if self.ui.bridge is None or self.ui.bridge.relay is None:
            self.notify("Read-only: commands need a live relay (wsinspect tui).", severity="warning")
            return False
        return True

    def command_target(self) -> int | None:
        if not self.live():
            return None
        conn = self.selected_conn()
        if conn is None:
            self.notify("Select a connection or a frame first.", severity="warning")
        return conn

    def send_command(self, command: object) -> None:
        assert self.ui.bridge is not None
        try:
            self.ui.bridge.execute(command)
        except RuntimeError as exc:
            self.notify(str(exc), severity="error")

    def action_close_connection(self) -> None:
        conn = self.command_target()
        if conn is None:
            return

        def close(answer: str | None) -> None:
            if not answer:
                return
            code_text, _, reason = answer.strip().partition(" ")
            try:
                code = int(code_text)
            except ValueError:
                self.notify(f"{code_text!r} is not a close code", severity="error")
                return
            from wsinspect.relay.control import CloseConnection

            self.send_command(CloseConnection(conn, code, reason))

        self.push_screen(
            PromptScreen(
                f"Close connection #{conn} with code and reason:",
                "1000 ",
                placeholder="1000 going away",
            ),
            close,
        )

    def action_cut(self, rst: bool) -> None:
        conn = self.command_target()
        if conn is None:
            return
        from wsinspect.relay.control import CutConnection

        self.send_command(CutConnection(conn, rst=rst))

    def command_done(self, command: object, result: object) -> None:
        """A command's result, or the exception it raised (called from the relay's task: the
        UI work is queued on the app, so a slip there cannot take the relay down)."""
        self.call_later(self.show_result, command, result)

    def show_result(self, command: object, result: object) -> None:
        from wsinspect.intercept.commands import AddBreakpoint, ClearBreakpoints, ListBreakpoints

        if isinstance(result, BaseException):
            self.notify(str(result) or repr(result), title="Command failed", severity="error")
        elif isinstance(command, ListBreakpoints):
            self.breakpoints_listed(result)
            return
        elif isinstance(command, AddBreakpoint) and isinstance(result, dict):
            self.notify(f"breakpoint {result.get('id')} armed: {result.get('spec')}", title="Breakpoint")
        else:
            self.notify(str(result) if result is not None else f"{command} done", title="Command")
        if isinstance(command, (AddBreakpoint, ClearBreakpoints)):
            self.send_command(ListBreakpoints())
