"""The intercept commands a relay answers (TUI and ``wsinspect ctl``): breakpoints, held
messages, injection. Each is a frozen dataclass executed through ``relay.commands``; the
control-socket request names are ``break-add``, ``break-list``, ``break-clear``, ``held``,
``resume``, ``drop`` and ``send``."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from wsinspect.intercept.breakpoints import BreakpointError
from wsinspect.relay.control import ControlError, int_field, optional_int_field
from wsinspect.wire.sides import Direction

if TYPE_CHECKING:
    from wsinspect.intercept.runtime import Interceptor
    from wsinspect.relay.server import Relay

__all__ = [
    "AddBreakpoint",
    "ClearBreakpoints",
    "DropHeld",
    "ListBreakpoints",
    "ListHeld",
    "ResumeHeld",
    "SendMessage",
    "add_intercept_commands",
]

#: ``ctl send``'s kinds and their opcodes.
KINDS = {"text": 1, "binary": 2, "close": 8, "ping": 9, "pong": 10}
_TO = {"upstream": "c2s", "server": "c2s", "c2s": "c2s", "client": "s2c", "s2c": "s2c"}


@dataclass(frozen=True, slots=True)
class AddBreakpoint:
    """Arm a breakpoint (``intercept.breakpoints`` syntax) on every connection."""

    spec: str


@dataclass(frozen=True, slots=True)
class ListBreakpoints:
    """The armed breakpoints."""


@dataclass(frozen=True, slots=True)
class ClearBreakpoints:
    """Disarm breakpoint ``id``, or all of them."""

    id: int | None = None


@dataclass(frozen=True, slots=True)
class ListHeld:
    """The held messages: id, connection, direction, age, preview."""


@dataclass(frozen=True, slots=True)
class ResumeHeld:
    """Forward held message ``id`` as it came, or ``payload`` in its place; ``all`` forwards
    every held message as it came."""

    id: int | None = None
    payload: bytes | None = None
    all: bool = False
    by: str = "ctl"


@dataclass(frozen=True, slots=True)
class DropHeld:
    """Drop held message ``id``."""

    id: int
    by: str = "ctl"


@dataclass(frozen=True, slots=True)
class SendMessage:
    """Inject a message into connection ``conn`` toward ``to`` (``upstream`` or ``client``):
    ``kind`` is text, binary, ping, pong or close (``code``/``reason``)."""

    conn: int
    to: str
    kind: str
    payload: bytes = b""
    code: int | None = None
    reason: str = ""
    by: str = "ctl"

    @property
    def direction(self) -> Direction:
        d = _TO.get(self.to)
        if d is None:
            raise ControlError(f"--to {self.to!r}: send to upstream or client")
        return d  # type: ignore[return-value]


def _payload(request: dict[str, Any], key: str = "payload") -> bytes | None:
    """A request's payload: ``{"text": ...}`` or ``{"base64": ...}``."""
    if request.get("text") is not None:
        return str(request["text"]).encode()
    if request.get("base64") is not None:
        try:
            return base64.b64decode(str(request["base64"]), validate=True)
        except binascii.Error as exc:
            raise ControlError(f"{key}: not base64 ({exc})") from None
    return None


def add_intercept_commands(relay: Relay, interceptor: Interceptor) -> None:
    """Register the intercept commands on ``relay``."""

    async def add(command: AddBreakpoint) -> dict[str, object]:
        try:
            return interceptor.add(command.spec).to_dict()
        except BreakpointError as exc:
            raise ControlError(f"invalid breakpoint: {exc}") from None

    async def list_breakpoints(command: ListBreakpoints) -> list[dict[str, object]]:
        return [b.to_dict() for b in interceptor.breakpoints]

    async def clear(command: ClearBreakpoints) -> str:
        n = interceptor.remove(command.id)
        return f"{n} breakpoint{'s' if n != 1 else ''} removed"

    async def held(command: ListHeld) -> list[dict[str, object]]:
        now = trio.current_time()
        return [h.to_dict(now) for _, h in sorted(interceptor.held.items())]

    async def resume(command: ResumeHeld) -> str:
        if command.all:
            idents = interceptor.resume_all(by=command.by)
            return f"{len(idents)} held message{'s' if len(idents) != 1 else ''} resumed"
        if command.id is None:
            raise ControlError("resume which held message? give its id, or --all")
        interceptor.resume(command.id, command.payload, by=command.by)
        return f"held message {command.id} {'resumed' if command.payload is None else 'edited'}"

    async def drop(command: DropHeld) -> str:
        interceptor.drop(command.id, by=command.by)
        return f"held message {command.id} dropped"

    async def send(command: SendMessage) -> str:
        opcode = KINDS.get(command.kind)
        if opcode is None:
            raise ControlError(f"cannot send {command.kind!r}: text, binary, ping, pong or close")
        now = await interceptor.inject(
            command.conn, command.direction, opcode, command.payload,
            close_code=command.code, close_reason=command.reason, by=command.by)
        where = f"#{command.conn} → {command.to}"
        return f"{command.kind} sent to {where}" if now else (
            f"{command.kind} for {where} waits for the message under way to end")

    commands = relay.commands
    commands.add(AddBreakpoint, add, request="break-add",
                 parse=lambda r: AddBreakpoint(str(r.get("spec", ""))))
    commands.add(ListBreakpoints, list_breakpoints, request="break-list")
    commands.add(ClearBreakpoints, clear, request="break-clear",
                 parse=lambda r: ClearBreakpoints(optional_int_field(r, "id")))
    commands.add(ListHeld, held, request="held")
    commands.add(ResumeHeld, resume, request="resume", parse=lambda r: ResumeHeld(
        optional_int_field(r, "id"), _payload(r), bool(r.get("all", False))))
    commands.add(DropHeld, drop, request="drop", parse=lambda r: DropHeld(int_field(r, "id")))
    commands.add(SendMessage, send, request="send", parse=lambda r: SendMessage(
        int_field(r, "conn"), str(r.get("to", "")), str(r.get("kind", "text")),
        _payload(r) or b"", optional_int_field(r, "code"), str(r.get("reason", ""))))
