"""The intercept screens: the breakpoint editor (``b``), editing a held message (``e``) and
injecting a message (``i``).

They only ask and check what the user typed; the app turns the answers into the relay's
commands (``wsinspect.intercept.commands``), so a screen never talks to the relay. Payload
parsing (hex with spaces, ``@FILE``) is plain functions, tested without an app.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option

from wsinspect.events import MessageAction
from wsinspect.render import format_bytes
from wsinspect.wire.closecodes import is_valid_close_code

__all__ = [
    "BreakpointScreen",
    "EditScreen",
    "InjectScreen",
    "Injection",
    "PayloadError",
    "hex_lines",
    "parse_hex",
    "read_binary",
]

LONG_TEXT = 2000  # characters from which the edit screen suggests $EDITOR
CONTROL_MAX = 125  # bytes in a control frame's payload (RFC 6455 §5.5)
KINDS = ("text", "binary", "ping", "pong", "close")


class PayloadError(ValueError):
    """What the user typed is not a payload; ``str()`` says why."""


def parse_hex(text: str) -> bytes:
    """Bytes from hex digits; spaces, newlines and ``0x`` prefixes are ignored (``"81 05"``,
    ``"0x81, 0x05"`` and ``"8105"`` are the same two bytes)."""
    digits = "".join(text.replace(",", " ").replace("0x", " ").replace("0X", " ").split())
    if len(digits) % 2:
        raise PayloadError(f"hex: {len(digits)} digits, an odd number (two per byte)")
    try:
        return bytes.fromhex(digits)
    except ValueError:
        bad = next(c for c in digits if c not in "0123456789abcdefABCDEF")
        raise PayloadError(f"hex: {bad!r} is not a hex digit") from None


def read_binary(text: str, path: str = "") -> bytes:
    """A binary payload: the file at ``path`` when one is given, else ``text`` as hex."""
    path = path.strip()
    if path:
        target = Path(os.path.expanduser(path))
        try:
            return target.read_bytes()
        except OSError as exc:
            raise PayloadError(f"{target}: {exc.strerror or exc}") from None
    return parse_hex(text)


def hex_lines(data: bytes) -> str:
    """``data`` as hex, 16 bytes a line, for editing."""
    return "\n".join(data[i : i + 16].hex(" ") for i in range(0, len(data), 16))


def run_editor(suspend: Callable[[], AbstractContextManager[None]], text: str, suffix: str) -> str:
    """Let ``$EDITOR`` (else ``$VISUAL``, else ``vi``) edit ``text`` with the app suspended
    (``App.suspend()``); the edited text. ``PayloadError`` when the editor cannot run."""
    editor = os.environ.get("EDITOR") or os.environ.get("VISUAL") or "vi"
    fd, name = tempfile.mkstemp(prefix="wsinspect-", suffix=suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        try:
            with suspend():
                done = subprocess.run([*shlex.split(editor), name], check=False)
        except SuspendNotSupported:
            raise PayloadError("this terminal cannot hand over to $EDITOR") from None
        except OSError as exc:
            raise PayloadError(f"$EDITOR {editor!r}: {exc.strerror or exc}") from None
        if done.returncode != 0:
            raise PayloadError(f"$EDITOR {editor!r} exited with {done.returncode}: message unchanged")
        return Path(name).read_text(encoding="utf-8")
    finally:
        os.unlink(name)


# -- breakpoints -----------------------------------------------------------------------------


class BreakpointScreen(ModalScreen[str | None]):
    """Arm a breakpoint (dismisses with its spec, checked with the relay's own parser) or
    remove an armed one (``on_remove(id)``; the app refreshes the list with ``show``)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Close"),
        Binding("delete,backspace", "remove", "Remove breakpoint"),
    ]

    def __init__(
        self, value: str, armed: list[dict[str, object]], on_remove: Callable[[int], None]
    ) -> None:
        super().__init__()
        self.start_value = value
        self.armed = armed
        self.on_remove = on_remove
        self.ready = False  # composed: the list can be filled

    def compose(self) -> ComposeResult:
        with Vertical(id="break-box", classes="intercept-box"):
            yield Label("Breakpoint: matching messages stop before they are forwarded", classes="title")
            yield Input(
                self.start_value,
                placeholder="words  dir:c2s|s2c  op:text,binary  #3  re:REGEX",
                id="break-input",
            )
            yield Static("", id="break-error", classes="error")
            yield Label("Armed (Tab to the list, Delete removes one):")
            yield OptionList(id="break-list")
            yield Static("Enter arms the breakpoint · Esc closes", classes="hint")

    def on_mount(self) -> None:
        self.ready = True
        self.show(self.armed)
        input_ = self.query_one("#break-input", Input)
        input_.focus()
        input_.cursor_position = len(input_.value)

    def show(self, armed: list[dict[str, object]]) -> None:
        """List the armed breakpoints (the relay's ``ListBreakpoints`` answer)."""
        self.armed = armed
        if not self.ready:
            return  # on_mount shows it
        options = self.query_one("#break-list", OptionList)
        options.clear_options()
        if armed:
            options.add_options(Option(f"#{b['id']}  {b['spec']}", id=str(b["id"])) for b in armed)
            options.highlighted = 0
        else:
            options.add_option(Option("(none armed)", id="none", disabled=True))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        from wsinspect.intercept.breakpoints import BreakpointError, parse_breakpoint

        spec = event.value.strip()
        error = self.query_one("#break-error", Static)
        if not spec:
            error.update("Type what to stop (every data message: op:text,binary).")
            return
        try:
            parse_breakpoint(spec)
        except BreakpointError as exc:
            error.update(f"invalid breakpoint: {exc}")
            self.query_one("#break-input", Input).add_class("error")
            return
        self.dismiss(spec)

    def action_remove(self) -> None:
        options = self.query_one("#break-list", OptionList)
        option = options.highlighted_option
        if not options.has_focus or option is None or option.id in (None, "none"):
            return
        self.on_remove(int(option.id))

    def action_cancel(self) -> None:
        self.dismiss(None)


