"""Latency, jitter and throttle as a send-stream wrapper, on memory streams with a fake clock."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from wsinspect.faults.actions import FaultAction
from wsinspect.faults.shaping import ShapedSendStream, Shaper
from wsinspect.faults.spec import parse_fault

pytestmark = pytest.mark.trio


async def arrivals(shaper: Shaper, sends: list[tuple[float, bytes]]) -> list[tuple[float, bytes]]:
    """Send each chunk at its time through a shaped stream; return (arrival time, chunk)."""
    left, right = trio.testing.memory_stream_pair()
    reports: list[FaultAction] = []
    shaped = ShapedSendStream(left, shaper, reports.append)
    got: list[tuple[float, bytes]] = []
    start = trio.current_time()
    expected = sum(len(c) for _, c in sends)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(shaped.run)

        async def sender() -> None:
            for at, chunk in sends:
                await trio.sleep_until(start + at)
                await shaped.send_all(chunk)

        nursery.start_soon(sender)
        total = 0
        while total < expected:
            data = await right.receive_some()
            got.append((round(trio.current_time() - start, 6), data))
            total += len(data)
        nursery.cancel_scope.cancel()
    return got


async def test_latency_delays_each_send_without_slowing_the_stream(autojump_clock: object) -> None:
    with trio.fail_after(60):
        got = await arrivals(Shaper([parse_fault("latency:ms=200")]),
                             [(0.0, b"a"), (0.01, b"b"), (0.02, b"c")])
    assert got == [(0.2, b"a"), (0.21, b"b"), (0.22, b"c")]


async def test_jitter_never_reorders(autojump_clock: object) -> None:
    shaper = Shaper([parse_fault("latency:ms=100,jitter=90")], seed=5)
    sends = [(i * 0.005, bytes([i])) for i in range(40)]
    with trio.fail_after(60):
        got = await arrivals(shaper, sends)
    assert b"".join(c for _, c in got) == bytes(range(40))
    times = [t for t, _ in got]
    assert times == sorted(times)
    assert len(set(times)) > 5  # jitter did vary the delays


async def test_seeded_jitter_repeats_exactly(autojump_clock: object) -> None:
    sends = [(i * 0.05, bytes([i])) for i in range(20)]
    runs = []
    for _ in range(2):
        shaper = Shaper([parse_fault("latency:ms=100,jitter=80")], seed=9, conn=3)
        with trio.fail_after(60):
            runs.append(await arrivals(shaper, sends))
    assert runs[0] == runs[1]


async def test_throttle_paces_bytes_per_second(autojump_clock: object) -> None:
    shaper = Shaper([parse_fault("throttle:rate=1000")])
    with trio.fail_after(60):
        got = await arrivals(shaper, [(0.0, b"x" * 500)] * 4)
    assert [t for t, _ in got] == [0.0, 0.5, 1.0, 1.5]


async def test_first_send_reports_the_fault_once() -> None:
    left, _right = trio.testing.memory_stream_pair()
    reports: list[FaultAction] = []
    shaped = ShapedSendStream(left, Shaper([parse_fault("latency:ms=5")]), reports.append)
    with trio.fail_after(5):
        await shaped.send_all(b"a")
        await shaped.send_all(b"b")
    assert [r.fault for r in reports] == ["latency"]
    assert reports[0].action == "frames delayed 5 ms (order kept)"


async def test_send_eof_waits_for_delayed_data(autojump_clock: object) -> None:
    left, right = trio.testing.lockstep_stream_pair()
    shaped = ShapedSendStream(left, Shaper([parse_fault("latency:ms=1000")]))
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(shaped.run)
            await shaped.send_all(b"last words")

            async def close_after() -> None:
                await shaped.send_eof()

            nursery.start_soon(close_after)
            data = b""
            while True:
                chunk = await right.receive_some()
                if not chunk:
                    break
                data += chunk
            nursery.cancel_scope.cancel()
    assert data == b"last words"


async def test_without_timing_faults_sends_go_straight_through() -> None:
    left, right = trio.testing.memory_stream_pair()
    shaped = ShapedSendStream(left, Shaper())
    with trio.fail_after(5):
        await shaped.send_all(b"now")  # no writer task running: it must not queue
        assert await right.receive_some() == b"now"


async def test_waiting_for_written_bytes_wakes_on_a_direct_send() -> None:
    left, right = trio.testing.memory_stream_pair()
    shaped = ShapedSendStream(left, Shaper())
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(shaped.wait_written, 3)
            await trio.testing.wait_all_tasks_blocked()
            await shaped.send_all(b"abc")
        assert await right.receive_some() == b"abc"
