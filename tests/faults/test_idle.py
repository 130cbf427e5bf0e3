"""Idle timeouts with the autojump clock: an hour of silence tests in milliseconds."""

from __future__ import annotations

import pytest
import trio

from wsinspect.faults.actions import Blackhole, CloseBoth, Cut, FaultAction, SessionAction
from wsinspect.faults.idle import Activity, IdlePolicy, watch_idle

pytestmark = pytest.mark.trio


class Fired:
    def __init__(self) -> None:
        self.at: float | None = None
        self.action: SessionAction | None = None
        self.report: FaultAction | None = None

    async def __call__(self, action: SessionAction, report: FaultAction) -> None:
        self.at = trio.current_time()
        self.action, self.report = action, report


async def test_an_hour_of_silence_fires_after_exactly_an_hour(autojump_clock: object) -> None:
    start = trio.current_time()
    fired = Fired()
    with trio.fail_after(7200):
        await watch_idle(IdlePolicy(3600), Activity(start), fired)
    assert fired.at == pytest.approx(start + 3600)
    assert fired.action == Cut(rst=False)
    assert fired.report is not None
    assert fired.report.action == "idle timeout 3600 s fired → both TCP connections closed"


async def test_traffic_postpones_the_timeout(autojump_clock: object) -> None:
    start = trio.current_time()
    activity = Activity(start)
    fired = Fired()

    async def chatter() -> None:
        for _ in range(5):
            await trio.sleep(20)
            activity.touch(1, trio.current_time())

    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(chatter)
            await watch_idle(IdlePolicy(30), activity, fired)
    assert fired.at == pytest.approx(start + 100 + 30)


async def test_pings_count_as_activity_by_default(autojump_clock: object) -> None:
    start = trio.current_time()
    activity = Activity(start)
    activity.touch(9, start + 0)  # a ping

    async def pinger() -> None:
        await trio.sleep(25)
        activity.touch(9, trio.current_time())

    fired = Fired()
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pinger)
            await watch_idle(IdlePolicy(30), activity, fired)
    assert fired.at == pytest.approx(start + 55)


async def test_ignoring_control_frames_fires_despite_pings(autojump_clock: object) -> None:
    start = trio.current_time()
    activity = Activity(start)

    async def pinger() -> None:
        for _ in range(10):
            await trio.sleep(10)
            activity.touch(9, trio.current_time())

    fired = Fired()
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pinger)
            await watch_idle(IdlePolicy(30, ignores_control=True), activity, fired)
            nursery.cancel_scope.cancel()
    assert fired.at == pytest.approx(start + 30)


@pytest.mark.parametrize(
    ("action", "code", "expected", "words"),
    [
        ("close-tcp", 1001, Cut(False), "both TCP connections closed"),
        ("reset", 1001, Cut(True), "both TCP connections reset (RST)"),
        ("close-frame", 4000, CloseBoth(4000, "idle timeout"), "close frames 4000 sent to both sides"),
        ("blackhole", 1001, Blackhole(), "forwarding stopped, both connections kept open"),
    ],
)
async def test_each_idle_action(action: str, code: int, expected: SessionAction, words: str) -> None:
    policy = IdlePolicy(30, action, code)
    assert policy.session_action() == expected
    assert policy.fault_action().action == f"idle timeout 30 s fired → {words}"
