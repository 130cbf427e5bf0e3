"""Breakpoints, held messages and injection on a running relay (Trio glue over ``relay.actions``).

``install(relay)`` arms the settings' breakpoints (``--break``, the config file) and registers
the commands of ``intercept.commands`` on the relay, so the TUI and ``wsinspect ctl`` reach
them. While at least one breakpoint is armed, every open connection has the ``Interceptor`` as
the message gate of both directions (``Session.set_gate``): a data message that a breakpoint
matches is held (the direction waits behind it) until it is resumed as it came, edited or
dropped. With none armed, the gates are removed and the connections forward chunks as they
come again. Every action is published as a ``MessageAction`` event.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from wsinspect.events import MessageAction, Notice
from wsinspect.intercept.breakpoints import Breakpoint, parse_breakpoint
from wsinspect.relay.actions import (
    DROP,
    FORWARD,
    Decision,
    Drop,
    HeldMessage,
    Replace,
    close_payload,
)
from wsinspect.relay.control import ControlError
from wsinspect.wire.sides import DIRECTIONS, Direction

if TYPE_CHECKING:
    from wsinspect.relay.server import Relay
    from wsinspect.relay.session import Session
    from wsinspect.wire.frames import Frame

__all__ = ["Held", "Interceptor", "install"]

PREVIEW = 60  # characters of a held message's preview in ``held``


def install(relay: Relay) -> Interceptor:
    """Arm the settings' breakpoints on ``relay`` and register the intercept commands (call
    once per relay, before it listens: ``serve(..., attach=(install,))``)."""
    from wsinspect.intercept.commands import add_intercept_commands

    interceptor = Interceptor(relay)
    for bp in relay.settings.breakpoints:
        interceptor.add(bp.spec)
    add_intercept_commands(relay, interceptor)
    return interceptor


@dataclass(slots=True)
class Held:
    """A message waiting for a decision, and who stopped it."""

    message: HeldMessage
    breakpoint: int
    since: float  # trio.current_time()
    decided: trio.Event = field(default_factory=trio.Event)
    decision: Decision = FORWARD
    by: str = ""

    def to_dict(self, now: float) -> dict[str, object]:
        m = self.message
        text = m.payload.decode("utf-8", "replace") if m.opcode == 1 else m.payload.hex()
        return {
            "id": m.id,
            "conn": m.conn,
            "dir": m.direction,
            "age": round(now - self.since, 3),
            "opcode": m.opcode,
            "len": m.length,
            "message": m.message_no,
            "compressed": m.compressed,
            "breakpoint": self.breakpoint,
            "preview": text[:PREVIEW] + ("…" if len(text) > PREVIEW else ""),
        }


class Interceptor:
    """One relay's breakpoints and held messages; the message gate of its connections."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.breakpoints: list[Breakpoint] = []
        self.held: dict[int, Held] = {}
        self._next_breakpoint = 1
        self._next_held = 1
        relay.hooks.session_hooks.append(_SessionHook(self))

    # -- breakpoints ---------------------------------------------------------------------

    def add(self, spec: str) -> Breakpoint:
        """Arm a breakpoint (``BreakpointError`` if it does not parse) on every connection,
        open or to come."""
        bp = dataclasses.replace(parse_breakpoint(spec), id=self._next_breakpoint)
        self._next_breakpoint += 1
        self.breakpoints.append(bp)
        for session in list(self.relay.sessions.values()):
            self.attach(session)
        return bp

    def remove(self, ident: int | None = None) -> int:
        """Disarm one breakpoint, or all with ``None``; how many were removed. Held messages
        stay held."""
        before = len(self.breakpoints)
        if ident is None:
            self.breakpoints.clear()
        else:
            self.breakpoints = [b for b in self.breakpoints if b.id != ident]
            if len(self.breakpoints) == before:
                raise ControlError(f"no breakpoint {ident} (see 'break list')")
        if not self.breakpoints:
            for session in list(self.relay.sessions.values()):
                for d in DIRECTIONS:
                    session.set_gate(d, None)
        return before - len(self.breakpoints)

    def attach(self, session: Session) -> None:
        if not self.breakpoints:
            return
        for d in DIRECTIONS:
            try:
                session.set_gate(d, self)
            except ControlError as exc:  # a light-tier connection: say so once
                self.relay.hub.publish(Notice(time.time(), "warning", str(exc), session.conn))
                return

    # -- the gate (``relay.hooks.MessageGate``) ------------------------------------------

    def wants(self, session: Session, direction: Direction, frame: Frame) -> bool:
        conn = session.conn
        message = frame.message
        if message is not None and not message.truncated:
            # A whole message in one frame: decided here, so the many that match nothing go
            # on with the frames around them (one write) instead of one by one.
            return any(b.matches(conn, direction, frame.opcode, message.payload)
                       for b in self.breakpoints)
        return any(b.could_match(conn, direction, frame.opcode) for b in self.breakpoints)

    async def decide(self, session: Session, held: HeldMessage) -> Decision:
        bp = next((b for b in self.breakpoints if b.matches(
            held.conn, held.direction, held.opcode, held.payload)), None)
        if bp is None:
            return FORWARD
        held.id = self._next_held
        self._next_held += 1
        entry = Held(held, bp.id, trio.current_time())
        self.held[held.id] = entry
        self._publish(entry, "held", by=f"breakpoint {bp.id}")
        try:
            await entry.decided.wait()
        finally:
            self.held.pop(held.id, None)
            if not entry.decided.is_set():  # the connection ended while it was held
                self._publish(entry, "dropped", by="connection ended")
        decision = entry.decision
        if isinstance(decision, Replace):
            self._publish(entry, "edited", payload=decision.payload, original=held.payload,
                          by=entry.by)
        else:
            self._publish(entry, "dropped" if isinstance(decision, Drop) else "resumed",
                          by=entry.by)
        return decision

    # -- acting on held messages ----------------------------------------------------------

    def get(self, ident: int) -> Held:
        entry = self.held.get(ident)
        if entry is None:
            raise ControlError(f"no held message {ident} (see 'held')")
        return entry

    def resume(self, ident: int, payload: bytes | None = None, *, by: str = "") -> Held:
        """Forward held message ``ident`` as it came, or ``payload`` in its place."""
        entry = self.get(ident)
        if payload is None:
            return self._decide(entry, FORWARD, by)
        m = entry.message
        if m.opcode == 1:
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ControlError(f"held message {ident} is text: the new payload must be "
                                   f"UTF-8 ({exc})") from None
        return self._decide(entry, Replace(payload), by)

    def drop(self, ident: int, *, by: str = "") -> Held:
        return self._decide(self.get(ident), DROP, by)

    def resume_all(self, *, by: str = "") -> list[int]:
        idents = sorted(self.held)
        for ident in idents:
            self._decide(self.held[ident], FORWARD, by)
        return idents

    def _decide(self, entry: Held, decision: Decision, by: str) -> Held:
        if entry.decided.is_set():
            raise ControlError(f"held message {entry.message.id} was already decided")
        entry.decision = decision
        entry.by = by
        entry.decided.set()
        return entry

    # -- injecting -------------------------------------------------------------------------

    async def inject(self, conn: int, direction: Direction, opcode: int, payload: bytes, *,
                     close_code: int | None = None, close_reason: str = "",
                     by: str = "") -> bool:
        """Send a message of the proxy's into connection ``conn`` (see ``Session.inject``);
        whether it went at once (else it waits for the message under way to end)."""
        session = self.relay.sessions.get(conn)
        if session is None:
            raise ControlError(f"no open connection #{conn}")
        if opcode == 8:
            try:
                payload = close_payload(close_code, close_reason)
            except ValueError as exc:
                raise ControlError(str(exc)) from None
        elif opcode == 1:
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ControlError(f"a text message must be UTF-8 ({exc})") from None
        return await session.inject(direction, opcode, payload, by=by)

    def _publish(self, entry: Held, action: str, *, payload: bytes | None = None,
                 original: bytes | None = None, by: str = "") -> None:
        m = entry.message
        out = m.payload if payload is None else payload
        event = MessageAction(
            m.conn, time.time(), action, m.direction, m.opcode,  # type: ignore[arg-type]
            out, m.length if payload is None else len(payload), m.id, m.message_no,
            original, by=by)
        self.relay.hub.publish(event)


class _SessionHook:
    """Gates a new connection before its first byte when breakpoints are armed (``setup``
    only: no task per connection)."""

    setup_only = True

    def __init__(self, interceptor: Interceptor) -> None:
        self.interceptor = interceptor

    def setup(self, session: Session) -> None:
        self.interceptor.attach(session)

    async def __call__(self, session: Session) -> None:
        return None
