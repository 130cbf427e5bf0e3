"""One line per frame and per connection, as cells for the TUI's tables.

The words come from ``wsinspect.render`` (the one renderer: time, arrows, opcode names,
previews, byte sizes); this module only lays them out in columns.
"""

from __future__ import annotations

from collections.abc import Callable

from wsinspect.events import FrameSeen, MessageAction, MessageSeen
from wsinspect.render import ARROWS, format_bytes, format_time, preview
from wsinspect.tui.store import ConnInfo
from wsinspect.wire.closecodes import close_code_meaning
from wsinspect.wire.decoders import Decoded
from wsinspect.wire.frames import opcode_name

__all__ = [
    "CONN_HEADER",
    "FRAME_HEADER",
    "TimeFormat",
    "action_cells",
    "action_marker",
    "compact_flags",
    "conn_cells",
    "format_age",
    "frame_cells",
    "frame_marker",
]

TimeFormat = Callable[[float], str]

# (title, width); the last column takes the rest of the line.
# Columns line up with frame_cells/conn_cells below.
FRAME_HEADER = f"{'Time':<14}{'Conn':<5}{'':3}{'Opcode':<8}{'F123M':<11}{'Length':>6} ! Preview"
CONN_HEADER = (
    f"{'Conn':<6}{'Client':<22}{'Path':<17}{'Subproto':<10}{'Ext':<9}{'State':<8} "
    f"{'Age':<8} {'Msgs →/←':<11} {'Close':<9} Bytes →/←"
)


def compact_flags(event: FrameSeen) -> str:
    """``F123M`` style: FIN, RSV1-3 and MASK, a dash for each bit that is clear."""
    f = event.frame
    return (
        ("F" if f.fin else "-")
        + ("1" if f.rsv1 else "-")
        + ("2" if f.rsv2 else "-")
        + ("3" if f.rsv3 else "-")
        + ("M" if f.masked else "-")
    )


# A frame the proxy wrote itself, and why (FrameSeen.written); the marks of message actions.
WRITTEN_MARKS = {"edited": "✎", "injected": "+"}
ACTION_MARKS = {"held": "⏸", "resumed": "▶", "edited": "✎", "dropped": "✗", "injected": "+",
                "closed": "✗"}


def frame_marker(event: FrameSeen) -> str:
    """``✗`` not delivered (a fault dropped it), ``!`` protocol violation, ``✎`` / ``+`` written
    by the proxy (an edited / injected message), else a space."""
    if not event.delivered:
        return "✗"
    if event.frame.violations:
        return "!"
    if event.written is not None:
        return WRITTEN_MARKS.get(event.written, "+")
    return " "


def action_marker(event: MessageAction, fate: tuple[str, str] | None) -> str:
    """``⏸`` for a message held now; else the mark of what happened (``▶`` resumed, ``✎``
    edited, ``✗`` dropped or its connection closed, ``+`` injected)."""
    if event.action == "held" and fate is not None:
        return ACTION_MARKS.get(fate[0], " ")
    return ACTION_MARKS.get(event.action, " ")


def frame_cells(
    event: FrameSeen,
    width: int,
    time_format: TimeFormat = format_time,
    message: MessageSeen | None = None,
    decoded: Decoded | None = None,
) -> list[tuple[str, str]]:
    """Cells of one frames-table line as ``(text, style-name)``; styles are ``time``,
    ``c2s``/``s2c``, ``plain``, ``marker``, ``preview`` and ``decoded``. ``message`` is the
    frame's reassembled message: given for a compressed frame (RSV1, RFC 7692), its inflated
    payload is previewed (marked ``⇣``) instead of the compressed bytes. ``decoded`` is its
    message decoded: its summary (marked ``≡``, ``≠`` when it did not parse) takes the
    preview's place."""
    f = event.frame
    head = f"{time_format(event.ts):<13} #{event.conn:<4}"
    op = opcode_name(f.opcode)
    mid = f" {op:<7} {compact_flags(event):<10} {f.length:>6}"
    marker = frame_marker(event)
    used = len(head) + 2 + len(mid) + 3
    room = max(8, width - used)
    if f.opcode == 8:
        code = f.close_code
        body = "(no status code)" if code is None else f"{code} {close_code_meaning(code)}"
        reason = f.close_reason
        if reason:
            body += " " + preview(reason.encode(), text=True, width=max(8, room - len(body) - 3))
    elif decoded is not None and not decoded.continued:
        mark = "≠ " if decoded.error is not None else "≡ "
        summary = decoded.summary
        body = mark + (summary if len(summary) <= room - 2 else summary[: max(1, room - 3)] + "…")
        return [
            (head, "time"),
            (" " + ARROWS.get(event.direction, "?"), event.direction),
            (mid, "plain"),
            (" " + marker + " ", "marker" if marker != " " else "plain"),
            (body, "decoded" if decoded.error is None else "marker"),
        ]
    elif f.rsv1 and message is not None:
        m = message.message
        body = "⇣" + preview(m.payload, text=m.opcode == 1, length=m.length, width=max(8, room - 3))
    else:
        body = preview(f.payload, text=f.text, length=f.length, width=max(8, room - 2))
    return [
        (head, "time"),
        (" " + ARROWS.get(event.direction, "?"), event.direction),
        (mid, "plain"),
        (" " + marker + " ", "marker" if marker != " " else "plain"),
        (body, "preview"),
    ]


