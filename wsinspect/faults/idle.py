"""Idle timeouts: act on a connection when no frame has passed for a while.

Load balancers and NAT boxes end connections that have been quiet too long, usually without a
close frame, so the client sees 1006 (RFC 6455 §7.1.5) and whatever was in flight is lost.
``IdlePolicy`` says how long and what to do; ``Activity`` records when frames last passed (data
and control apart, because some middleboxes do not count pings and pongs as activity);
``watch_idle`` is the Trio task that sleeps until the deadline and fires once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import trio

from wsinspect.faults.actions import Blackhole, CloseBoth, Cut, FaultAction, SessionAction, describe
from wsinspect.faults.spec import IDLE_ACTIONS, parse_idle_action

__all__ = ["IDLE_ACTIONS", "Activity", "IdlePolicy", "LastActivity", "parse_idle_action", "watch_idle"]


class LastActivity(Protocol):
    def last(self, ignores_control: bool) -> float:
        """``trio.current_time()`` of the last frame (data only with ``ignores_control``)."""
        ...

@dataclass(frozen=True, slots=True)
class IdlePolicy:
    """``--idle-timeout``, ``--idle-action`` and ``--idle-ignores-control`` together."""

    timeout: float
    action: str = "close-tcp"
    code: int = 1001
    ignores_control: bool = False

    def session_action(self) -> SessionAction:
        if self.action == "reset":
            return Cut(rst=True)
        if self.action == "close-frame":
            return CloseBoth(self.code, "idle timeout")
        if self.action == "blackhole":
            return Blackhole()
        return Cut(rst=False)

    def fault_action(self) -> FaultAction:
        """The report: ``idle timeout 30 s fired → both TCP connections closed``."""
        return FaultAction(
            "idle-timeout",
            f"idle timeout {self.timeout:g} s fired → {describe(self.session_action())}",
            None,
            {"timeout": self.timeout, "action": self.action}
            | ({"code": self.code} if self.action == "close-frame" else {}),
        )


class Activity:
    """When frames last passed, on the Trio clock. ``touch`` is called for every frame."""

    __slots__ = ("control", "data")

    def __init__(self, now: float) -> None:
        self.data = now
        self.control = now

    def touch(self, opcode: int, now: float) -> None:
        if opcode >= 8:
            self.control = now
        else:
            self.data = now

    def last(self, ignores_control: bool) -> float:
        return self.data if ignores_control else max(self.data, self.control)


async def watch_idle(
    policy: IdlePolicy,
    activity: LastActivity,
    fire: Callable[[SessionAction, FaultAction], Awaitable[None]],
) -> None:
    """Sleep until ``policy.timeout`` has passed with no activity, then ``fire`` once.

    Each wake-up either fires or sleeps until a later deadline (activity moved it), so the loop
    ends; cancel the task to stop watching."""
    while True:
        deadline = activity.last(policy.ignores_control) + policy.timeout
        if trio.current_time() >= deadline:
            await fire(policy.session_action(), policy.fault_action())
            return
        await trio.sleep_until(deadline)
