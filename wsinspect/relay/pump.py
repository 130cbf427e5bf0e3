"""One direction of a relayed connection: read what one side sent, forward it to the other.

The chunk that came in is the chunk that goes out, so frame boundaries, RSV/opcode bits, mask
keys and invalid frames all pass unchanged (the design's fidelity promise). The same bytes feed
the direction's observer (``relay.observers``), which counts and publishes the frames. A
frame-aware path is taken only when something needs whole frames (a fault's stage, a blackhole,
a proxy-initiated close, a ``--strict`` violation); it goes back to chunk forwarding as soon as
it can.

A message gate (breakpoints) makes the direction collect whole messages and forward, replace or
drop them as the gate decides, and ``inject`` writes a message of the proxy's at the next
message boundary: both go through ``relay.actions``, the one path by which anything but the
peers writes frames.

A chunk's frames are published when it is received, before it is forwarded: the other
direction may publish while this send waits, and events must keep receive order (a reply is
never logged before the request it answers).

A pump decides nothing about how the connection ends: it reports to its ``Session`` what it
saw (a close frame passed, its sender ended, its receiver is gone), and the session asks the
lifecycle.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import trio

from wsinspect.events import Notice, Written
from wsinspect.relay.hooks import FrameIn, FrameStage, MessageGate
from wsinspect.relay.message_path import SENT, STAGE_HOLD_LIMIT, MessagePath
from wsinspect.relay.observers import FullObserver, Observer, Tier
from wsinspect.relay.transport import CAN_SPLICE, RAW_IO, Pipe, is_reset, open_pipe, splice
from wsinspect.wire.checks import Violation
from wsinspect.wire.frames import Frame
from wsinspect.wire.sides import RECEIVER, Direction, PeerEnd

if TYPE_CHECKING:
    from wsinspect.relay.session import Session

__all__ = ["RECEIVE_MAX", "RECEIVE_SIZE", "SENT", "STAGE_HOLD_LIMIT", "Pump", "peer_fault"]

# Read sizes adapt to the traffic: a read that fills the buffer means more is waiting, so the
# next one is bigger (fewer, larger chunks for big messages); a read far below it shrinks it
# back (a small allocation per read for small messages).
RECEIVE_SIZE = 64 * 1024
RECEIVE_MAX = 1 << 20
# Light tier, Linux: a payload at least this long that nobody needs to see goes from socket to
# socket through a pipe (splice(2)), never copied into Python.
SPLICE_MIN = 64 * 1024
YIELD_EVERY = 8  # a raw pump that never waits still lets other tasks run every this many reads
DENSE_CHUNK = 256  # full tier: a chunk with more frames than this yields before the next read
DENSE_READ = 4 * 1024  # ... and the next read is this small (at most ~600 frames, a few ms)
NO_FRAMES: list[Frame] = []  # shared, never appended to


def peer_fault(f: Frame) -> Violation | None:
    """The first violation of ``f`` that is the peer's fault (notices never act)."""
    for v in f.violations:
        if not v.is_notice:
            return v
    return None


