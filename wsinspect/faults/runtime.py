"""Faults plugged into a running relay (Trio glue between ``faults`` and ``relay.hooks``).

``install(relay)`` reads the relay's settings into a ``FaultPlan`` and registers, when there is
anything to do, a handshake gate (Origin policy, ``refuse``, ``delay-handshake``) and a session
hook. The session hook gives each connection its ``ConnectionFaults``: a frame stage per
direction that has frame faults, a ``ShapedSendStream`` around each peer's send side (latency,
throttle, and the exact byte count ``cut-after`` needs), the idle watcher and the
``close-after`` timers. Every fault that acts is published as ``FaultInjected``; frames a fault
does not deliver are published by the session with ``delivered=False``.

``FaultRuntime`` also carries out the run-time commands of ``faults.commands`` (idle-cut now,
set latency, add/clear faults), which ``install`` registers on the relay.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from wsinspect.events import FaultInjected
from wsinspect.faults.actions import Blackhole, CloseBoth, Cut, FaultAction, SessionAction, describe
from wsinspect.faults.commands import add_fault_commands
from wsinspect.faults.idle import IdlePolicy, watch_idle
from wsinspect.faults.plan import FaultPlan
from wsinspect.faults.shaping import ShapedSendStream, Shaper
from wsinspect.faults.spec import FaultSpec
from wsinspect.faults.stages import ConnectionFaults, DirectionFaults
from wsinspect.wire.sides import DIRECTIONS, Direction

if TYPE_CHECKING:
    from wsinspect.relay.hooks import FrameIn, HandshakeInfo, Refusal
    from wsinspect.relay.server import Relay
    from wsinspect.relay.session import Session

__all__ = ["FaultRuntime", "install"]


def install(relay: Relay) -> FaultRuntime:
    """Attach the settings' faults to ``relay`` and register the fault commands on it (call
    once per relay, before it listens: ``serve(..., attach=(install,))``)."""
    runtime = FaultRuntime(relay, FaultPlan.from_settings(relay.settings))
    runtime.activate()
    add_fault_commands(relay, runtime)
    return runtime


class _SessionActivity:
    """``Activity`` as the session keeps it (``last_data``/``last_control``)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def last(self, ignores_control: bool) -> float:
        t = self.session.traffic
        return t.last_data if ignores_control else max(t.last_data, t.last_control)


@dataclass
class ConnState:
    """What the runtime knows of one open connection."""

    session: Session
    faults: ConnectionFaults
    origin: str | None = None
    shaped: dict[str, ShapedSendStream] = field(default_factory=dict)
    staged: set[str] = field(default_factory=set)


class _SessionHook:
    """The runtime's session hook: ``setup`` runs synchronously before the pumps start (see
    ``relay.hooks``), the call itself for the session's lifetime."""

    def __init__(self, runtime: FaultRuntime) -> None:
        self.runtime = runtime

    def setup(self, session: Session) -> None:
        self.runtime.setup(session)

    async def __call__(self, session: Session) -> None:
        await self.runtime.watch(session)


