"""The detail pane's content: one frame, its reassembled message, or its connection's handshake.

Pure functions from events to ``rich.text.Text`` so they can be tested without an app.
Payloads show as text, pretty JSON or a hex dump (``PayloadMode``); long payloads are cut for
display only (``s`` saves the whole captured payload).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from rich.text import Text

from wsinspect.events import (
    ConnectionOpened,
    FrameSeen,
    HandshakeRejected,
    MessageAction,
    MessageSeen,
)
from wsinspect.render import ARROWS, format_bytes, format_time
from wsinspect.tui.rows import TimeFormat, compact_flags
from wsinspect.tui.store import ConnInfo
from wsinspect.wire.closecodes import close_code_meaning
from wsinspect.wire.frames import opcode_name

__all__ = [
    "DISPLAY_LIMIT",
    "PayloadMode",
    "hexdump",
    "render_action_detail",
    "render_frame_detail",
    "render_handshake",
    "render_message",
    "render_payload",
]

PayloadMode = Literal["text", "json", "hex"]
DISPLAY_LIMIT = 16 * 1024  # bytes of payload drawn in the pane

_DIRECTION_WORDS = {"c2s": "client → server", "s2c": "server → client"}


def hexdump(data: bytes) -> str:
    """Classic 16-bytes-per-line dump: offset, hex in two groups of eight, printable ASCII."""
    lines = []
    for off in range(0, len(data), 16):
        chunk = data[off : off + 16]
        left = " ".join(f"{b:02x}" for b in chunk[:8])
        right = " ".join(f"{b:02x}" for b in chunk[8:])
        ascii_ = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{off:08x}  {left:<23}  {right:<23}  |{ascii_}|")
    return "\n".join(lines)


def render_payload(payload: bytes, mode: PayloadMode, *, is_text: bool, length: int) -> Text:
    """The payload block: a title line, then the payload as ``mode`` asks.

    Text mode falls back to a hex dump for bytes that are not UTF-8; JSON mode says why a
    payload is not JSON and shows it as text instead.
    """
    out = Text()
    shown = payload[:DISPLAY_LIMIT]
    note = ""
    if len(payload) > DISPLAY_LIMIT:
        note = f" (showing {format_bytes(DISPLAY_LIMIT)} of {format_bytes(len(payload))} captured)"
    if length > len(payload):
        note += f" (+{format_bytes(length - len(payload))} not captured)"
    decoded: str | None
    try:
        decoded = shown.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A cut in the middle of a multi-byte character is still text.
        decoded = shown[: exc.start].decode() if exc.start >= len(shown) - 3 and len(payload) > DISPLAY_LIMIT else None
    if mode == "json":
        try:
            value = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            out.append(f"── payload: not JSON ({exc}) ──{note}\n", style="bold yellow")
            mode = "text"
        else:
            pretty = json.dumps(value, indent=2, ensure_ascii=False)
            out.append(f"── payload as JSON ──{note}\n", style="bold")
            out.append(pretty[: DISPLAY_LIMIT * 2])
            return out
    if mode == "text" and decoded is not None and (is_text or decoded.isprintable() or "\n" in decoded):
        out.append(f"── payload as text ({format_bytes(length)}) ──{note}\n", style="bold")
        out.append(decoded if decoded else "(empty)")
        return out
    out.append(f"── payload as hex ({format_bytes(length)}) ──{note}\n", style="bold")
    out.append(hexdump(shown) if shown else "(empty)")
    return out


def _field(out: Text, name: str, value: str, style: str = "") -> None:
    out.append(f"{name:<11}", style="bold")
    out.append(value + "\n", style=style)


def render_frame_detail(
    event: FrameSeen, mode: PayloadMode, time_format: TimeFormat = format_time
) -> Text:
    """Header fields (FIN, RSV1-3, opcode, MASK, mask key, length, raw header bytes), the close
    code and its meaning (RFC 6455 §7.4), violations with their RFC section, then the payload."""
    f = event.frame
    out = Text()
    arrow = ARROWS.get(event.direction, "?")
    out.append(
        f"Frame {event.seq} of connection #{event.conn}  {arrow} "
        f"{_DIRECTION_WORDS.get(event.direction, event.direction)}  {time_format(event.ts)}\n",
        style="bold",
    )
    _field(out, "opcode", f"{opcode_name(f.opcode)} (0x{f.opcode:x})")
    bits = f"FIN={int(f.fin)} RSV1={int(f.rsv1)} RSV2={int(f.rsv2)} RSV3={int(f.rsv3)} MASK={int(f.masked)}"
    _field(out, "flags", f"{compact_flags(event)}  {bits}")
    _field(out, "mask key", f.mask_key.hex() if f.mask_key is not None else "(none)")
    captured = f" ({format_bytes(len(f.payload))} captured)" if f.truncated else ""
    _field(out, "length", f"{f.length}{captured}")
    _field(out, "header", f.header.hex(" ") or "(not recorded)")
    if f.message_no:
        _field(out, "message", f"#{f.message_no}, fragment {f.fragment_index}")
    if f.rsv1 and f.opcode in (1, 2):
        _field(out, "compressed", "RSV1: permessage-deflate (RFC 7692); press m for the inflated message")
    if f.sha256:
        _field(out, "sha256", f.sha256)
    if not event.delivered:
        _field(out, "delivered", "NO: received and not passed on", "bold red")
    if event.written is not None:
        _field(out, "written", f"by the proxy ({event.written} message): its sender never sent it",
               "bold magenta")
    if f.opcode == 8:
        code = f.close_code
        if code is None:
            _field(out, "close", "no status code (RFC 6455 §7.1.5: reads as 1005)")
        else:
            _field(out, "close", f"{code} — {close_code_meaning(code)}")
            if f.close_reason:
                _field(out, "reason", repr(f.close_reason))
    for v in f.violations:
        out.append("⚠ ", style="bold red")
        out.append(f"{v.section}", style="bold red")
        out.append(
            f" ({v.side}): {v.message} — a strict peer closes with {v.close_code}"
            f" ({close_code_meaning(v.close_code)})\n"
        )
    out.append("\n")
    if f.opcode == 8:
        body = f.payload[2:] if len(f.payload) >= 2 else f.payload
        out.append_text(render_payload(body, mode, is_text=True, length=len(body)))
    else:
        out.append_text(render_payload(f.payload, mode, is_text=f.text, length=f.length))
    return out


def render_message(
    event: FrameSeen,
    message: MessageSeen | None,
    fragments: Sequence[FrameSeen],
    mode: PayloadMode,
    time_format: TimeFormat = format_time,
) -> Text:
    """The reassembled message (RFC 6455 §5.4) that ``event`` belongs to: from the relay's
    ``MessageSeen`` (inflated when compressed, RFC 7692) or, failing that, joined from the
    fragments still in the store."""
    out = Text()
    f = event.frame
    if f.opcode >= 8:
        out.append("Control frames are not part of a message (RFC 6455 §5.5).\n", style="bold")
        return out.append_text(render_frame_detail(event, mode, time_format))
    arrow = ARROWS.get(event.direction, "?")
    if message is not None:
        m = message.message
        out.append(
            f"Message #{message.message_no} of connection #{message.conn} {arrow}  "
            f"{time_format(message.ts)}\n",
            style="bold",
        )
        _field(out, "opcode", opcode_name(m.opcode))
        _field(out, "frames", str(m.frames))
        _field(out, "length", str(m.length))
        if m.compressed:
            _field(out, "on wire", f"{m.wire_len} bytes (permessage-deflate, RFC 7692)")
        out.append("\n")
        out.append_text(render_payload(m.payload, mode, is_text=m.opcode == 1, length=m.length))
        return out
    payload = b"".join(fr.frame.payload for fr in fragments)
    length = sum(fr.frame.length for fr in fragments)
    complete = bool(fragments) and fragments[-1].frame.fin
    first = fragments[0].frame.opcode if fragments else f.opcode
    out.append(
        f"Message #{f.message_no} of connection #{event.conn} {arrow} "
        f"({'complete' if complete else 'incomplete'}, joined from {len(fragments)} frames)\n",
        style="bold",
    )
    _field(out, "opcode", opcode_name(first))
    _field(out, "length", str(length))
    out.append("\n")
    out.append_text(render_payload(payload, mode, is_text=first == 1, length=length))
    return out


_ACTION_TITLES = {
    "held": "Held message",
    "resumed": "Resumed message",
    "edited": "Edited message",
    "dropped": "Dropped message",
    "injected": "Injected message",
}


def render_action_detail(
    event: MessageAction,
    fate: tuple[str, str] | None,
    mode: PayloadMode,
    time_format: TimeFormat = format_time,
) -> Text:
    """What the proxy did to a message (``MessageAction``): held by a breakpoint (and what
    became of it: ``fate``, ``None`` while it is held), resumed, edited (the original and the
    new payload), dropped, or injected; then the payload."""
    out = Text()
    arrow = ARROWS.get(event.direction, "?")
    title = _ACTION_TITLES.get(event.action, event.action)
    ident = f" #{event.held}" if event.held is not None else ""
    out.append(
        f"{title}{ident} of connection #{event.conn}  {arrow} "
        f"{_DIRECTION_WORDS.get(event.direction, event.direction)}  {time_format(event.ts)}\n",
        style="bold",
    )
    if event.action == "held":
        if fate is None:
            _field(out, "state", "HELD: not forwarded yet — Enter forwards it, e edits it, d drops it, "
                   "A forwards everything held", "bold yellow")
        elif fate[0] == "closed":
            _field(out, "state", "its connection closed while it was held: never forwarded", "bold red")
        else:
            _field(out, "state", fate[0] + (f" by {fate[1]}" if fate[1] else ""))
    if event.by:
        _field(out, "by", event.by)
    _field(out, "opcode", f"{opcode_name(event.opcode)} (0x{event.opcode:x})")
    if event.message_no:
        _field(out, "message", f"#{event.message_no} of the sender")
    captured = f" ({format_bytes(len(event.payload))} captured)" if event.length > len(event.payload) else ""
    _field(out, "length", f"{event.length}{captured}")
    is_text = event.opcode in (1, 9, 10)
    if event.opcode == 8:
        code = event.close_code
        if code is None:
            _field(out, "close", "no status code")
        else:
            _field(out, "close", f"{code} — {close_code_meaning(code)}")
        if event.close_reason:
            _field(out, "reason", repr(event.close_reason))
        return out
    out.append("\n")
    if event.original is not None:
        out.append("── what the sender sent ──\n", style="bold")
        out.append_text(render_payload(event.original, mode, is_text=is_text, length=len(event.original)))
        out.append("\n\n── what the proxy forwarded instead ──\n", style="bold")
    out.append_text(render_payload(event.payload, mode, is_text=is_text, length=event.length))
    return out


def _headers(out: Text, headers: Sequence[tuple[str, str]]) -> None:
    for name, value in headers:
        out.append(f"{name}: ", style="bold")
        out.append(value + "\n")


def render_handshake(info: ConnInfo, time_format: TimeFormat = format_time) -> Text:
    """The opening handshake of a connection (RFC 6455 §4): request and response headers."""
    out = Text()
    opened: ConnectionOpened | None = info.opened
    rejected: HandshakeRejected | None = info.rejected
    out.append(f"Connection #{info.conn} from {info.client or '?'}  ", style="bold")
    out.append(f"{time_format(info.opened_ts)}\n")
    if opened is not None:
        _field(out, "upstream", opened.upstream)
        if opened.subprotocol:
            _field(out, "subprotocol", opened.subprotocol)
        if opened.extensions:
            _field(out, "extensions", opened.extensions)
        out.append(f"\n── request ──\nGET {opened.path} HTTP/1.1\n", style="bold")
        _headers(out, opened.request_headers)
        out.append(f"\n── response ──\nHTTP/1.1 {opened.status}\n", style="bold")
        _headers(out, opened.response_headers)
    elif rejected is not None:
        _field(out, "rejected", f"HTTP {rejected.status} by {rejected.by}: {rejected.reason}", "bold red")
        if rejected.origin:
            _field(out, "origin", rejected.origin)
        out.append(f"\n── request ──\nGET {rejected.path} HTTP/1.1\n", style="bold")
        _headers(out, rejected.request_headers)
    else:
        out.append("(handshake not recorded)\n")
    if info.closed is not None:
        c = info.closed
        out.append("\n── close ──\n", style="bold")
        _field(out, "closed by", f"{c.initiator} ({c.how}) after {c.duration:.3f}s")
        for label, side in (("client", c.client_close), ("upstream", c.upstream_close)):
            if side is None:
                _field(out, label, "no close frame")
            else:
                code, reason = side
                _field(out, label, f"{code} ({close_code_meaning(code)})" + (f" {reason!r}" if reason else ""))
        if c.detail:
            _field(out, "detail", c.detail)
    for fault in info.faults:
        _field(out, "fault", f"{time_format(fault.ts)} {fault.fault}: {fault.action}", "yellow")
    return out
