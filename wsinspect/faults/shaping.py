"""Timing faults as a send-stream wrapper: latency with jitter, and a bandwidth throttle.

``Shaper`` is the sans-IO part: given the size of a send and the time it was asked for, it
says when the bytes may go out — ``now + latency ± jitter``, never before the previous send
(order is kept), and no faster than the throttle's bytes per second.

``ShapedSendStream`` wraps the stream toward one peer. ``send_all`` only queues (bounded, so a
slow line still pushes back on the sender) and returns, so the relay's pump keeps reading and a
frame's delay starts when it arrives rather than when the previous frame went out; ``run`` is
the writer task that sleeps until each send is due. ``send_eof`` and ``aclose`` wait for the
queue to drain first: a FIN arrives after the data it followed, as it would on a slow link.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import trio

from wsinspect.faults.actions import FaultAction
from wsinspect.faults.spec import FaultSpec
from wsinspect.faults.stages import make_rng
from wsinspect.wire.sides import Direction

__all__ = ["ShapedSendStream", "Shaper"]

QUEUE_DEPTH = 1024  # sends waiting in the writer's queue before send_all blocks


class Shaper:
    """When may ``n`` bytes asked to be sent at ``now`` go out?

    ``specs`` are ``latency`` and ``throttle`` faults; each fault has its own RNG (seeded from
    ``seed``, ``conn`` and ``direction``) so a seeded run repeats its delays exactly."""

    def __init__(self, specs: list[FaultSpec] | tuple[FaultSpec, ...] = (), *,
                 seed: int | None = None, conn: int = 0, direction: Direction = "c2s") -> None:
        self.direction = direction
        self._specs: list[tuple[FaultSpec, random.Random]] = []
        self._seed = seed
        self._conn = conn
        self._added = 0
        self._last = float("-inf")  # when the previous send went (or will go) out
        self._free = float("-inf")  # throttle: when the line is free again
        self._announced: set[int] = set()
        for spec in specs:
            self.add(spec)

    def add(self, spec: FaultSpec) -> None:
        rng = make_rng(self._seed, self._conn, f"{self.direction}-timing", self._added)
        self._added += 1
        self._specs.append((spec, rng))

    def remove(self, kind: str) -> None:
        self._specs = [(s, r) for s, r in self._specs if s.kind != kind]

    @property
    def specs(self) -> list[FaultSpec]:
        return [s for s, _ in self._specs]

    @property
    def active(self) -> bool:
        return bool(self._specs)

    def schedule(self, n: int, now: float) -> tuple[float, list[FaultAction]]:
        """``(when, reports)``: the time the send may start, and first-time reports."""
        at = now
        reports: list[FaultAction] = []
        for spec, rng in self._specs:
            if spec.kind == "latency":
                fires = rng.random() < spec.p
                jitter = rng.uniform(-spec.jitter, spec.jitter) if spec.jitter else 0.0
                if fires:
                    at += max(0.0, spec.ms + jitter) / 1000
        at = max(at, self._last)
        for spec, _ in self._specs:
            if spec.kind == "throttle":
                at = max(at, self._free)
                self._free = at + n / spec.rate
        self._last = at
        for spec, _ in self._specs:
            if id(spec) not in self._announced:
                self._announced.add(id(spec))
                reports.append(self._report(spec))
        return at, reports

    def _report(self, spec: FaultSpec) -> FaultAction:
        if spec.kind == "latency":
            spread = f" ± {spec.jitter:g}" if spec.jitter else ""
            return FaultAction("latency", f"frames delayed {spec.ms:g}{spread} ms (order kept)",
                               self.direction, {"ms": spec.ms, "jitter": spec.jitter})
        return FaultAction("throttle", f"bandwidth limited to {spec.rate} bytes/s",
                           self.direction, {"rate": spec.rate})


class ShapedSendStream(trio.abc.HalfCloseableStream):
    """Wraps the stream toward one peer with a ``Shaper``; start ``run`` in a nursery.

    Receiving is passed through untouched (the relay reads the same socket for the other
    direction). While the shaper has nothing installed and nothing is queued, ``send_all``
    writes straight through."""

    def __init__(self, inner: trio.abc.Stream, shaper: Shaper,
                 report: Callable[[FaultAction], None] | None = None) -> None:
        self.inner = inner
        self.shaper = shaper
        self._report = report
        self._send_ch, self._recv_ch = trio.open_memory_channel[tuple[float, bytes]](QUEUE_DEPTH)
        self.queued = 0  # bytes accepted by send_all
        self.written = 0  # bytes written to ``inner``
        self._progress = trio.Event()
        self._error: BaseException | None = None

    async def run(self) -> None:
        """The writer: send each queued chunk when it is due. Ends when the stream is closed
        or a write fails (the next ``send_all`` then raises)."""
        async with self._recv_ch:
            async for at, data in self._recv_ch:
                if at > trio.current_time():
                    await trio.sleep_until(at)
                try:
                    await self.inner.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    self._error = exc
                    self._wake()
                    return
                self.written += len(data)
                self._wake()

    def _wake(self) -> None:
        self._progress.set()
        self._progress = trio.Event()

    async def wait_written(self, target: int) -> None:
        """Wait until ``target`` bytes (counted from the start) have been written, or the
        writer failed."""
        while self.written < target and self._error is None:
            await self._progress.wait()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._error is not None:
            raise trio.BrokenResourceError("the shaped stream's writer failed") from self._error
        chunk = bytes(data)
        if not self.shaper.active and self.written == self.queued:
            self.queued += len(chunk)
            try:
                await self.inner.send_all(chunk)
            finally:
                self.written += len(chunk)
                self._wake()
            return
        at, reports = self.shaper.schedule(len(chunk), trio.current_time())
        if self._report is not None:
            for r in reports:
                self._report(r)
        self.queued += len(chunk)
        try:
            await self._send_ch.send((at, chunk))
        except (trio.ClosedResourceError, trio.BrokenResourceError) as exc:
            raise trio.BrokenResourceError("the shaped stream is closed") from exc

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.wait_written(self.queued)
        if isinstance(self.inner, trio.abc.HalfCloseableStream):
            await self.inner.send_eof()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        with trio.move_on_after(1.0):
            await self.wait_written(self.queued)
        await self._send_ch.aclose()
        await self.inner.aclose()
