"""Scripts in the proxy (``--script FILE``): hooks that rewrite, drop, delay and inject.

``install(relay)`` loads the settings' scripts and attaches them to the relay's hooks. For each
connection, the scripts as they are when it opens (``ScriptFile.refresh``: new connections get
new code) are its scripts until it ends:

- ``on_open(conn)`` runs once both handshakes are done, in the connection's own task, which then
  carries out what the scripts ask of ``conn`` (``send``, ``close``) in order;
- when a script has ``on_message``, the scripts are the message gate of both directions
  (``relay.actions``): each complete data message goes through their ``on_message`` in order,
  each seeing what the ones before made of it (``script.pipeline``). While a
  script's hook runs, its direction waits (order is kept); the other direction flows. A message
  in one frame that a plain (not ``async``) ``on_message`` leaves alone is decided at once and
  goes on with the frames around it, byte for byte;
- ``on_close(conn, info)`` runs when the connection ends.

An exception in a hook is published with its traceback (a ``Notice``) and the message goes on as
it came; with ``--script-errors close`` the connection is closed with 1011 instead. A script
that defines no ``on_message`` costs nothing per frame.
"""

from __future__ import annotations

import inspect
import time
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from wsinspect.events import MessageAction, Notice
from wsinspect.relay.actions import DROP, FORWARD, Decision, HeldMessage, Replace
from wsinspect.relay.control import ControlError
from wsinspect.script.api import ScriptMessage
from wsinspect.script.conn import CloseInfo, Conn
from wsinspect.script.loader import (
    ScriptError,
    ScriptFile,
    ScriptHooks,
    call_hook,
    script_traceback,
    watch,
)
from wsinspect.script.pipeline import Failed, through, through_now
from wsinspect.settings import ConfigError
from wsinspect.wire.sides import DIRECTIONS, Direction

if TYPE_CHECKING:
    from wsinspect.relay.server import Relay
    from wsinspect.relay.session import Session
    from wsinspect.wire.frames import Frame

__all__ = ["ScriptRuntime", "install", "load_scripts"]

CLOSE_HOOK_TIME = 1.0  # seconds an async on_close may take once its connection has ended


def load_scripts(paths: tuple[str, ...] | list[str]) -> list[ScriptFile]:
    """Load every ``--script`` file; ``ConfigError`` (file, line, what) for the first that
    does not load."""
    files = [ScriptFile(p) for p in paths]
    for f in files:
        try:
            f.load()
        except ScriptError as exc:
            raise ConfigError(f"--script {exc}") from None
    return files


def install(relay: Relay) -> ScriptRuntime | None:
    """Attach the settings' scripts to ``relay`` (``serve(..., attach=(install,))``)."""
    if not relay.settings.scripts:
        return None
    runtime = ScriptRuntime(relay, load_scripts(relay.settings.scripts),
                            close_on_error=relay.settings.script_errors == "close")
    relay.hooks.session_hooks.append(runtime)
    relay.tasks.append(partial(watch, runtime.files,
                               lambda level, text: runtime._notice(level, text, 0)))
    return runtime


class _Connection:
    """One connection's scripts, its ``conn``, and answers decided ahead (``wants``)."""

    __slots__ = ("conn", "decided", "failed", "hooks", "session")

    def __init__(self, session: Session, hooks: list[ScriptHooks], conn: Conn) -> None:
        self.session = session
        self.hooks = hooks
        self.conn = conn
        self.decided: dict[tuple[Direction, int], Decision] = {}
        self.failed: Failed = lambda hooks, exc: None  # (set by the runtime)