class Pump(MessagePath):
    """Direction ``d`` of ``session``: reads ``src``, writes ``dst`` (one writer at a time:
    the pump, or the session sending a frame of its own), feeds ``observer``."""

    # Slotted: thousands of idle connections each hold two.
    __slots__ = (
        "base",
        "buf",
        "d",
        "dst",
        "hub",
        "idle",
        "lc",
        "observer",
        "pipe",
        "scope",
        "session",
        "src",
        "stage",
        "strict",
        "tail_forwarded",
        "traffic",
        "writing",
    )

    def __init__(self, session: Session, d: Direction, src: trio.abc.Stream,
                 dst: trio.abc.Stream, observer: Observer) -> None:
        self.session = session
        self.d = d
        self.src = src
        self.dst = dst
        self.observer = observer
        self.stage: FrameStage | None = None
        self.gate: MessageGate | None = None
        self.collected: list[FrameIn] = []  # a message collected for the gate, and its size
        self.collected_size = 0
        self.recompress_bits = 0  # re-compressing this direction (``message_path``)
        # (lists, not deques: thousands of idle connections each hold two pumps)
        self.injections: list[tuple[int, bytes, Written]] = []  # waiting for a boundary
        self.ahead: list[Frame] = NO_FRAMES  # the frame path: the chunk's frames, handled up
        self.ahead_at = 0  # ... to this index
        # (the session's, read on every chunk)
        self.hub = session.hub
        self.lc = session.lifecycle
        self.traffic = session.traffic
        self.strict = session.strict
        # Frame-aware path: bytes held from the stream offset ``base``.
        self.buf = bytearray()
        self.base = 0
        self.tail_forwarded = True  # is the frame in progress being passed?
        self.writing = False  # a send to dst is under way
        self.idle: trio.Event | None = None  # set on release, for a writer that waits
        self.scope: trio.CancelScope | None = None  # while running
        self.pipe: Pipe | None = None  # splice pipe, made on a first long payload

    # -- the one writer -------------------------------------------------------------------

    def at_boundary(self) -> bool:
        """No frame is partly forwarded: a frame of the proxy's may go in now."""
        if self.observer.frame_start >= self.base:
            return True  # no frame in progress, or it is held whole in the buffer
        return not self.tail_forwarded

    async def claim(self) -> None:
        """Become the one writer of ``dst``. Uncontended, this is one attribute check: the
        fast path stays cheap."""
        while self.writing:
            idle = self.idle
            if idle is None:
                idle = self.idle = trio.Event()
            await idle.wait()
        self.writing = True

    def release(self) -> None:
        self.writing = False
        idle = self.idle
        if idle is not None:
            self.idle = None
            idle.set()

    async def send(self, data: bytes) -> None:
        """Write to ``dst``, one writer at a time. On a plain socket the write is tried first,
        as in ``pass_chunk``: when it all goes, no trip through Trio's scheduler (the frame
        path writes a frame or a message at a time)."""
        await self.claim()
        try:
            dst = self.dst
            if RAW_IO and type(dst) is trio.SocketStream:
                try:
                    sent = os.write(dst.socket.fileno(), data)
                except BlockingIOError:
                    sent = 0
                except OSError as exc:
                    raise trio.BrokenResourceError(f"socket send failed: {exc}") from exc
                if sent == len(data):
                    return
                await dst.send_all(memoryview(data)[sent:] if sent else data)
            else:
                await dst.send_all(data)
        finally:
            self.release()

    def close_pipe(self) -> None:
        if self.pipe is not None:
            self.pipe.close()

    # -- reading --------------------------------------------------------------------------

    async def run(self, first: bytes) -> None:
        """Relay until the sender ends, the receiver is gone, or the session cancels."""
        src = self.src
        # A plain TCP socket is read directly (see ``pass_chunk``), trying the read first:
        # the wait on EAGAIN is the schedule point, so a reply goes on without a detour
        # through the run loop (round-trip latency). A pump that keeps finding data yields
        # every ``YIELD_EVERY`` reads, so a busy connection never starves the others. TLS
        # and test streams go through ``receive_some``.
        fd = src.socket.fileno() if RAW_IO and type(src) is trio.SocketStream else -1
        size = RECEIVE_SIZE
        # Where long payloads are spliced, reads stay small: they catch the headers, and the
        # payload that follows one is left in the kernel for splice.
        splicing = CAN_SPLICE and self.observer.tier is Tier.LIGHT
        max_size = RECEIVE_SIZE if splicing else RECEIVE_MAX
        unyielded = 0  # reads since the last schedule point
        with trio.CancelScope() as scope:
            self.scope = scope
            data = first
            while True:
                if not data:
                    spliced = 0
                    try:
                        if fd < 0:
                            data = bytes(await src.receive_some(size))
                        else:
                            unyielded += 1
                            if unyielded >= YIELD_EVERY:
                                unyielded = 0
                                await trio.lowlevel.checkpoint()
                            try:
                                # Inside a long payload nobody watches: splice, don't read.
                                want = self.splice_size() if splicing else 0
                                if want:
                                    assert self.pipe is not None
                                    spliced = splice(fd, self.pipe.write, want)
                                else:
                                    data = os.read(fd, size)
                            except BlockingIOError:
                                unyielded = 0
                                await trio.lowlevel.wait_readable(fd)
                                continue
                    except trio.ClosedResourceError:
                        return  # we closed it (the other side ended first)
                    except (trio.BrokenResourceError, OSError) as exc:
                        await self.sender_ended("rst" if is_reset(exc) else "error", exc)
                        return
                    if spliced:
                        if not await self.relay_spliced(spliced):
                            return
                        continue
                    if not data:  # end of stream (a read or a splice of 0 bytes)
                        await self.sender_ended("fin", None)
                        return
                    if len(data) == size:
                        size = min(size * 4, max_size)
                    elif len(data) < size >> 2:
                        size = max(size >> 2, RECEIVE_SIZE)
                counted = self.traffic.frames[self.d]
                if not await self.relay_chunk(data):
                    return
                data = b""
                if (
                    self.traffic.frames[self.d] - counted > DENSE_CHUNK
                    and self.observer.tier is not Tier.LIGHT
                ):
                    # Many small frames: full inspection costs Python work per frame (a MiB
                    # of 1-byte frames is ~150,000 events, about a second). Keep such reads
                    # small and yield after each, so a flood never stalls other connections.
                    size = DENSE_READ
                    unyielded = YIELD_EVERY

    async def sender_ended(self, how: PeerEnd, exc: BaseException | None) -> None:
        """The sender ended, maybe inside a frame a stage was holding: what came of that frame
        goes on first, as it came (the receiver gets every byte the sender sent)."""
        if self.collected and not await self.let_go_collected():
            return
        if self.buf and not await self.let_go_held():
            return
        await self.session.sender_ended(self.d, how, exc)

    def forwarding(self) -> bool:
        """Whether chunks pass on as they come (the fast path)."""
        return (
            self.stage is None
            and self.gate is None
            and not self.recompress_bits
            and self.lc.forwards
            and not self.buf
            and self.tail_forwarded
            and not self.collected
        )

    async def relay_chunk(self, data: bytes) -> bool:
        """Forward, inspect and publish one chunk; ``False`` when the pump must stop."""
        self.traffic.bytes[self.d] += len(data)
        if not self.strict and self.forwarding():
            ok = await self.pass_chunk(data, None)
        else:
            # --strict must see a chunk's violations before any of it goes on, and the header
            # of a frame before any of that frame does (``held_start``).
            inspected = self.inspect(data)
            if (self.forwarding() and not any(peer_fault(f) for f in inspected[0])
                    and self.held_start(self.base + len(data)) is False):
                ok = await self.pass_chunk(data, inspected)
            else:
                ok = await self.relay_frames(data, *inspected)
        if self.injections and ok:
            return await self.flush_injections()
        return ok

    def inspect(self, data: bytes, as_lines: bool = False) -> tuple[list[Frame], float, float]:
        """Feed ``data`` to the observer: ``(completed frames, wall time, trio time)``."""
        ts = time.time()
        now = trio.current_time()
        return self.observer.feed(data, ts, now, as_lines), ts, now

    # -- the fast paths -------------------------------------------------------------------

    async def pass_chunk(
        self, data: bytes, inspected: tuple[list[Frame], float, float] | None
    ) -> bool:
        """The chunk goes on exactly as it came.

        On a plain socket it is written first and inspected (unless ``inspected``) and
        published after, all before the first await: the receiver does not wait for the
        inspection, and no other task can run (and publish) in between, so events keep
        receive order. Trio's ``send_all`` only takes what one write could not."""
        if self.writing:
            await self.claim()
            if not self.forwarding():  # an action (a close, a blackhole) came meanwhile
                self.release()
                return await self.relay_frames(data, *(inspected or self.inspect(data)))
        else:
            self.writing = True
        dst = self.dst
        sent = 0
        failed: OSError | None = None
        if RAW_IO and type(dst) is trio.SocketStream:
            try:
                sent = os.write(dst.socket.fileno(), data)
            except BlockingIOError:
                pass
            except OSError as exc:
                failed = exc
        t = self.traffic
        first = t.seq + 1  # (before inspecting: the recording tier numbers frames there)
        frames, ts, now = inspected or self.inspect(data, as_lines=failed is None)
        closes = self.observer.publish(frames, ts, now, failed is None)
        if closes:
            self.lc.close_received(self.d)
        last = t.seq
        # Counted as handled before the await, so an action that looks meanwhile sees the
        # frame in progress as (being) forwarded and waits for its end.
        self.base += len(data)
        try:
            if failed is not None:
                raise trio.BrokenResourceError(f"socket send failed: {failed}") from failed
            if sent < len(data):
                await dst.send_all(memoryview(data)[sent:] if sent else data)
        except SENT as exc:
            if failed is None:  # published as delivered: say they were not
                self.not_delivered(first, last)
            await self.session.receiver_gone(self.d, exc)
            return False
        finally:
            self.release()
        if closes:
            await self.session.closes_passed(self.d, frames)
        return True

    def splice_size(self) -> int:
        """Bytes the next read may splice instead (0: read them): light tier, inside a long
        payload, forwarding as it comes to a plain socket."""
        n = self.observer.passing
        if n < SPLICE_MIN or type(self.dst) is not trio.SocketStream or not self.forwarding():
            return 0
        if self.pipe is None:
            self.pipe = open_pipe()  # size 0 (never splice) when out of fds
        return min(n, self.pipe.size)

    async def relay_spliced(self, n: int) -> bool:
        """``n`` payload bytes spliced into the pipe: count them, then splice them on to the
        receiver; ``False`` when the pump must stop."""
        self.traffic.bytes[self.d] += n
        self.observer.skip(n, trio.current_time())
        if self.writing:
            await self.claim()
        else:
            self.writing = True
        self.base += n  # handled before the await, as in ``pass_chunk``
        dst = self.dst
        assert isinstance(dst, trio.SocketStream) and self.pipe is not None
        out = dst.socket.fileno()
        r = self.pipe.read
        try:
            while n:
                try:
                    n -= splice(r, out, n)
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(out)
        except OSError as exc:
            await self.session.receiver_gone(self.d, exc)
            return False
        finally:
            self.release()
        return True

    def not_delivered(self, first: int, last: int) -> None:
        """Frames ``first``..``last`` were published as delivered before their send failed:
        say that they were not (events are published in receive order, so they cannot wait
        for the send)."""
        if last < first or not self.hub.wants_frames:
            return
        which = f"#{first}" if first == last else f"#{first} to #{last}"
        text = f"frames {which} ({self.d}) were not delivered: the {RECEIVER[self.d]} is gone"
        self.hub.publish(Notice(time.time(), "warning", text, self.session.conn))

    # -- the frame-aware path -------------------------------------------------------------

    async def relay_frames(self, data: bytes, frames: list[Frame], ts: float, now: float) -> bool:
        """Decide frame by frame what goes on. A run of frames that simply go on as they came
        (nothing acts on them) is published and sent in one write."""
        d = self.d
        buf = self.buf
        buf += data
        base = self.base
        lc = self.lc
        session = self.session
        observer = self.observer
        run: list[Frame] = []  # frames that go on as they came, from ``base`` on
        self.ahead = frames
        for i, f in enumerate(frames):
            self.ahead_at = i  # (``f`` is not handled until it has gone)
            wanted: bool | None = None  # the gate's answer for a message's first frame
            if f.start >= base:
                gate = self.gate
                if gate is not None and f.opcode in (1, 2) and not self.collected:
                    wanted = gate.wants(session, d, f)
                if (
                    self.stage is None
                    and f.opcode != 8
                    and lc.forwards
                    and not self.collected
                    and not self.recompress_bits
                    and not (self.strict and peer_fault(f))
                    and not wanted
                    and not self.injections
                ):
                    run.append(f)
                    continue
            if run:
                if not await self.send_run(run, ts, now):
                    return False
                base = self.base
                run = []
            if f.start < base:
                # Its start was already forwarded (or dropped): finish it the same way.
                n = f.end - base
                piece = bytes(buf[:n])
                if self.tail_forwarded and not lc.blackholed:
                    if not await self.forward(piece, [f], ts, now):
                        return False
                else:
                    observer.publish([f], ts, now, False)
                del buf[:n]
                base = self.base = f.end
                self.tail_forwarded = True
                if self.strict and peer_fault(f):
                    # Too long to hold back: it went on, and the connection closes after it.
                    await session.strict_close(d, f)
                await session.frame_passed(d)
            else:
                raw = bytes(buf[f.start - base : f.end - base])
                del buf[: f.end - base]
                base = self.base = f.end
                item = FrameIn(f, raw, d, ts, now)
                if self.gate is not None or self.collected or self.recompress_bits:
                    ok = await self.collect(item, wanted)
                else:
                    ok = await self.frame_in(item)
                if not ok:
                    return False
            self.ahead_at = i + 1
            if self.injections and not await self.flush_injections():
                return False
        self.ahead = NO_FRAMES
        if run and not await self.send_run(run, ts, now):
            return False
        if buf and self.strict:
            held = self.held_start(self.base + len(buf))
            if held is True:
                return True  # its header is incomplete: held until it is whole
            if held:  # stopped at its header: no byte of it goes on
                self.base += len(buf)
                buf.clear()
                self.tail_forwarded = False
                await session.strict_close(d, held)
                return True
        # The frame in progress: hold it for a stage or a gate, else pass (or drop) what came
        # of it. A frame too long to hold lets a collected message go first, as it came.
        if buf and (
            (self.stage is None and self.gate is None and not self.recompress_bits)
            or len(buf) > STAGE_HOLD_LIMIT
            or not lc.forwards
        ):
            if self.collected and not await self.let_go_collected():
                return False
            return await self.let_go_held()
        return True

    def held_start(self, end: int) -> Violation | bool:
        """--strict, a frame in progress whose start (read up to stream offset ``end``) has
        not gone on: ``True`` to hold it while its header is incomplete, the violation its
        header shows that stops it (``Checker.check_start``: a frame after a close frame, a
        length over a limit), ``False`` when it may go on (or no such frame is in progress)."""
        observer = self.observer
        if not self.base <= observer.frame_start < end or not isinstance(observer, FullObserver):
            return False
        frame = observer.inspector.parser.current
        if frame is None:
            return True
        faults = observer.inspector.checker.check_start(frame)
        return next((v for v in faults if not v.is_notice), False)

    async def frame_in(self, item: FrameIn) -> bool:
        """One complete frame: forward it, or what the stage makes of it; ``False`` when the
        pump must stop."""
        f = item.frame
        d = self.d
        ts, now = item.ts, item.received
        observer = self.observer
        session = self.session
        if not self.lc.forwards:
            observer.publish([f], ts, now, False)
            if f.opcode == 8:  # a reply to the proxy's close (nothing, in a blackhole)
                await session.close_consumed(d, f)
            return True
        if self.strict and peer_fault(f):
            observer.publish([f], ts, now, False)
            await session.strict_close(d, f)
            return True
        stage = self.stage
        if stage is None:
            return await self.forward(item.raw, [f], ts, now)
        try:
            outs = await stage(item)
        except trio.Cancelled:
            observer.publish([f], ts, now, False)
            raise
        if f.fin and f.opcode < 8 and f.message is not None:
            outs = self.keep_in_sync(item, outs)
        ok = True
        for out in outs:
            try:
                await self.send(out)
            except SENT as exc:
                ok = False
                await session.receiver_gone(d, exc)
                break
        if observer.publish([f], ts, now, bool(outs) and ok) and outs and ok:
            await session.closes_passed(d, [f])
        return ok

    async def send_run(self, run: list[Frame], ts: float, now: float) -> bool:
        """Publish and send a run of frames that go on as they came (they lie together at the
        start of the buffer); ``False`` when the receiver is gone."""
        n = run[-1].end - self.base
        raw = bytes(self.buf[:n])
        del self.buf[:n]
        self.base = run[-1].end  # handled before the await, as in ``pass_chunk``
        first = self.traffic.seq + 1
        self.observer.publish(run, ts, now)  # before the send: receive order
        try:
            await self.send(raw)
        except SENT as exc:
            self.not_delivered(first, self.traffic.seq)
            await self.session.receiver_gone(self.d, exc)
            return False
        return True

    async def let_go_held(self) -> bool:
        """Pass (or drop) the held start of the frame in progress; ``False`` when the receiver
        is gone."""
        base = self.base
        piece = bytes(self.buf)
        self.buf.clear()
        self.base = base + len(piece)
        lc = self.lc
        if lc.blackholed:
            forward = False
        elif self.observer.frame_start >= base:
            forward = lc.forwards  # a new frame: a pending close frame goes first
        else:
            forward = self.tail_forwarded  # the rest of a frame goes as its start went
        self.tail_forwarded = forward
        if forward:
            try:
                await self.send(piece)
            except SENT as exc:
                await self.session.receiver_gone(self.d, exc)
                return False
        return True

    async def forward(self, raw: bytes, fs: list[Frame], ts: float, now: float) -> bool:
        t = self.traffic
        first = t.seq + 1
        closes = self.observer.publish(fs, ts, now)  # before the send: receive order
        if closes:
            self.lc.close_received(self.d)
        last = t.seq
        try:
            await self.send(raw)
        except SENT as exc:
            self.not_delivered(first, last)
            await self.session.receiver_gone(self.d, exc)
            return False
        if closes:
            await self.session.closes_passed(self.d, fs)
        return True
