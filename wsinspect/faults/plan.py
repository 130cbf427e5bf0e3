"""The proxy's fault plan: everything configured, asked once per handshake and per connection.

``FaultPlan.from_settings`` gathers the Origin policy, the idle policy, the ``--fault`` specs and
the seed. The relay calls ``gate`` before it connects upstream (refuse with a ``Refusal``, or
delay) and ``for_connection`` once both handshakes are done (the frame-level faults of that
connection).
``add``/``clear`` change the faults at run time (``wsinspect ctl fault ...``); they apply to
connections opened afterwards — a live connection's faults are changed through its
``ConnectionFaults`` (the relay's control commands do that).
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING

from wsinspect.faults.actions import FaultAction
from wsinspect.faults.idle import IdlePolicy
from wsinspect.faults.origin import OriginPolicy
from wsinspect.faults.spec import FaultSpec
from wsinspect.faults.stages import ConnectionFaults, make_rng
from wsinspect.wire.refusal import Refusal

if TYPE_CHECKING:
    from wsinspect.settings import Settings

__all__ = ["FaultPlan", "Gate"]


@dataclass(frozen=True, slots=True)
class Gate:
    """The handshake verdict. ``refusal`` set: answer the client with it and never contact
    the upstream. ``delay``: seconds to wait before connecting upstream. ``actions``: fault
    reports to publish."""

    refusal: Refusal | None = None
    delay: float = 0.0
    actions: tuple[FaultAction, ...] = ()

    @property
    def refused(self) -> bool:
        return self.refusal is not None


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Refused"


class FaultPlan:
    """Origin policy, idle policy and faults of one proxy run."""

    def __init__(
        self,
        origin: OriginPolicy | None = None,
        idle: IdlePolicy | None = None,
        faults: list[FaultSpec] | tuple[FaultSpec, ...] = (),
        seed: int | None = None,
    ) -> None:
        self.origin = origin or OriginPolicy()
        self.idle = idle
        self.faults: list[FaultSpec] = list(faults)
        self.seed = seed

    @classmethod
    def from_settings(cls, settings: Settings) -> FaultPlan:
        origin = OriginPolicy.build(settings.allow_origins, require=settings.require_origin,
                                    mode=settings.origin_mode)
        idle = None
        if settings.idle_timeout:
            idle = IdlePolicy(settings.idle_timeout, settings.idle_action,
                              settings.idle_close_code, settings.idle_ignores_control)
        return cls(origin, idle, settings.faults, settings.seed)

    @property
    def active(self) -> bool:
        return self.origin.active or self.idle is not None or bool(self.faults)

    # ---- run-time changes ------------------------------------------------------------------
    def add(self, spec: FaultSpec) -> None:
        self.faults.append(spec)

    def clear(self) -> None:
        self.faults.clear()

    # ---- per handshake / per connection -----------------------------------------------------
    def gate(self, conn: int, path: str, origin: str | None) -> Gate:
        """Judge one WebSocket handshake before the upstream is contacted."""
        check = self.origin.check(origin)
        actions: list[FaultAction] = []
        if not check.allowed:
            return Gate(Refusal(403, check.reason, body=f"403 Forbidden: {check.reason}\n".encode(),
                                rule=check.rule, origin=origin))
        if check.violation:
            actions.append(FaultAction(
                "origin", f"would refuse ({check.reason}); let through: --origin-mode report",
                None, {"origin": origin, "rule": check.rule, "mode": "report"}))
        delay = 0.0
        for index, spec in enumerate(self.faults):
            if spec.level != "handshake" or not spec.matches_connection(path, origin):
                continue
            if make_rng(self.seed, conn, "handshake", index).random() >= spec.p:
                continue
            if spec.kind == "refuse":
                reason = f"handshake refused by fault {spec}"
                text = spec.body or f"{spec.status} {_phrase(spec.status)}: {reason}"
                text = text if text.endswith("\n") else text + "\n"
                actions.append(FaultAction("refuse", f"handshake answered {spec.status}",
                                           None, {"status": spec.status}))
                refusal = Refusal(spec.status, reason, body=text.encode(), rule="fault:refuse",
                                  origin=origin)
                return Gate(refusal, actions=tuple(actions))
            delay += spec.ms / 1000
        if delay:
            actions.append(FaultAction("delay-handshake", f"handshake held {delay * 1000:g} ms",
                                       None, {"ms": delay * 1000}))
        return Gate(delay=delay, actions=tuple(actions))

    def for_connection(self, conn: int, path: str, origin: str | None) -> ConnectionFaults:
        """The frame- and session-level faults of one connection (may be empty)."""
        specs = [s for s in self.faults
                 if s.level != "handshake" and s.matches_connection(path, origin)]
        return ConnectionFaults(conn, specs, seed=self.seed)
