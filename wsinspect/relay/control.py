"""Commands that act on a running relay: the one path used by the TUI and the control socket.

A command is a small frozen dataclass; ``await relay.execute(command)`` runs the handler its
relay registered for its type and returns a JSON-friendly result. Each ``Relay`` holds its own
``Commands`` registry: the connection commands here are registered on every relay; what attaches
to a relay (faults) registers its own, with the control-socket request name that asks for them.
Unknown connections raise ``ControlError`` with a sentence for the user.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wsinspect.relay.server import Relay
    from wsinspect.relay.session import Session

__all__ = [
    "BlackholeConnection",
    "CloseConnection",
    "Commands",
    "ControlError",
    "CutConnection",
    "ListConnections",
    "add_connection_commands",
    "int_field",
    "number_field",
    "optional_int_field",
    "session_of",
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


Handler = Callable[[Any], Awaitable[Any]]
RequestParser = Callable[[dict[str, Any]], object]


class Commands:
    """One relay's commands: the handler of each command type, and the control-socket request
    names (``{"cmd": NAME, ...}``) with the parser that turns such a request into a command."""

    def __init__(self) -> None:
        self._handlers: dict[type, Handler] = {}
        self._requests: dict[str, RequestParser] = {}

    def add(self, command_type: type, handler: Handler, *, request: str | None = None,
            parse: RequestParser | None = None) -> None:
        """Register ``handler(command) -> result`` for ``command_type`` (a later one replaces
        it) and, with ``request``, the request name that ``parse(request) -> command`` reads."""
        self._handlers[command_type] = handler
        if request is not None:
            self._requests[request] = parse or (lambda _req: command_type())

    def __contains__(self, command_type: type) -> bool:
        return command_type in self._handlers

    async def execute(self, command: object) -> Any:
        handler = self._handlers.get(type(command))
        if handler is None:
            raise ControlError(f"unknown command {type(command).__name__}")
        return await handler(command)

    def from_request(self, request: dict[str, Any]) -> object:
        """The command a control-socket request asks for; ``ControlError`` if malformed."""
        name = request.get("cmd")
        parse = self._requests.get(name) if isinstance(name, str) else None
        if parse is None:
            raise ControlError(f"unknown command {name!r}")
        return parse(request)


def int_field(request: dict[str, Any], key: str, default: int | None = None) -> int:
    value = request.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ControlError(f"{key!r} must be an integer, not {value!r}")
    return value


def optional_int_field(request: dict[str, Any], key: str) -> int | None:
    return None if request.get(key) is None else int_field(request, key)


def number_field(request: dict[str, Any], key: str, default: float | None = None) -> float:
    value = request.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ControlError(f"{key!r} must be a number, not {value!r}")
    return float(value)


def session_of(relay: Relay, conn: int) -> Session:
    """The open session ``#conn`` of ``relay``; ``ControlError`` if there is none."""
    session = relay.sessions.get(conn)
    if session is None:
        raise ControlError(f"no open connection #{conn}")
    return session


def add_connection_commands(relay: Relay) -> None:
    """Register the commands every relay answers: list, close, cut, blackhole."""

    async def list_connections(command: ListConnections) -> list[dict[str, Any]]:
        return [
            {
                "conn": s.conn,
                "client": s.client,
                "path": s.path,
                "opened": s.opened_at,
                "frames": dict(s.traffic.frames),
                "bytes": dict(s.traffic.bytes),
                "blackholed": s.blackholed,
                "tier": s.tiers["c2s"].value,
            }
            for s in relay.sessions.values()
        ]

    async def close(command: CloseConnection) -> str:
        await session_of(relay, command.conn).close(command.code, command.reason)
        return f"#{command.conn} closed with {command.code}"

    async def cut(command: CutConnection) -> str:
        await session_of(relay, command.conn).cut(rst=command.rst)
        return f"#{command.conn} {'reset' if command.rst else 'cut'}"

    async def blackhole(command: BlackholeConnection) -> str:
        session_of(relay, command.conn).blackhole(command.on)
        return f"#{command.conn} {'blackholed' if command.on else 'forwarding again'}"

    commands = relay.commands
    commands.add(ListConnections, list_connections, request="list")
    commands.add(CloseConnection, close, request="close", parse=lambda r: CloseConnection(
        int_field(r, "conn"), int_field(r, "code", 1000), str(r.get("reason", ""))))
    commands.add(CutConnection, cut, request="cut",
                 parse=lambda r: CutConnection(int_field(r, "conn"), bool(r.get("rst", False))))
    commands.add(BlackholeConnection, blackhole, request="blackhole",
                 parse=lambda r: BlackholeConnection(int_field(r, "conn"), bool(r.get("on", True))))
