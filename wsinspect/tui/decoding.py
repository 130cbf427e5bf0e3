"""The TUI's keys for decoded messages: ``y`` toggles the detail pane's decoded mode (the
message as its protocol sees it: summary, fields, the decoded body as pretty JSON; the reason
and the raw payload when it did not parse), ``p`` chooses the selected connection's decoder at
run time (any registered decoder, ``auto``: as it opened, or ``none``).

``InspectorApp`` inherits these actions (as ``tui.intercepting`` and ``tui.history``); the
decoding itself is in ``tui.decoded``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from wsinspect.events import FrameSeen
from wsinspect.render import ARROWS
from wsinspect.tui.decoded import AUTO
from wsinspect.tui.detail import render_frame_detail, render_payload
from wsinspect.wire.decoders import Decoded, decoder_names, get_decoder

if TYPE_CHECKING:
    from wsinspect.tui.app import UiState
    from wsinspect.tui.rows import TimeFormat
    from wsinspect.tui.table import FrameTable

__all__ = ["NONE", "ChooseDecoderScreen", "DecodeActions", "render_decoded"]

NONE = "none"  # the choice that shows a connection raw


class ChooseDecoderScreen(ModalScreen[str | None]):
    """Pick a decoder for one connection: ``auto``, each registered decoder, ``none``;
    dismisses with the name (``None`` on Escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, conn: int, current: str | None) -> None:
        super().__init__()
        self.conn = conn
        self.current = current

    def compose(self) -> ComposeResult:
        options = [Option(f"{AUTO:<14} as when it opened (rules, subprotocol, handshake)", id=AUTO)]
        for name in decoder_names():
            decoder = get_decoder(name)
            subs = ", ".join(decoder.subprotocols)
            mark = "●" if name == self.current else " "
            options.append(Option(f"{name:<14}{mark} filter {decoder.filter_prefix}:"
                                  + (f"  subprotocols {subs}" if subs else ""), id=name))
        options.append(Option(f"{NONE:<14} show it raw", id=NONE))
        with Vertical(id="prompt-box"):
            yield Label(f"Decode connection #{self.conn} with (now: {self.current or 'none'}):")
            yield OptionList(*options, id="decoder-list")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class DecodeActions(App[int]):
    """The decoding actions of ``InspectorApp`` (mixed in; it owns ``ui``, ``frames`` and the
    redraw methods)."""

    ui: UiState
    time_format: TimeFormat

    if TYPE_CHECKING:
        @property
        def frames(self) -> FrameTable: ...
        def selected_conn(self) -> int | None: ...
        def apply_filter(self) -> None: ...
        def update_detail(self) -> None: ...

    def action_choose_decoder(self) -> None:
        """``p``: choose the selected connection's decoder."""
        conn = self.selected_conn()
        if conn is None:
            self.notify("Select a connection or a frame first.", severity="warning")
            return
        source = self.ui.store.decoded
        if source is None:
            self.notify("Decoding is off (no decoders: --no-decode without --decode).",
                        severity="warning")
            return
        current = source.decoder_name(conn)

        def chosen(name: str | None) -> None:
            if name is None:
                return
            self.ui.store.choose_decoder(conn, None if name == NONE else name)
            now = source.decoder_name(conn)
            self.notify(f"#{conn}: decoded with {now}" if now else f"#{conn}: shown raw",
                        title="Decoder")
            self.ui.shown_detail = None
            self.apply_filter()  # decoded words may match other rows now
            self.frames.refresh()

        self.push_screen(ChooseDecoderScreen(conn, current), chosen)

    def with_decoder(self, text: Text, conn: int) -> Text:
        """The handshake view, with the connection's decoder (when decoding is on)."""
        source = self.ui.store.decoded
        if source is None:
            return text
        name = source.decoder_name(conn)
        text.append(f"{'decoder':<11}", style="bold")
        text.append(f"{name or 'none'} (p chooses another, y shows a message decoded)\n")
        return text

    def decoded_detail(self, event: FrameSeen) -> Text:
        """The detail pane's decoded mode for the frame ``event`` (its message)."""
        ui = self.ui
        f = event.frame
        source = ui.store.decoded
        name = source.decoder_name(event.conn) if source is not None else None
        decoded = None
        if source is not None and f.message_no and f.opcode < 8:
            decoded = source.get((event.conn, event.direction, f.message_no))
        arrow = ARROWS.get(event.direction, "?")
        title = (f"Decoded message #{f.message_no} of connection #{event.conn} {arrow}"
                 + (f"  ({name})" if name else ""))
        message = ui.store.messages.get((event.conn, event.direction, f.message_no))

        def raw() -> Text:
            if f.opcode >= 8 or message is None:
                return render_frame_detail(event, ui.payload_mode, self.time_format)
            m = message.message
            return render_payload(m.payload, ui.payload_mode, is_text=m.opcode == 1, length=m.length)

        return render_decoded(title, decoded, name, raw)


# -- the detail pane's decoded mode --------------------------------------------------------


def render_decoded(
    title: str,
    decoded: Decoded | None,
    decoder: str | None,
    raw: Callable[[], Text],
) -> Text:
    """The decoded view of one message: protocol, kind, summary, fields, then the body as
    pretty JSON; when it did not parse, the reason and the raw payload (``raw()``)."""
    out = Text()
    out.append(title + "\n", style="bold")
    if decoded is None:
        if decoder is None:
            out.append("Its connection has no decoder: p chooses one (or --decode NAME).\n\n",
                       style="yellow")
        else:
            out.append(f"Not decoded by {decoder} (yet: its connection's earlier messages are "
                       "being decoded; or a control frame, or a message no longer held).\n\n",
                       style="yellow")
        out.append_text(raw())
        return out
    _line(out, "protocol", decoded.protocol)
    _line(out, "kind", decoded.kind)
    _line(out, "summary", decoded.summary)
    for key, value in decoded.fields.items():
        _line(out, f"  {key}", json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value))
    if decoded.continued:
        _line(out, "continued", "part of a larger unit still incomplete", "yellow")
    if decoded.error is not None:
        _line(out, "error", decoded.error, "bold red")
        out.append("\n")
        out.append_text(raw())
        return out
    if decoded.body is not None:
        out.append("\n── decoded ──\n", style="bold")
        out.append(_pretty(decoded.body))
    return out


def _line(out: Text, name: str, value: str, style: str = "") -> None:
    out.append(f"{name:<11}", style="bold")
    out.append(value + "\n", style=style)


def _pretty(body: Any) -> str:
    text = json.dumps(body, indent=2, ensure_ascii=False, default=_default)
    return text if len(text) <= 64 * 1024 else text[: 64 * 1024] + "\n… (cut for display)"


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return value.hex(" ")
    return repr(value)