# -- editing a held message ------------------------------------------------------------------


class EditScreen(ModalScreen[bytes | None]):
    """Edit held message ``held``: text in a text area, binary as hex or read from a file;
    dismisses with the new payload, or ``None`` (it stays held)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Forward edited"),
        Binding("ctrl+o", "editor", "Open $EDITOR"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, held: MessageAction) -> None:
        super().__init__()
        self.held = held
        self.is_text = held.opcode == 1

    def compose(self) -> ComposeResult:
        held = self.held
        kind = "text" if self.is_text else "binary (hex; spaces allowed)"
        with Vertical(id="edit-box", classes="intercept-box"):
            yield Label(f"Edit held message #{held.held} of connection #{held.conn}: {kind}",
                        classes="title")
            if held.length > len(held.payload):
                yield Static(
                    f"Only {format_bytes(len(held.payload))} of {format_bytes(held.length)} were "
                    "captured: what is here replaces the whole message.", classes="error")
            text = held.payload.decode("utf-8", "replace") if self.is_text else hex_lines(held.payload)
            yield TextArea(text, id="edit-text", soft_wrap=True)
            if not self.is_text:
                yield Input(placeholder="or a file to send instead: PATH", id="edit-file")
            yield Static("", id="edit-error", classes="error")
            long = " (a long one: Ctrl+O)" if len(text) > LONG_TEXT else ""
            yield Static(f"Ctrl+S forwards the edited message · Ctrl+O opens $EDITOR{long} · "
                         "Esc cancels (it stays held)", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#edit-text", TextArea).focus()

    def payload(self) -> bytes:
        """The new payload, from the text area (or the file); ``PayloadError`` if it is not one."""
        text = self.query_one("#edit-text", TextArea).text
        if self.is_text:
            return text.encode("utf-8")
        return read_binary(text, self.query_one("#edit-file", Input).value)

    def action_send(self) -> None:
        try:
            payload = self.payload()
        except PayloadError as exc:
            self.query_one("#edit-error", Static).update(str(exc))
            return
        self.dismiss(payload)

    def action_editor(self) -> None:
        area = self.query_one("#edit-text", TextArea)
        try:
            area.text = run_editor(self.app.suspend, area.text, ".txt" if self.is_text else ".hex")
        except PayloadError as exc:
            self.query_one("#edit-error", Static).update(str(exc))
            return
        self.query_one("#edit-error", Static).update("")

    def action_cancel(self) -> None:
        self.dismiss(None)


# -- injecting -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Injection:
    """What the inject screen asks the app to send (``SendMessage``'s fields)."""

    to: str  # "upstream" or "client"
    kind: str  # text, binary, ping, pong, close
    payload: bytes = b""
    code: int | None = None
    reason: str = ""


def make_injection(to: str, kind: str, text: str, code: str = "", reason: str = "") -> Injection:
    """Check the inject form: text (UTF-8), binary (hex, or ``@PATH`` to read a file), ping
    and pong (text, at most 125 bytes), close (a code that may be sent, RFC 6455 §7.4, and a
    reason of at most 123 bytes; no code sends a close without one)."""
    if kind == "close":
        code = code.strip()
        if not code:
            if reason:
                raise PayloadError("a close reason needs a close code")
            return Injection(to, kind)
        try:
            number = int(code)
        except ValueError:
            raise PayloadError(f"close code {code!r}: a number such as 1000") from None
        if not is_valid_close_code(number):
            raise PayloadError(f"close code {number} may not be sent in a close frame (RFC 6455 §7.4)")
        if len(reason.encode()) > CONTROL_MAX - 2:
            raise PayloadError("a close reason is at most 123 bytes (RFC 6455 §5.5)")
        return Injection(to, kind, code=number, reason=reason)
    if kind == "binary":
        stripped = text.strip()
        payload = read_binary("", stripped[1:]) if stripped.startswith("@") else parse_hex(text)
    else:
        payload = text.encode("utf-8")
    if kind in ("ping", "pong") and len(payload) > CONTROL_MAX:
        raise PayloadError(f"a {kind} payload is at most {CONTROL_MAX} bytes (RFC 6455 §5.5), "
                           f"this one is {len(payload)}")
    return Injection(to, kind, payload)


_PAYLOAD_HINTS = {
    "text": "payload: text",
    "binary": "payload: hex bytes (spaces allowed), or @PATH to send a file",
    "ping": "payload: text, at most 125 bytes",
    "pong": "payload: text, at most 125 bytes",
    "close": "",
}


class InjectScreen(ModalScreen[Injection | None]):
    """Ask what to inject into connection ``conn``: direction, kind, payload, close code and
    reason; dismisses with an ``Injection``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Send"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, conn: int, to: str = "upstream") -> None:
        super().__init__()
        self.conn = conn
        self.start_to = to

    def compose(self) -> ComposeResult:
        with Vertical(id="inject-box", classes="intercept-box"):
            yield Label(f"Inject a message into connection #{self.conn}", classes="title")
            with Horizontal(classes="row"):
                yield Select(
                    [("→ to the upstream server (as the client)", "upstream"),
                     ("← to the client (as the server)", "client")],
                    value=self.start_to, allow_blank=False, id="inject-to")
                yield Select([(k, k) for k in KINDS], value="text", allow_blank=False, id="inject-kind")
            yield Static(_PAYLOAD_HINTS["text"], id="inject-hint", classes="hint")
            yield TextArea("", id="inject-payload", soft_wrap=True)
            with Horizontal(id="inject-close", classes="row"):
                yield Input("1000", placeholder="code", id="inject-code")
                yield Input("", placeholder="reason", id="inject-reason")
            yield Static("", id="inject-error", classes="error")
            yield Static("Ctrl+S sends · Esc cancels", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#inject-close").display = False
        self.query_one("#inject-kind", Select).focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id != "inject-kind":
            return
        kind = str(event.value)
        self.query_one("#inject-close").display = kind == "close"
        self.query_one("#inject-payload").display = kind != "close"
        self.query_one("#inject-hint", Static).update(_PAYLOAD_HINTS.get(kind, ""))

    def action_send(self) -> None:
        try:
            injection = make_injection(
                str(self.query_one("#inject-to", Select).value),
                str(self.query_one("#inject-kind", Select).value),
                self.query_one("#inject-payload", TextArea).text,
                self.query_one("#inject-code", Input).value,
                self.query_one("#inject-reason", Input).value,
            )
        except PayloadError as exc:
            self.query_one("#inject-error", Static).update(str(exc))
            return
        self.dismiss(injection)

    def action_cancel(self) -> None:
        self.dismiss(None)
