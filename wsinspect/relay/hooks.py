"""Extension points of the relay: where policies and faults plug in.

Three small hooks, all optional, so the default relay stays "forward the chunk":

``Hooks.gates`` — handshake gates, awaited in order after the client's request is validated
    and *before* the proxy connects upstream. A gate gets a ``HandshakeInfo`` and returns
    ``None`` to let the handshake go on or a ``Refusal`` (``wsinspect.wire.refusal``, the one
    value every refused handshake is) to answer the client instead (Origin policy → 403, a
    refuse fault → 503); it may ``await trio.sleep(...)`` to delay the handshake. A refused
    handshake never reaches the upstream and is published as ``HandshakeRejected`` with the
    refusal's ``rule``/``origin`` (the request's Origin when the refusal names none), always
    ``by="proxy"``; the gate publishes its own ``FaultInjected`` if it wants one.

``Hooks.session_hooks`` — async callables ``hook(session)`` started in each session's nursery
    once both handshakes are done, and cancelled when the session ends (idle timers, "close
    after N seconds", attaching frame stages). They act through the session's methods:
    ``close()``, ``cut()``, ``blackhole()``, ``set_stage()``, ``start_soon()``, and read
    ``session.traffic``.
    A hook object may also have a synchronous ``setup(session)`` method: it is called once the
    session's nursery exists and before either pump reads a byte (install stages there, so
    that even the first frame goes through them); with ``setup_only = True`` it is not started
    as a task.

Frame stages — ``session.set_stage(direction, stage)`` installs an async callable
    ``stage(item: FrameIn) -> Sequence[bytes]`` on one direction. While a stage is installed
    that direction's pump works frame by frame: it holds each complete frame (up to
    ``STAGE_HOLD_LIMIT`` bytes; a longer frame streams through unstaged) and sends what the
    stage returns, in order: ``[item.raw]`` passes it, ``[]`` drops it (published with
    ``delivered=False``), ``[item.raw, item.raw]`` duplicates it, re-encoded fragments
    refragment it, extra frames inject. The stage may sleep (latency, throttle): the pump does
    not read while it waits, so order is kept and backpressure reaches the sender.
    ``set_stage(direction, None)`` returns to chunk forwarding.

Message gates — ``session.set_gate(direction, gate)`` installs a ``MessageGate`` (breakpoints)
    on one direction: the pump collects each data message the gate ``wants`` and forwards,
    replaces or drops it as ``await gate.decide(session, held)`` answers (``relay.actions``).

Send wrappers — ``session.wrap_sender(direction, wrap)`` replaces the stream a direction
    writes to with ``wrap(stream)`` (a shaper that delays or throttles bytes with its own task
    started with ``session.start_soon``). The session calls only ``send_all`` on it (``send_eof``/``aclose``
    when a side ends) and still closes the original sockets itself.

Session actions, callable from any task (a hook, a control command): ``await
    session.close(code, reason, client_code=None, how=...)`` sends close frames to both sides
    (never inside a frame already under way) and completes both closing handshakes;
    ``await session.cut(rst=False, how=...)`` ends both TCP connections (FIN, or RST);
    ``session.blackhole(True)`` stops forwarding and keeps the sockets; ``session.traffic.last_data``
    and ``.last_control`` are the ``trio.current_time()`` of the last data/control
    frame either way. ``how`` is what ``ConnectionClosed.how`` will say (a fault's name).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from wsinspect.wire.frames import Frame
from wsinspect.wire.refusal import Refusal
from wsinspect.wire.sides import Direction

if TYPE_CHECKING:
    import trio

    from wsinspect.relay.actions import Decision, HeldMessage
    from wsinspect.relay.session import Session

__all__ = [
    "FrameIn",
    "FrameStage",
    "HandshakeGate",
    "HandshakeInfo",
    "Hooks",
    "MessageGate",
    "Refusal",
    "SessionHook",
    "UpstreamConnector",
]


@dataclass(frozen=True, slots=True)
class HandshakeInfo:
    """What a gate sees of a validated client upgrade request (headers in order and case)."""

    conn: int
    client: str
    path: str
    headers: tuple[tuple[str, str], ...]

    @property
    def origin(self) -> str | None:
        for name, value in self.headers:
            if name.lower() == "origin":
                return value
        return None


@dataclass(slots=True)
class FrameIn:
    """One complete frame handed to a stage.

    ``raw`` is its exact wire bytes (header, mask key, masked payload); ``frame`` the parsed,
    checked frame; ``ts`` the wall time and ``received`` the ``trio.current_time()`` of the chunk
    that completed it; ``direction`` is ``c2s`` or ``s2c``.
    """

    frame: Frame
    raw: bytes
    direction: Direction
    ts: float
    received: float


HandshakeGate = Callable[[HandshakeInfo], Awaitable[Refusal | None]]
SessionHook = Callable[["Session"], Awaitable[None]]
FrameStage = Callable[[FrameIn], Awaitable[Sequence[bytes]]]
UpstreamConnector = Callable[[HandshakeInfo], Awaitable["trio.abc.Stream"]]


class MessageGate(Protocol):
    """Decides about whole data messages of one direction (see ``relay.actions``)."""

    def wants(self, session: Session, direction: Direction, frame: Frame) -> bool:
        """Whether the message that ``frame`` (its first frame) starts must be collected and
        decided on. Called once per data message: keep it cheap. A message in one frame is
        complete: ``frame.message`` is the whole of it, so a gate may decide for good here."""
        ...

    async def decide(self, session: Session, held: HeldMessage) -> Decision:
        """What becomes of the complete message; may wait (a breakpoint holds it: the
        direction waits behind it)."""
        ...


@dataclass(slots=True)
class Hooks:
    """The relay's plug-in points; lists may change at run time (new sessions see changes)."""

    gates: list[HandshakeGate] = field(default_factory=list)
    session_hooks: list[SessionHook] = field(default_factory=list)
    #: Replaces the connection to ``settings.upstream``: awaited (after the gates) with the
    #: validated request's ``HandshakeInfo``, it returns the stream the proxy's own handshake
    #: and then the session use instead of a TCP/TLS connection (an in-process server:
    #: ``wsinspect mock``). ``None``: connect to ``settings.upstream``.
    connect_upstream: UpstreamConnector | None = None
