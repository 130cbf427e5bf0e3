"""The one place that renders events for humans: the console log, ``wsinspect cat`` and the
TUI all call these functions, so a frame reads the same everywhere."""

from __future__ import annotations

import itertools
import math
import time
from json.encoder import encode_basestring as _json_string

from wsinspect.events import (
    ConnectionClosed,
    ConnectionOpened,
    Event,
    FaultInjected,
    FrameSeen,
    HandshakeRejected,
    HttpExchange,
    MessageAction,
    MessageSeen,
    Notice,
)
from wsinspect.wire.checks import Violation
from wsinspect.wire.closecodes import close_code_meaning
from wsinspect.wire.frames import Frame, opcode_name

__all__ = [
    "ARROWS",
    "flags",
    "format_bytes",
    "format_time",
    "frame_parts",
    "preview",
    "render_event",
    "render_frame",
]

ARROWS = {"c2s": "→", "s2c": "←"}
DEFAULT_PREVIEW = 80


# The last whole second formatted, and its text: lines come many to a second, and
# localtime + strftime cost about 1 µs.
_last_second: tuple[int, str] = (-1, "")
_MILLIS = [f".{ms:03d}" for ms in range(1000)]


def format_time(ts: float) -> str:
    """Local wall-clock time with milliseconds: ``14:03:07.123``."""
    global _last_second
    second = math.floor(ts)
    if second != _last_second[0]:
        _last_second = (second, time.strftime("%H:%M:%S", time.localtime(second)))
    return _last_second[1] + _MILLIS[int(ts * 1000) % 1000]


def format_bytes(n: int) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 MiB``..."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _cut(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    half = (width - 1) // 2
    return text[:half] + "…" + text[len(text) - (width - 1 - half) :]


def preview(payload: bytes, *, text: bool, length: int | None = None,
            width: int = DEFAULT_PREVIEW) -> str:
    """A one-line view of a payload: quoted text where it decodes as UTF-8 (and ``text`` says it
    may be text), hex otherwise; the middle is cut out of long payloads. ``length`` is the full
    payload length when ``payload`` is only the captured part."""
    full = len(payload) if length is None else length
    suffix = f" …(+{format_bytes(full - len(payload))} not captured)" if full > len(payload) else ""
    if not payload:
        return '""' + suffix if text else "(empty)" + suffix
    decoded: str | None = None
    if text:
        try:
            decoded = payload.decode("utf-8")
        except UnicodeDecodeError:
            decoded = None
    if decoded is not None:
        # JSON string escaping: quotes and control characters escaped, other text kept.
        return '"' + _cut(_json_string(decoded)[1:-1], width) + '"' + suffix
    return "0x" + _cut(payload.hex(), width) + suffix


def _flag_text(fin: bool, rsv1: bool, rsv2: bool, rsv3: bool) -> str:
    names = [name for bit, name in ((fin, "FIN"), (rsv1, "RSV1"), (rsv2, "RSV2"), (rsv3, "RSV3")) if bit]
    return " ".join(names) or "-"


# (fin, rsv1, rsv2, rsv3) → its text, for the 16 combinations.
_FLAGS = {bits: _flag_text(*bits) for bits in itertools.product((False, True), repeat=4)}


def flags(frame: Frame) -> str:
    """``FIN RSV1 RSV2 RSV3`` style flag list, ``-`` for a non-final frame with no bits set."""
    return _FLAGS[frame.fin, frame.rsv1, frame.rsv2, frame.rsv3]


def render_frame(event: FrameSeen, *, width: int = DEFAULT_PREVIEW) -> str:
    """``14:03:07.123 #1 → text FIN mask=1a2b3c4d len=5 "hello"`` (plus close code and
    violations). The one rendering of a frame for humans."""
    key = event.frame.mask_key
    head, tail = frame_parts(event, width=width)
    mask = "" if key is None else f" mask={key.hex()}"
    return f"{format_time(event.ts)} {head}{mask}{tail}"


def frame_parts(event: FrameSeen, *, width: int = DEFAULT_PREVIEW) -> tuple[str, str]:
    """:func:`render_frame`'s line without its time and mask key, in two parts: before the
    mask key (``#1 → text FIN``) and after it (`` len=5 "hello"``, close code, violations).
    They depend on neither the time nor the key (nor the sequence and message numbers), so a
    reader of many frames may keep them per distinct frame (``wsinspect cat`` does)."""
    f = event.frame
    head = (
        f"#{event.conn} {ARROWS.get(event.direction, event.direction)} "
        f"{opcode_name(f.opcode)} {flags(f)}"
    )
    parts = ["", f"len={f.length}"]
    if f.opcode == 8:
        code = f.close_code
        if code is None:
            parts.append("(no status code)")
        else:
            parts.append(f"{code} ({close_code_meaning(code)})")
            reason = f.close_reason
            if reason:
                parts.append(preview(reason.encode(), text=True, width=width))
    else:
        # Text where it decodes and the inspector says the frame carries text (not binary,
        # not compressed: see Frame.text); hex otherwise.
        parts.append(preview(f.payload, text=f.text, length=f.length, width=width))
    if f.sha256:
        parts.append(f"sha256={f.sha256[:16]}…")
    if not event.delivered:
        parts.append("[NOT DELIVERED]")
    if event.written is not None:
        parts.append(f"[{event.written.upper()} BY PROXY]")
    parts.extend(_violation_text(v) for v in f.violations)
    return head, " ".join(parts)