_FATE_WORDS = {"closed": "connection closed"}


def action_cells(
    event: MessageAction,
    width: int,
    time_format: TimeFormat = format_time,
    fate: tuple[str, str] | None = None,
) -> list[tuple[str, str]]:
    """Cells of a frames-table line for a message action: ``held #3`` (etc.) where a frame
    shows its flags, the mark (``action_marker``), then the payload and who acted. A held
    message is styled ``held`` until it is decided (``fate``, from ``EventStore.fates``); it
    then says what became of it."""
    head = f"{time_format(event.ts):<13} #{event.conn:<4}"
    op = opcode_name(event.opcode)
    label = event.action if event.held is None else f"{event.action} #{event.held}"
    mid = f" {op:<7} "
    length = f" {event.length:>6}"
    marker = action_marker(event, fate)
    used = len(head) + 2 + len(mid) + max(10, len(label)) + len(length) + 3
    room = max(8, width - used)
    if event.opcode == 8:
        code = event.close_code
        body = "(no status code)" if code is None else f"{code} {close_code_meaning(code)}"
        if event.close_reason:
            body += " " + preview(event.close_reason.encode(), text=True, width=max(8, room - len(body) - 3))
    else:
        text = event.opcode in (1, 9, 10)
        body = preview(event.payload, text=text, length=event.length, width=max(8, room // 2 if event.original is not None else room - 2))
        if event.original is not None:
            body = preview(event.original, text=text, width=max(8, room // 2 - 4)) + " → " + body
    if event.action == "held" and fate is not None:
        action, by = fate
        body += f"  → {_FATE_WORDS.get(action, action)}" + (f" ({by})" if by else "")
    elif event.by:
        body += f"  ({event.by})"
    held_now = event.action == "held" and fate is None
    return [
        (head, "time"),
        (" " + ARROWS.get(event.direction, "?"), event.direction),
        (mid, "plain"),
        (f"{label:<10}", "held" if held_now else "action"),
        (length, "plain"),
        (" " + marker + " ", "held" if held_now else "marker"),
        (body, "preview"),
    ]


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_age(seconds: float) -> str:
    """``3.2s``, ``4m05s``, ``2h07m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def conn_cells(info: ConnInfo, now: float) -> list[tuple[str, str]]:
    """Cells of one connections-list line: id, client, path, subprotocol, extensions, state,
    age, messages each way, close code (its meaning is in the handshake view), bytes each way."""
    end = info.closed_ts if info.closed_ts is not None else now
    age = format_age(max(0.0, end - info.opened_ts))
    msgs = f"{info.messages['c2s']}/{info.messages['s2c']}"
    nbytes = f"{format_bytes(info.bytes['c2s'])}/{format_bytes(info.bytes['s2c'])}"
    if info.state == "rejected" and info.rejected is not None:
        close = f"HTTP {info.rejected.status}"
    elif info.close_code is not None:
        close = str(info.close_code)
    elif info.closed is not None:
        close = info.closed.how
    else:
        close = ""
    ext = (info.extensions or "").split(";")[0]
    # In forward mode the path is the whole URL the client asked for: show its host first.
    path = info.path.split("://", 1)[-1]
    text = (
        f"#{info.conn:<4} {_cut(info.client, 21):<21} {_cut(path, 16):<16} "
        f"{_cut(info.subprotocol or '', 9):<9} {_cut(ext, 8):<8} "
    )
    rest = f" {age:<8} {msgs:<11} {_cut(close, 9):<9} {nbytes}"
    return [(text, "plain"), (f"{info.state:<8}", info.state), (rest, "plain")]
