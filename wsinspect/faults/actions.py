"""What faults ask for (sans-IO): a report to publish, and actions on the whole session.

Faults never touch sockets. They return ``FaultAction`` records (published by the relay as
``events.FaultInjected``) and ``SessionAction`` values that the relay's session carries out:
``CloseBoth`` (a close frame to each side, then the closing handshake completes — RFC 6455 §7.1.2),
``Cut`` (both TCP connections end without close frames: FIN, or RST with ``rst``; a peer reports
1006, §7.1.5), and ``Blackhole`` (stop forwarding, keep both sockets open).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wsinspect.wire.sides import Direction

__all__ = ["Blackhole", "CloseBoth", "Cut", "FaultAction", "SessionAction", "describe"]


@dataclass(frozen=True, slots=True)
class FaultAction:
    """A fault acted: becomes ``FaultInjected(conn, ts, fault, action, direction, detail)``."""

    fault: str
    action: str
    direction: Direction | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CloseBoth:
    """Send a close frame with ``code``/``reason`` to both peers and finish the handshake."""

    code: int = 1001
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Cut:
    """End both TCP connections without close frames (``rst``: abortive close, RST)."""

    rst: bool = False


@dataclass(frozen=True, slots=True)
class Blackhole:
    """Stop forwarding in both directions; keep both connections open and silent."""


SessionAction = CloseBoth | Cut | Blackhole


def describe(action: SessionAction) -> str:
    """Words for the log: ``both TCP connections closed``, ``close frames 1001 sent to both``."""
    if isinstance(action, CloseBoth):
        return f"close frames {action.code} sent to both sides"
    if isinstance(action, Cut):
        return "both TCP connections reset (RST)" if action.rst else "both TCP connections closed"
    return "forwarding stopped, both connections kept open"