def render_action(event: MessageAction, *, width: int = DEFAULT_PREVIEW) -> str:
    """``14:03:07.123 #1 → held #4 message 7 text len=12 "order 42" (breakpoint 1)``."""
    parts = [format_time(event.ts), f"#{event.conn}", ARROWS.get(event.direction, event.direction),
             event.action]
    if event.held is not None:
        parts.append(f"#{event.held}")
    if event.message_no:
        parts.append(f"message {event.message_no}")
    parts.append(opcode_name(event.opcode))
    if event.opcode == 8:
        code = event.close_code
        parts.append("(no status code)" if code is None else f"{code} ({close_code_meaning(code)})")
        if event.close_reason:
            parts.append(preview(event.close_reason.encode(), text=True, width=width))
    else:
        parts.append(f"len={event.length}")
        if event.original is not None:
            parts.append(preview(event.original, text=event.opcode == 1, width=width))
            parts.append("→")
        parts.append(preview(event.payload, text=event.opcode in (1, 9, 10),
                             length=event.length, width=width))
    if event.by:
        parts.append(f"({event.by})")
    return " ".join(parts)


def _violation_text(v: Violation) -> str:
    # Notices are the inspector's own limits (a lost compression context), not a peer's fault.
    return f"{'ⓘ' if v.is_notice else '⚠'} {v.section}: {v.message}"


def _close_side(label: str, close: tuple[int | None, str] | None) -> str:
    if close is None:
        return f"{label}: no close frame"
    code, reason = close
    text = f"{label}: {code} ({close_code_meaning(code)})"
    return text + (f" {reason!r}" if reason else "")


def render_event(event: Event, *, width: int = DEFAULT_PREVIEW) -> str:
    """One log line for any event."""
    t = format_time(event.ts)
    if isinstance(event, FrameSeen):
        return render_frame(event, width=width)
    if isinstance(event, MessageSeen):
        m = event.message
        size = f"len={m.length}" + (f" wire_len={m.wire_len}" if m.compressed else "")
        body = preview(m.payload, text=m.opcode == 1, length=m.length, width=width)
        arrow = ARROWS.get(event.direction, event.direction)
        line = f"{t} #{event.conn} {arrow} message {opcode_name(m.opcode)} {size} frames={m.frames} {body}"
        return line + (f" ({m.note})" if m.note else "")
    if isinstance(event, ConnectionOpened):
        extras = []
        if event.subprotocol:
            extras.append(f"subprotocol={event.subprotocol}")
        if event.extensions:
            extras.append(f"extensions={event.extensions}")
        tail = (" " + " ".join(extras)) if extras else ""
        return f"{t} #{event.conn} open {event.client} {event.path} → {event.upstream}{tail}"
    if isinstance(event, ConnectionClosed):
        frames = event.frames
        nbytes = event.bytes
        return (
            f"{t} #{event.conn} closed by {event.initiator} ({event.how})"
            f" [{_close_side('client', event.client_close)};"
            f" {_close_side('upstream', event.upstream_close)}]"
            f" after {event.duration:.3f}s,"
            f" frames →{frames.get('c2s', 0)} ←{frames.get('s2c', 0)},"
            f" bytes →{nbytes.get('c2s', 0)} ←{nbytes.get('s2c', 0)}"
            + (f" ({event.detail})" if event.detail else "")
        )
    if isinstance(event, HandshakeRejected):
        origin = f" origin={event.origin}" if event.origin else ""
        rule = f" rule={event.rule}" if event.rule else ""
        return (
            f"{t} #{event.conn} rejected {event.client} {event.path}:"
            f" {event.status} by {event.by}: {event.reason}{origin}{rule}"
        )
    if isinstance(event, HttpExchange):
        if event.method == "CONNECT" and event.status == 200:  # a tunnel the proxy did not open
            return (f"{t} #{event.conn} tunnel {event.client} {event.path}"
                    f" {format_bytes(event.size)} {event.duration * 1000:.1f}ms")
        return (
            f"{t} #{event.conn} http {event.client} {event.method} {event.path}"
            f" {event.status} {format_bytes(event.size)} {event.duration * 1000:.1f}ms"
        )
    if isinstance(event, FaultInjected):
        arrow = f" {ARROWS.get(event.direction, event.direction)}" if event.direction else ""
        return f"{t} #{event.conn}{arrow} fault {event.fault}: {event.action}"
    if isinstance(event, MessageAction):
        return render_action(event, width=width)
    if isinstance(event, Notice):
        conn = f" #{event.conn}" if event.conn else ""
        return f"{t}{conn} {event.level}: {event.text}"
    raise TypeError(f"not an event: {event!r}")