class ScriptRuntime:
    """The scripts of one relay: a session hook, and the message gate of its connections."""

    def __init__(self, relay: Relay, files: list[ScriptFile], *, close_on_error: bool = False) -> None:
        self.relay = relay
        self.files = files
        self.close_on_error = close_on_error
        self._connections: dict[int, _Connection] = {}

    # -- the session hook ------------------------------------------------------------------

    def setup(self, session: Session) -> None:
        """Before the connection's first byte: take the scripts as they are now, and become
        its message gate if one of them reads messages."""
        for f in self.files:
            error = f.refresh()
            if error is not None:
                self._notice("warning", f"script reload failed: {error}", 0)
        hooks = [f.hooks for f in self.files]
        conn = Conn(session.conn, session.path, send=self._sender(session),
                    close=self._closer(session), log=self._logger(session.conn),
                    start_soon=session.start_soon)
        state = self._connections[session.conn] = _Connection(session, hooks, conn)
        state.failed = lambda h, exc: self._failed(state, h, exc)
        conn._failed = lambda exc: self._failed(state, None, exc)
        self._describe(session, conn)
        if any(h.on_message is not None for h in hooks):
            for d in DIRECTIONS:
                session.set_gate(d, self)
        for h in hooks:  # a plain on_open runs before the first message is read
            if h.on_open is not None and not inspect.iscoroutinefunction(h.on_open):
                try:
                    h.on_open(conn)
                except Exception as exc:
                    self._failed(state, h, exc)

    async def __call__(self, session: Session) -> None:
        """The connection's own task: ``on_open``, then what the scripts ask of ``conn``,
        and ``on_close`` when it ends."""
        state = self._connections.get(session.conn)
        if state is None:
            return
        conn = state.conn
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(conn.run)
                for hooks in state.hooks:  # an async on_open runs beside the messages
                    if hooks.on_open is not None and inspect.iscoroutinefunction(hooks.on_open):
                        nursery.start_soon(self._run, state, hooks, hooks.on_open, conn)
                await trio.sleep_forever()
        finally:
            del self._connections[session.conn]
            await self._closed(state)

    def _describe(self, session: Session, conn: Conn) -> None:
        """Fill in what the handshakes said (``ConnectionOpened`` of this connection)."""
        opened = session.opened
        if opened is not None:
            conn.request_headers = opened.request_headers
            conn.response_headers = opened.response_headers
            conn.subprotocol = opened.subprotocol
            conn.extensions = opened.extensions

    async def _closed(self, state: _Connection) -> None:
        o = state.session.lifecycle.outcome()
        info = CloseInfo(o.initiator, o.how, o.code, o.reason, o.client_close, o.upstream_close)
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_HOOK_TIME):
            for hooks in state.hooks:
                if hooks.on_close is not None:
                    await self._run(state, hooks, hooks.on_close, state.conn, info)

    # -- the gate (``relay.hooks.MessageGate``) ----------------------------------------------

    def wants(self, session: Session, direction: Direction, frame: Frame) -> bool:
        state = self._connections.get(session.conn)
        if state is None:
            return False
        message = frame.message
        key = (direction, frame.message_no)
        if message is None or message.truncated or not all(
            h.sync_on_message or h.on_message is None for h in state.hooks
        ):
            return True  # decided when it is complete (and the hooks may wait)
        # A whole message in one frame and plain hooks: decided now, so the messages they
        # leave alone go on with the frames around them.
        msg = ScriptMessage(direction, frame.opcode == 1, message.payload)
        decision = self._decision(through_now(state.hooks, state.conn, msg, state.failed))
        if decision is FORWARD:
            return False
        state.decided[key] = decision
        return True

    async def decide(self, session: Session, held: HeldMessage) -> Decision:
        state = self._connections.get(session.conn)
        if state is None:
            return FORWARD
        decision = state.decided.pop((held.direction, held.message_no), None)
        if decision is None:
            msg = ScriptMessage(held.direction, held.opcode == 1, held.payload, held.length,
                                held.complete)
            decision = self._decision(await through(state.hooks, state.conn, msg, state.failed))
        if isinstance(decision, Replace) or decision is DROP:
            self._publish(held, decision)
        return decision

    @staticmethod
    def _decision(sent: list[tuple[int, bytes]] | None) -> Decision:
        if sent is None:
            return FORWARD
        if not sent:
            return DROP
        (opcode, payload), *more = sent
        return Replace(payload, opcode, tuple(more))

    def _publish(self, held: HeldMessage, decision: Decision) -> None:
        if isinstance(decision, Replace):
            event = MessageAction(held.conn, time.time(), "edited", held.direction, held.opcode,
                                  decision.payload, len(decision.payload), None,
                                  held.message_no, held.payload, by="script")
        else:
            event = MessageAction(held.conn, time.time(), "dropped", held.direction, held.opcode,
                                  held.payload, held.length, None, held.message_no, by="script")
        self.relay.hub.publish(event)

    # -- running hooks -----------------------------------------------------------------------

    async def _run(self, state: _Connection, hooks: ScriptHooks, fn: Any, *args: Any) -> Any:
        """Call a hook; an exception is published (and closes with 1011 if asked), never
        raised: one connection's error never reaches another."""
        try:
            return await call_hook(fn, *args)
        except Exception as exc:
            self._failed(state, hooks, exc)
            return None

    def _failed(self, state: _Connection, hooks: ScriptHooks | None, exc: BaseException) -> None:
        outcome = ("closing the connection (1011)" if self.close_on_error
                   else "the message goes on as it came")
        name = f"script {hooks.name}" if hooks is not None else "a script's task"
        self._notice("error", f"{name} failed ({outcome}):\n{script_traceback(exc)}",
                     state.conn.id)
        if self.close_on_error:
            state.session.start_soon(state.session.close, 1011, "script error")

    def _notice(self, level: str, text: str, conn: int) -> None:
        self.relay.hub.publish(Notice(time.time(), level, text, conn))

    # -- what ``conn`` does ------------------------------------------------------------------

    def _sender(self, session: Session) -> Any:
        async def send(direction: Direction, opcode: int, payload: bytes) -> None:
            try:
                await session.inject(direction, opcode, payload, by="script")
            except ControlError as exc:
                self._notice("warning", f"conn.send: {exc}", session.conn)
        return send

    def _closer(self, session: Session) -> Any:
        async def close(code: int, reason: str) -> None:
            await session.close(code, reason)
        return close

    def _logger(self, conn: int) -> Any:
        def log(text: str) -> None:
            self._notice("info", text, conn)
        return log
