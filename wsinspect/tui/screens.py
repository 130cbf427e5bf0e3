"""Modal screens: the help screen (``?``) and a one-line prompt (save path, close code)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

__all__ = ["KEYS", "HelpScreen", "PromptScreen"]

# (key, what it does): the help screen shows this list; docs/cli.md's key table says the same.
KEYS: list[tuple[str, str]] = [
    ("↑ ↓ PgUp PgDn Home End", "move in the focused table (mouse: click, wheel)"),
    ("Tab / Shift+Tab", "move focus: connections, filter bar, frames, detail"),
    ("f  (or End)", "follow new frames again (moving up stops following; the status bar counts \"N new\")"),
    ("/", "edit the filter: words, dir:c2s|s2c, op:text,binary, #3, re:REGEX, is:bad; Enter applies, Esc leaves"),
    ("", "decoded: sio:event=chat, gql:op=subscribe, stomp:dest=/queue/a, mqtt:topic=sensors/#, gql:KIND, sio:"),
    ("a", "show the frames of all connections"),
    ("t / j / x", "payload as text / pretty JSON / hex dump"),
    ("m", "toggle the message view (fragments reassembled)"),
    ("h", "toggle the handshake view (request and response headers, close, faults)"),
    ("y", "toggle the decoded view (summary, fields, decoded body; raw and the reason when it did not parse)"),
    ("p", "choose the selected connection's decoder: auto, a decoder, or none (raw)"),
    ("s", "save the selected payload (or message) to a file"),
    ("c", "close the selected connection with a code and reason (live only)"),
    ("k / K", "cut the selected connection's TCP: FIN / RST (live only)"),
    ("b", "breakpoints: arm one (the filter's words, e.g. dir:c2s re:^order #3) or remove one (live only)"),
    ("Enter", "forward the selected held message (⏸) as it came"),
    ("e", "edit the selected held message, then forward it (text; binary as hex or a file; Ctrl+O: $EDITOR)"),
    ("d", "drop the selected held message: the receiver never gets it"),
    ("A", "forward every held message as it came"),
    ("i", "inject a message into the selected connection: text, binary, ping, pong or close (live only)"),
    ("H", "the whole recording, older frames than the live window included; H again: live (live, with --record)"),
    ("?", "this help"),
    ("q  (or Ctrl+Q)", "quit: stops the relay and closes the recording"),
]


class HelpScreen(ModalScreen[None]):
    """Key bindings and the filter syntax."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close help"),
    ]

    def compose(self) -> ComposeResult:
        text = Text()
        text.append("wsinspect — keys\n\n", style="bold")
        for key, what in KEYS:
            text.append(f"{key:<24}", style="bold cyan")
            text.append(what + "\n")
        text.append(
            "\nFrames table columns: time, connection, direction (→ client to server, ← server to "
            "client), opcode, flags (F=FIN, 1/2/3=RSV1-3, M=MASK, - when clear), payload length, "
            "marker (! protocol violation, ✗ not delivered, ✎ edited / + injected: written by the proxy), "
            "preview.\nA breakpoint's held message is a row of its own (⏸ while held; then ▶ forwarded, "
            "✎ edited, ✗ dropped); filter is:held lists the ones held now.\n"
        )
        with VerticalScroll(id="help-body"):
            yield Static(text)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)


class PromptScreen(ModalScreen[str | None]):
    """Ask one line of text; dismisses with the text, or ``None`` on Escape."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str = "", *, placeholder: str = "") -> None:
        super().__init__()
        self.prompt_title = title
        self.prompt_value = value
        self.prompt_placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-box"):
            yield Label(self.prompt_title)
            yield Input(self.prompt_value, placeholder=self.prompt_placeholder, id="prompt-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
