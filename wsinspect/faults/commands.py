"""The run-time fault commands, registered on a relay by ``faults.runtime.install``.

The TUI executes these objects with ``relay.execute``; the control socket builds them from the
requests named here (``idle-cut``, ``latency``, ``fault-add``, ``fault-clear``, ``faults``).
The ``FaultRuntime`` of the relay carries them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wsinspect.faults.spec import parse_fault
from wsinspect.relay.control import (
    ControlError,
    int_field,
    number_field,
    optional_int_field,
    session_of,
)

if TYPE_CHECKING:
    from wsinspect.faults.runtime import FaultRuntime
    from wsinspect.relay.server import Relay

__all__ = ["AddFault", "ClearFaults", "IdleCutNow", "ListFaults", "SetLatency", "add_fault_commands"]


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


def add_fault_commands(relay: Relay, runtime: FaultRuntime) -> None:
    """Register the fault commands on ``relay``, carried out by ``runtime``."""

    async def idle_cut_now(command: IdleCutNow) -> str:
        return await runtime.idle_cut_now(session_of(relay, command.conn))

    async def set_latency(command: SetLatency) -> str:
        if command.ms < 0 or command.jitter < 0:
            raise ControlError("latency and jitter are milliseconds ≥ 0")
        return runtime.set_latency(session_of(relay, command.conn), command.ms, command.jitter)

    async def add_fault(command: AddFault) -> str:
        try:
            spec = parse_fault(command.spec)
        except ValueError as exc:
            raise ControlError(str(exc)) from None
        if command.conn is not None:
            session_of(relay, command.conn)
        return runtime.add_fault(spec, command.conn)

    async def clear_faults(command: ClearFaults) -> str:
        if command.conn is not None:
            session_of(relay, command.conn)
        return runtime.clear_faults(command.conn)

    async def list_faults(command: ListFaults) -> dict[str, Any]:
        return runtime.describe()

    commands = relay.commands
    commands.add(IdleCutNow, idle_cut_now, request="idle-cut",
                 parse=lambda r: IdleCutNow(int_field(r, "conn")))
    commands.add(SetLatency, set_latency, request="latency", parse=lambda r: SetLatency(
        int_field(r, "conn"), number_field(r, "ms"), number_field(r, "jitter", 0.0)))
    commands.add(AddFault, add_fault, request="fault-add",
                 parse=lambda r: AddFault(str(r.get("spec", "")), optional_int_field(r, "conn")))
    commands.add(ClearFaults, clear_faults, request="fault-clear",
                 parse=lambda r: ClearFaults(optional_int_field(r, "conn")))
    commands.add(ListFaults, list_faults, request="faults")
