"""What the relay reports: the event types, slotted dataclasses (immutable by convention where
they are on the per-frame hot path, frozen elsewhere).

Every event is created by the relay (or a fault) in one place. Their one dict form (the
recording line and the ``--log-format json`` line) lives in ``wsinspect.recording.format``:
``to_dict(event)`` and ``event_from_dict(d)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from wsinspect.wire.frames import Frame
from wsinspect.wire.messages import Message
from wsinspect.wire.refusal import RefusedBy
from wsinspect.wire.sides import Direction, Initiator

__all__ = [
    "ActionKind",
    "ConnectionClosed",
    "ConnectionOpened",
    "Event",
    "FaultInjected",
    "FrameSeen",
    "HandshakeRejected",
    "HttpExchange",
    "MessageAction",
    "MessageSeen",
    "Notice",
    "Written",
]

Headers = tuple[tuple[str, str], ...]
# A frame the proxy wrote itself, and why: an edited message, an injected one, or a compressed
# message sent again compressed by the proxy (after an edit or drop under context takeover).
Written = Literal["edited", "injected", "recompressed"]
ActionKind = Literal["held", "resumed", "edited", "dropped", "injected"]


@dataclass(frozen=True, slots=True)
class ConnectionOpened:
    """Both handshakes completed; frames follow."""

    type: ClassVar[str] = "open"
    conn: int
    ts: float
    client: str
    path: str
    upstream: str
    request_headers: Headers = ()
    status: int = 101
    response_headers: Headers = ()
    subprotocol: str | None = None
    extensions: str | None = None


# FrameSeen and MessageSeen are not ``frozen``: a frozen dataclass's ``__init__`` sets every
# field through ``object.__setattr__`` and costs ~4x more (600 vs 150 ns), and the relay builds
# one of each per frame and per message on its hot path when something records or shows them.
# Treat them as immutable all the same (nothing assigns to them after creation; the value hash
# stays, as for ``wire.messages.Message``).
@dataclass(slots=True, unsafe_hash=True)
class FrameSeen:
    """One frame that passed (or, with ``delivered=False``, was received and not passed on).
    ``written`` marks a frame the proxy wrote itself (an edited or injected message): it
    crossed the wire toward the direction's receiver, but its sender never sent it."""

    type: ClassVar[str] = "frame"
    conn: int
    seq: int
    direction: Direction
    ts: float
    frame: Frame
    delivered: bool = True
    written: Written | None = None


@dataclass(slots=True, unsafe_hash=True)  # not frozen: see FrameSeen
class MessageSeen:
    """A complete data message (reassembled, and inflated when compressed)."""

    type: ClassVar[str] = "message"
    conn: int
    direction: Direction
    ts: float
    message: Message
    message_no: int = 0


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """Both sides of a relayed connection have ended.

    ``initiator`` is who ended it first (``client``, ``upstream`` or ``proxy``); ``how`` is
    ``close-handshake`` (both close frames passed), ``fin``, ``rst``, ``timeout``, ``error`` or a
    fault's name; ``code``/``reason`` are the first close frame's; ``client_close`` and
    ``upstream_close`` hold each side's ``(code, reason)`` when it sent a close frame.
    """

    type: ClassVar[str] = "close"
    conn: int
    ts: float
    initiator: Initiator
    how: str  # a wire.sides.Ending, or the name of the fault that acted
    code: int | None = None
    reason: str | None = None
    client_close: tuple[int | None, str] | None = None
    upstream_close: tuple[int | None, str] | None = None
    duration: float = 0.0
    frames: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class HandshakeRejected:
    """A WebSocket handshake that did not complete: refused by wsinspect (bad request, Origin
    policy, fault) or by the upstream, or failed upstream (502/504). ``status`` is what the
    client was answered."""

    type: ClassVar[str] = "rejected"
    conn: int
    ts: float
    client: str
    path: str
    status: int
    reason: str
    origin: str | None = None
    rule: str | None = None
    by: RefusedBy = "proxy"
    request_headers: Headers = ()


@dataclass(frozen=True, slots=True)
class HttpExchange:
    """A plain HTTP request passed through to the upstream (or refused)."""

    type: ClassVar[str] = "http"
    conn: int
    ts: float
    client: str
    method: str
    path: str
    status: int
    size: int
    duration: float


@dataclass(frozen=True, slots=True)
class FaultInjected:
    """A fault acted: ``fault`` names it (``idle-timeout``, ``latency``, ``origin``...),
    ``action`` says what it did in words a user reads in the log."""

    type: ClassVar[str] = "fault"
    conn: int
    ts: float
    fault: str
    action: str
    direction: Direction | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MessageAction:
    """Someone acted on a message of a live connection (``relay.actions``).

    ``action``: ``held`` (a breakpoint stopped it: ``held`` is its id until it is resumed,
    edited or dropped), ``resumed`` (forwarded as it came), ``edited`` (replaced: ``payload`` is
    what went out, ``original`` what the sender sent), ``dropped``, or ``injected`` (a message
    of the proxy's: ``payload``, and ``close_code``/``close_reason`` for a close frame).
    ``message_no`` is the sender's message number (0 for an injected one); ``payload`` is the
    message (inflated when compressed) up to the capture limit and ``length`` its full size;
    ``by`` says who asked (``breakpoint 2``, ``ctl``, ``tui``)."""

    type: ClassVar[str] = "action"
    conn: int
    ts: float
    action: ActionKind
    direction: Direction
    opcode: int
    payload: bytes = b""
    length: int = 0
    held: int | None = None
    message_no: int = 0
    original: bytes | None = None
    close_code: int | None = None
    close_reason: str | None = None
    by: str = ""


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should read that is not traffic: the proxy listening, a warning
    (``--insecure``, a public listen address), a recording write failure. ``conn`` is 0 when it
    concerns no connection."""

    type: ClassVar[str] = "notice"
    ts: float
    level: str  # "info", "warning" or "error"
    text: str
    conn: int = 0


Event = (
    ConnectionOpened
    | FrameSeen
    | MessageSeen
    | ConnectionClosed
    | HandshakeRejected
    | HttpExchange
    | FaultInjected
    | MessageAction
    | Notice
)