class FaultRuntime:
    def __init__(self, relay: Relay, plan: FaultPlan) -> None:
        self.relay = relay
        self.plan = plan
        self.states: dict[int, ConnState] = {}
        self._origins: dict[int, str | None] = {}
        self._active = False

    # ---- wiring -----------------------------------------------------------------------------
    def activate(self) -> None:
        """Register the gate and the session hook once there is something to do (a relay
        without faults keeps its plain fast path)."""
        if self._active or not self.plan.active:
            return
        self._active = True
        self.relay.hooks.gates.append(self.gate)
        self.relay.hooks.session_hooks.append(_SessionHook(self))

    def publish(self, conn: int, action: FaultAction) -> None:
        event = FaultInjected(conn, time.time(), action.fault, action.action, action.direction,
                              dict(action.detail))
        self.relay.hub.publish(event)

    # ---- handshake --------------------------------------------------------------------------
    async def gate(self, info: HandshakeInfo) -> Refusal | None:
        origin = info.origin
        verdict = self.plan.gate(info.conn, info.path, origin)
        for action in verdict.actions:
            self.publish(info.conn, action)
        if verdict.refusal is not None:
            return verdict.refusal
        if verdict.delay:
            await trio.sleep(verdict.delay)
        self._origins[info.conn] = origin
        if len(self._origins) > 10_000:  # handshakes that failed upstream never get a session
            self._origins.pop(next(iter(self._origins)))
        return None

    # ---- per connection ---------------------------------------------------------------------
    def state(self, session: Session) -> ConnState:
        """The connection's state, created on first use (also for sessions that started
        before any fault existed)."""
        st = self.states.get(session.conn)
        if st is None:
            self._prune()
            origin = self._origins.pop(session.conn, None)
            faults = self.plan.for_connection(session.conn, session.path, origin)
            st = ConnState(session, faults, origin)
            self.states[session.conn] = st
        return st

    def setup(self, session: Session) -> None:
        """Before the session pumps its first byte: stages, send wrappers and timers."""
        st = self.state(session)
        self._attach(st)
        for seconds, action, report in st.faults.timers:
            session.start_soon(self._timer, st, seconds, action, report)

    async def watch(self, session: Session) -> None:
        """For the session's lifetime: the idle watcher, then forget the session."""
        st = self.state(session)
        try:
            if self.plan.idle is not None:
                await watch_idle(self.plan.idle, _SessionActivity(session),
                                 functools.partial(self._fire, st, "idle-timeout"))
            await trio.sleep_forever()
        finally:
            self.states.pop(session.conn, None)

    def _prune(self) -> None:
        """Forget connections that ended (those set up by a command rather than the hook)."""
        for conn in [c for c, st in self.states.items() if st.session.finished.is_set()]:
            del self.states[conn]

    def _attach(self, st: ConnState) -> None:
        """Wrap the send sides and install the stages the connection's faults need."""
        for d in DIRECTIONS:
            timing = st.faults.timing[d]
            df = st.faults.direction(d)
            if not (timing or df.specs) and d not in st.shaped:
                continue
            shaped = self._shaped(st, d)
            for spec in timing:
                if spec not in shaped.shaper.specs:
                    shaped.shaper.add(spec)
            if d not in st.staged:
                st.staged.add(d)
                st.session.set_stage(d, functools.partial(self._stage, st, df, d))

    def _shaped(self, st: ConnState, d: Direction) -> ShapedSendStream:
        shaped = st.shaped.get(d)
        if shaped is None:
            conn = st.session.conn
            shaper = Shaper(seed=self.plan.seed, conn=conn, direction=d)
            report = functools.partial(self.publish, conn)

            def wrap(inner: trio.abc.Stream) -> trio.abc.Stream:
                return ShapedSendStream(inner, shaper, report)

            wrapped = st.session.wrap_sender(d, wrap)
            assert isinstance(wrapped, ShapedSendStream)
            shaped = st.shaped[d] = wrapped
            st.session.start_soon(shaped.run)
        return shaped

    async def _stage(self, st: ConnState, df: DirectionFaults, d: Direction,
                     item: FrameIn) -> Sequence[bytes]:
        step = df.feed(item.frame, item.raw)
        for action in step.actions:
            self.publish(st.session.conn, action)
        if step.hold:
            await trio.sleep(step.hold)
        then = step.then
        if then is None:
            return step.outs
        shaped = st.shaped[d]
        if isinstance(then, Cut):
            # Forward exactly what fits the budget, then cut: the frame is not delivered.
            for out in step.outs:
                await shaped.send_all(out)
            await shaped.wait_written(shaped.queued)
            st.session.start_soon(self._act, st, then, "cut-after")
            return []
        target = shaped.queued + sum(len(o) for o in step.outs)
        st.session.start_soon(self._act_after, st, shaped, target, then, "close-after")
        return step.outs

    async def _act_after(self, st: ConnState, shaped: ShapedSendStream, target: int,
                         action: SessionAction, how: str) -> None:
        await shaped.wait_written(target)
        await self._act(st, action, how)

    async def _timer(self, st: ConnState, seconds: float, action: SessionAction,
                     report: FaultAction) -> None:
        await trio.sleep(seconds)
        await self._fire(st, report.fault, action, report)

    async def _fire(self, st: ConnState, how: str, action: SessionAction,
                    report: FaultAction) -> None:
        self.publish(st.session.conn, report)
        await self._act(st, action, how)

    async def _act(self, st: ConnState, action: SessionAction, how: str) -> None:
        session = st.session
        if isinstance(action, Cut):
            await session.cut(rst=action.rst, how=how)
        elif isinstance(action, CloseBoth):
            await session.close(action.code, action.reason, how=how)
        elif isinstance(action, Blackhole):
            session.blackhole(True)

    # ---- run-time commands (faults.commands) --------------------------------------------------
    async def idle_cut_now(self, session: Session) -> str:
        """Do now what the idle timeout would do (``close-tcp`` when none is configured)."""
        policy = self.plan.idle or IdlePolicy(0)
        action = policy.session_action()
        st = self.state(session)
        words = f"idle cut now (by request) → {describe(action)}"
        session.start_soon(
            self._fire, st, "idle-timeout", action,
            FaultAction("idle-timeout", words, None, {"action": policy.action, "manual": True}),
        )
        return f"#{session.conn}: {words}"

    def set_latency(self, session: Session, ms: float, jitter: float = 0.0) -> str:
        """Replace the latency of both directions of one connection (``ms <= 0`` removes it)."""
        st = self.state(session)
        for d in DIRECTIONS:
            st.faults.timing[d] = [s for s in st.faults.timing[d] if s.kind != "latency"]
            if d in st.shaped:
                st.shaped[d].shaper.remove("latency")
        if ms > 0:
            spec = FaultSpec("latency", ms=ms, jitter=jitter, given=("ms", "jitter"))
            st.faults.add(spec)
            self._attach(st)
            return f"#{session.conn}: latency {ms:g} ms" + (f" ± {jitter:g}" if jitter else "")
        return f"#{session.conn}: latency off"

    def add_fault(self, spec: FaultSpec, conn: int | None = None) -> str:
        """Add a fault to one open connection, or (``conn`` None) to the plan for new
        connections and to every open connection."""
        targets = [self.relay.sessions[conn]] if conn is not None else list(self.relay.sessions.values())
        if conn is None:
            self.plan.add(spec)
            self.activate()
        for session in targets:
            if not spec.matches_connection(session.path, self.state(session).origin):
                continue
            st = self.state(session)
            before = len(st.faults.timers)
            st.faults.add(spec)
            self._attach(st)
            for seconds, action, report in st.faults.timers[before:]:
                session.start_soon(self._timer, st, seconds, action, report)
        where = f"#{conn}" if conn is not None else "new and open connections"
        return f"fault {spec} added to {where}"

    def clear_faults(self, conn: int | None = None) -> str:
        """Remove the faults of one open connection, or of the plan and every open one
        (timers already running keep running until their connection ends)."""
        if conn is None:
            self.plan.clear()
        for c, st in list(self.states.items()):
            if conn is not None and c != conn:
                continue
            st.faults.c2s.clear()
            st.faults.s2c.clear()
            for d in DIRECTIONS:
                st.faults.timing[d] = []
                if d in st.shaped:
                    for kind in ("latency", "throttle"):
                        st.shaped[d].shaper.remove(kind)
        return "faults cleared" + (f" on #{conn}" if conn is not None else "")

    def describe(self) -> dict[str, Any]:
        """The plan and each open connection's faults, for ``ctl list``."""
        self._prune()
        return {
            "plan": [str(s) for s in self.plan.faults],
            "idle": None if self.plan.idle is None else {
                "timeout": self.plan.idle.timeout, "action": self.plan.idle.action,
                "ignores_control": self.plan.idle.ignores_control},
            "origin": {"allow": [p.text for p in self.plan.origin.patterns],
                       "require": self.plan.origin.require, "mode": self.plan.origin.mode},
            "connections": {c: [str(s) for s in st.faults.specs] for c, st in self.states.items()},
        }
