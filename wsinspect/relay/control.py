"""Commands that act on a running relay: the one path used by the TUI and the control socket.

A command is a small frozen dataclass; ``await relay.execute(command)`` runs the handler
registered for its type and returns a JSON-friendly result. Faults add their own commands with
``@handles(TheirCommand)`` (a handler is ``async def handler(relay, command) -> result``).
Unknown connections raise ``ControlError`` with a sentence for the user.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from wsinspect.relay.server import Relay
    from wsinspect.relay.session import Session

__all__ = [
    "AddFault",
    "BlackholeConnection",
    "ClearFaults",
    "CloseConnection",
    "ControlError",
    "CutConnection",
    "IdleCutNow",
    "ListConnections",
    "ListFaults",
    "SetLatency",
    "execute",
    "handles",
]


class ControlError(Exception):
    """A command that cannot be carried out; ``str()`` says why."""


@dataclass(frozen=True, slots=True)
class ListConnections:
    """Open connections: ``[{"conn", "client", "path", "opened", "frames", "bytes", ...}]``."""


@dataclass(frozen=True, slots=True)
class CloseConnection:
    """Send close frames with ``code``/``reason`` to both sides and complete the handshake."""

    conn: int
    code: int = 1000
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CutConnection:
    """End both TCP connections without close frames: FIN, or RST with ``rst``."""

    conn: int
    rst: bool = False


@dataclass(frozen=True, slots=True)
class BlackholeConnection:
    """Stop (``on``) or resume forwarding on a connection, keeping its sockets open."""

    conn: int
    on: bool = True


Handler = Callable[["Relay", Any], Awaitable[Any]]
_HANDLERS: dict[type, Handler] = {}
C = TypeVar("C")


def handles(command_type: type) -> Callable[[Handler], Handler]:
    """Register the handler of ``command_type`` (one per type; a later one replaces it)."""

    def register(handler: Handler) -> Handler:
        _HANDLERS[command_type] = handler
        return handler

    return register


async def execute(relay: Relay, command: object) -> Any:
    handler = _HANDLERS.get(type(command))
    if handler is None:
        raise ControlError(f"unknown command {type(command).__name__}")
    return await handler(relay, command)


def _session(relay: Relay, conn: int) -> Session:
    session = relay.sessions.get(conn)
    if session is None:
        raise ControlError(f"no open connection #{conn}")
    return session


@handles(ListConnections)
async def _list(relay: Relay, command: ListConnections) -> list[dict[str, Any]]:
    return [
        {
            "conn": s.conn,
            "client": s.client,
            "path": s.path,
            "opened": s.opened_at,
            "frames": dict(s.traffic.frames),
            "bytes": dict(s.traffic.bytes),
            "blackholed": s.blackholed,
        }
        for s in relay.sessions.values()
    ]


@handles(CloseConnection)
async def _close(relay: Relay, command: CloseConnection) -> str:
    await _session(relay, command.conn).close(command.code, command.reason)
    return f"#{command.conn} closed with {command.code}"


@handles(CutConnection)
async def _cut(relay: Relay, command: CutConnection) -> str:
    await _session(relay, command.conn).cut(rst=command.rst)
    return f"#{command.conn} {'reset' if command.rst else 'cut'}"


@handles(BlackholeConnection)
async def _blackhole(relay: Relay, command: BlackholeConnection) -> str:
    _session(relay, command.conn).blackhole(command.on)
    return f"#{command.conn} {'blackholed' if command.on else 'forwarding again'}"


# ---- faults (wsinspect.faults.runtime carries them out) ----------------------------------------


@dataclass(frozen=True, slots=True)
class IdleCutNow:
    """Do to connection ``conn`` now what the idle timeout would do (``--idle-action``;
    ``close-tcp`` when no idle timeout is configured). Published as ``FaultInjected``."""

    conn: int


@dataclass(frozen=True, slots=True)
class SetLatency:
    """Delay every frame of ``conn`` by ``ms`` (± ``jitter``) in both directions, order kept;
    ``ms=0`` turns the latency off."""

    conn: int
    ms: float
    jitter: float = 0.0


@dataclass(frozen=True, slots=True)
class AddFault:
    """Add a fault in the ``--fault`` syntax to connection ``conn``, or (``conn=None``) to
    every open connection and to the connections opened from now on."""

    spec: str
    conn: int | None = None


@dataclass(frozen=True, slots=True)
class ClearFaults:
    """Remove the faults of ``conn``, or (``None``) all faults, for open and new connections."""

    conn: int | None = None


@dataclass(frozen=True, slots=True)
class ListFaults:
    """The configured faults, idle and Origin policies, and each open connection's faults."""


@handles(IdleCutNow)
async def _idle_cut_now(relay: Relay, command: IdleCutNow) -> str:
    from wsinspect.faults.runtime import runtime_of

    return await runtime_of(relay).idle_cut_now(_session(relay, command.conn))


@handles(SetLatency)
async def _set_latency(relay: Relay, command: SetLatency) -> str:
    from wsinspect.faults.runtime import runtime_of

    if command.ms < 0 or command.jitter < 0:
        raise ControlError("latency and jitter are milliseconds ≥ 0")
    return runtime_of(relay).set_latency(_session(relay, command.conn), command.ms, command.jitter)


@handles(AddFault)
async def _add_fault(relay: Relay, command: AddFault) -> str:
    from wsinspect.faults.runtime import runtime_of
    from wsinspect.faults.spec import parse_fault

    try:
        spec = parse_fault(command.spec)
    except ValueError as exc:
        raise ControlError(str(exc)) from None
    if command.conn is not None:
        _session(relay, command.conn)
    return runtime_of(relay).add_fault(spec, command.conn)


@handles(ClearFaults)
async def _clear_faults(relay: Relay, command: ClearFaults) -> str:
    from wsinspect.faults.runtime import runtime_of

    if command.conn is not None:
        _session(relay, command.conn)
    return runtime_of(relay).clear_faults(command.conn)


@handles(ListFaults)
async def _list_faults(relay: Relay, command: ListFaults) -> dict[str, Any]:
    from wsinspect.faults.runtime import runtime_of

    return runtime_of(relay).describe()
