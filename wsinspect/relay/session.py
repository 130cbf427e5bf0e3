"""One relayed WebSocket connection: a nursery with two pumps, carrying out what is decided.

Each pump reads what one side sent and forwards it to the other side *as received*: the chunk
that came in is the chunk that goes out, so frame boundaries, RSV/opcode bits, mask keys and
invalid frames all pass unchanged (the design's fidelity promise). The same bytes feed the
direction's observer (``relay.observers``: light walker, recording lines or full inspector),
which counts and publishes the frames. A frame-aware path is taken only when something needs
whole frames (a fault's stage, a blackhole, a proxy-initiated close, a ``--strict``
violation); it goes back to chunk forwarding as soon as it can.

A chunk's frames are published when it is received, before it is forwarded: the other
direction may publish while this send waits, and events must keep receive order (a reply is
never logged before the request it answers).

How a connection ends is decided in ``relay.lifecycle``: the session tells it what happened
(a close frame passed, a peer ended TCP, a send failed, an action was asked for) and carries out
the commands it returns. Raw socket I/O (``os.read``/``os.write``, ``splice``, RST) is in
``relay.transport``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import trio

from wsinspect.events import ConnectionClosed, Notice
from wsinspect.relay.control import ControlError
from wsinspect.relay.hooks import FrameIn, FrameStage, SessionHook
from wsinspect.relay.lifecycle import (
    CLOSE_TIMEOUT,
    END_GRACE,
    Command,
    Deadline,
    Grace,
    Lifecycle,
    Phase,
    SendClose,
    SendFin,
    TearDown,
    Warn,
)
from wsinspect.relay.observers import Observer, Tier, Traffic, choose_tier, make_observer
from wsinspect.relay.transport import (
    CAN_SPLICE,
    RAW_IO,
    Pipe,
    close_streams,
    is_reset,
    open_pipe,
    splice,
)
from wsinspect.wire.checks import Violation
from wsinspect.wire.frames import Frame, encode_frame
from wsinspect.wire.sides import C2S, DIRECTIONS, RECEIVER, S2C, Direction

if TYPE_CHECKING:
    from wsinspect.hub import Hub

__all__ = ["RECEIVE_MAX", "RECEIVE_SIZE", "STAGE_HOLD_LIMIT", "Session"]

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
STAGE_HOLD_LIMIT = 16 << 20  # a stage sees whole frames up to this size

_SENT = (trio.BrokenResourceError, trio.ClosedResourceError)  # a send that found the peer gone


def _fault(f: Frame) -> Violation | None:
    """The first violation of ``f`` that is the peer's fault (notices never act)."""
    for v in f.violations:
        if not v.is_notice:
            return v
    return None


class Session:
    """One client ↔ upstream WebSocket connection after both handshakes.

    Public, for faults and the control path: ``conn``, ``client``, ``path``, ``opened_at``
    (wall time), ``traffic`` (frames and bytes per direction, ``last_data``/``last_control``:
    ``trio.current_time()`` of the last data and control frame either way), ``tiers``, and the
    actions ``close()``, ``cut()``, ``blackhole()``, ``set_stage()``, ``wrap_sender()``.
    """

    # Slotted: thousands of idle connections each hold one.
    __slots__ = (
        "_base",
        "_buf",
        "_dst",
        "_early",
        "_idle",
        "_lc",
        "_nursery",
        "_observe_args",
        "_observers",
        "_opened_mono",
        "_pipes",
        "_pump_scopes",
        "_scope",
        "_session_hooks",
        "_src",
        "_stages",
        "_tail_forwarded",
        "_writing",
        "client",
        "conn",
        "finished",
        "hub",
        "opened_at",
        "path",
        "strict",
        "traffic",
    )

    def __init__(
        self,
        hub: Hub,
        conn: int,
        client_stream: trio.abc.Stream,
        upstream_stream: trio.abc.Stream,
        *,
        client: str = "",
        path: str = "/",
        extensions: str | None = None,
        capture_limit: int = 1 << 20,
        strict: bool = False,
        max_message_size: int | None = None,
        session_hooks: Sequence[SessionHook] = (),
        tier: Tier | None = None,
    ) -> None:
        self.hub = hub
        self.conn = conn
        self.client = client
        self.path = path
        self.strict = strict
        self._session_hooks = tuple(session_hooks)
        self._dst: dict[Direction, trio.abc.Stream] = {C2S: upstream_stream, S2C: client_stream}
        self._src: dict[Direction, trio.abc.Stream] = {C2S: client_stream, S2C: upstream_stream}
        self.opened_at = time.time()
        self._opened_mono = trio.current_time()
        self.traffic = Traffic(self._opened_mono)
        self._observe_args = (capture_limit, extensions, max_message_size)
        if tier is None or strict:  # (the light tier only where nothing may ever look)
            tier = choose_tier(hub, strict=strict, control=True)[0]
        self._observers = {d: self._observer(d, tier) for d in DIRECTIONS}
        self._lc = Lifecycle()
        self._stages: dict[Direction, FrameStage | None] = {C2S: None, S2C: None}
        # Frame-aware path state, per direction: bytes held from the stream offset ``_base``.
        self._buf = {C2S: bytearray(), S2C: bytearray()}
        self._base = {C2S: 0, S2C: 0}
        self._tail_forwarded = {C2S: True, S2C: True}  # is the frame in progress being passed?
        self._writing = {C2S: False, S2C: False}  # a send to dst(direction) is under way
        self._idle: dict[Direction, trio.Event | None] = {C2S: None, S2C: None}  # on release
        self._pump_scopes: dict[Direction, trio.CancelScope] = {}
        self._pipes: dict[Direction, Pipe] = {}  # splice pipes, made on a first long payload
        self._scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        self._early: list[tuple[Callable[..., Awaitable[None]], tuple[Any, ...]]] = []
        self.finished = trio.Event()

    def _observer(self, d: Direction, tier: Tier) -> Observer:
        capture_limit, extensions, max_message_size = self._observe_args
        return make_observer(
            tier, d, self.conn, self.hub, self.traffic, capture_limit=capture_limit,
            extensions=extensions, max_message_size=max_message_size,
        )  # fmt: skip

    # -- what faults and the control path read ----------------------------------------------

    @property
    def tiers(self) -> dict[Direction, Tier]:
        """Each direction's inspection tier (``relay.observers``)."""
        return {d: obs.tier for d, obs in self._observers.items()}

    @property
    def blackholed(self) -> bool:
        return self._lc.blackholed

    @property
    def nursery(self) -> trio.Nursery:
        """The session's nursery (for tasks a fault runs for this connection)."""
        assert self._nursery is not None, "the session is not running"
        return self._nursery

    def publish(self, event: object) -> None:
        self.hub.publish(event)  # type: ignore[arg-type]

    # -- actions ------------------------------------------------------------------------------

    def set_stage(self, direction: Direction, stage: FrameStage | None) -> None:
        """Install (or with ``None`` remove) the frame stage of ``direction`` (see ``hooks``).

        A stage needs parsed frames: a direction in the light tier switches to full inspection
        if it has not seen a byte yet (a hook's ``setup``), and refuses the stage otherwise."""
        if stage is not None and self._observers[direction].tier is Tier.LIGHT:
            if self.traffic.bytes[direction]:  # bytes went by unparsed: too late to switch
                raise ControlError(
                    f"connection #{self.conn} uses the light inspection tier (nothing observed "
                    "its frames when it opened): frame faults cannot be added to it now"
                )
            tier, _why = choose_tier(self.hub, strict=self.strict, staged=True)
            self._observers[direction] = self._observer(direction, tier)
        self._stages[direction] = stage

    def wrap_sender(
        self, direction: Direction, wrap: Callable[[trio.abc.Stream], trio.abc.Stream]
    ) -> trio.abc.Stream:
        """Replace the stream that direction ``direction`` writes to with ``wrap(current)``
        and return the wrapper (latency/throttle shapers sit here). Only ``send_all`` (and
        ``send_eof``/``aclose`` when one side ends) are called on it; the session still closes
        the original sockets itself, so a wrapper must not own them."""
        wrapped = wrap(self._dst[direction])
        self._dst[direction] = wrapped
        return wrapped

    def blackhole(self, on: bool = True) -> None:
        """Stop (or resume) forwarding in both directions; sockets stay open and every frame
        received meanwhile is published with ``delivered=False``."""
        self._lc.blackhole(on)

    async def cut(
        self, *, rst: bool = False, how: str | None = None, detail: str | None = None
    ) -> None:
        """End both TCP connections now without close frames: FIN, or RST (SO_LINGER 0) with
        ``rst``. ``how`` names it in ``ConnectionClosed`` (default ``fin``/``rst``)."""
        await self._carry_out(self._lc.cut(rst=rst, how=how, detail=detail))
        await self.finished.wait()

    async def close(
        self,
        code: int = 1000,
        reason: str = "",
        *,
        client_code: int | None = None,
        how: str = "closed-by-proxy",
        timeout: float = CLOSE_TIMEOUT,  # noqa: ASYNC109 (a deadline the lifecycle keeps)
    ) -> None:
        """Send close frames to both sides (``client_code`` toward the client if different)
        and complete both closing handshakes (RFC 6455 §7.1.2): forwarding stops, each peer's
        close reply is consumed (published with ``delivered=False``), then both TCP connections
        end. Falls back to ending TCP after ``timeout`` seconds without both replies."""
        if not self.finished.is_set():
            close = self._lc.proxy_close(code, reason, client_code=client_code, how=how,
                                         timeout=timeout)  # fmt: skip
            await self._carry_out(close)
        await self.finished.wait()

    # -- carrying out the lifecycle's commands -------------------------------------------------

    async def _carry_out(self, commands: list[Command]) -> None:
        for command in commands:
            if isinstance(command, SendClose):
                if self._dst_at_boundary(command.direction):
                    await self._send_close(command)
                # else the pump sends it when the frame under way has passed (``_after_frame``)
            elif isinstance(command, SendFin):
                await self._send_fin(command.direction)
            elif isinstance(command, Grace):
                deadline = trio.current_time() + command.seconds
                for scope in self._pump_scopes.values():
                    scope.deadline = min(scope.deadline, deadline)
            elif isinstance(command, TearDown):
                if self._scope is not None:
                    self._scope.cancel()
            elif isinstance(command, Deadline):
                self._spawn(self._deadline, command.seconds)
            elif isinstance(command, Warn):
                self.hub.publish(Notice(time.time(), "warning", command.text, self.conn))

    def _spawn(self, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run ``fn(*args)`` in the session's nursery (started with it, if not running yet)."""
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)
        elif self._scope is None:  # not started yet (once it ran, nothing more starts)
            self._early.append((fn, args))

    async def _deadline(self, seconds: float) -> None:
        await trio.sleep(seconds)
        await self._carry_out(self._lc.deadline_passed())

    async def _send_close(self, command: SendClose) -> None:
        d = command.direction
        if self._lc.close_due(d) is None:
            return  # it went already
        self._lc.close_sent(d)
        payload = command.code.to_bytes(2, "big") + command.reason.encode()
        # Toward the upstream the proxy is a client and masks (§5.3); toward the client not.
        frame = encode_frame(8, payload, mask_key=os.urandom(4) if d == C2S else None)
        try:
            await self._send(d, frame)
        except _SENT:
            await self._carry_out(self._lc.close_not_sent(d))

    async def _send_fin(self, d: Direction) -> None:
        dst = self._dst[d]
        await self._claim(d)
        try:
            if isinstance(dst, trio.abc.HalfCloseableStream):
                await dst.send_eof()
            else:
                with trio.move_on_after(END_GRACE):
                    await dst.aclose()
        except (*_SENT, OSError):
            pass
        finally:
            self._release(d)

    async def _after_frame(self, d: Direction) -> None:
        """A frame that was already under way has passed: a close of the proxy's may go."""
        due = self._lc.close_due(d)
        if due is not None:
            await self._send_close(due)

    async def _ended_by(self, d: Direction, how: str, exc: BaseException | None) -> None:
        """The sender of direction ``d`` ended its side (FIN, RST or another error)."""
        detail = None if exc is None or how == "rst" else f"{type(exc).__name__}: {exc}"
        await self._carry_out(self._lc.peer_ended(d, how, detail))

    async def _peer_gone(self, d: Direction, exc: BaseException) -> None:
        """Sending to the receiver of ``d`` failed: that side is gone."""
        await self._carry_out(self._lc.receiver_gone(d, is_reset(exc)))

    async def _closes_passed(self, d: Direction, frames: list[Frame]) -> None:
        for f in frames:
            if f.opcode == 8:
                await self._carry_out(self._lc.close_relayed(d, f.close_code, f.close_reason or ""))

    async def _strict_close(self, d: Direction, f: Frame) -> None:
        """``--strict``: the lifecycle closes both sides; carried out in a task of its own, so
        this pump keeps reading (and consuming) while the close frames wait to be written."""
        v = _fault(f)
        assert v is not None
        commands = self._lc.violation(d, v.close_code, v.section, v.message)
        if commands:
            self._spawn(self._carry_out, commands)

    # -- running --------------------------------------------------------------------------

    async def run(self, client_first: bytes = b"", upstream_first: bytes = b"") -> None:
        """Relay until both sides ended; publish ``ConnectionClosed``. ``*_first`` are bytes
        that came with the handshakes (frames sent before or right after the 101)."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._scope = nursery.cancel_scope
                pumps_left = [2]

                async def pump(d: Direction, first: bytes) -> None:
                    try:
                        await self._pump(d, first)
                    finally:
                        pumps_left[0] -= 1
                        if pumps_left[0] == 0:
                            nursery.cancel_scope.cancel()  # stops session hooks too

                if self._lc.phase is Phase.TORN_DOWN:  # cut before it ran
                    nursery.cancel_scope.cancel()
                for hook in self._session_hooks:
                    setup = getattr(hook, "setup", None)
                    if setup is not None:
                        setup(self)  # synchronous: stages are in place before the first byte
                for fn, args in self._early:
                    nursery.start_soon(fn, *args)
                self._early.clear()
                nursery.start_soon(pump, S2C, upstream_first)
                for hook in self._session_hooks:
                    nursery.start_soon(hook, self)
                # The session's own task pumps client → upstream: one task fewer per connection.
                await pump(C2S, client_first)
        except Exception as exc:  # one connection's bug never takes the proxy down
            cause: BaseException = exc
            while isinstance(cause, BaseExceptionGroup) and len(cause.exceptions) == 1:
                cause = cause.exceptions[0]  # say what happened, not "exceptions from a nursery"
            self._lc.failed(f"{type(cause).__name__}: {cause}")
            self.hub.publish(Notice(time.time(), "error", f"relay error: {cause!r}", self.conn))
        finally:
            self._nursery = None
            for pipe in self._pipes.values():
                pipe.close()
            await close_streams((self._src[C2S], self._src[S2C]), reset=self._lc.reset)
            self._publish_closed()
            self.finished.set()

    def _publish_closed(self) -> None:
        o = self._lc.outcome()
        t = self.traffic
        self.hub.publish(
            ConnectionClosed(
                conn=self.conn,
                ts=time.time(),
                initiator=o.initiator,
                how=o.how,
                code=o.code,
                reason=o.reason,
                client_close=o.client_close,
                upstream_close=o.upstream_close,
                duration=trio.current_time() - self._opened_mono,
                frames=dict(t.frames),
                bytes=dict(t.bytes),
                detail=o.detail,
            )
        )

    def _dst_at_boundary(self, d: Direction) -> bool:
        """No frame of direction ``d`` is partly forwarded (a frame of ours may go in now)."""
        if self._observers[d].frame_start >= self._base[d]:
            return True  # no frame in progress, or it is held whole in the buffer
        return not self._tail_forwarded[d]

    async def _claim(self, d: Direction) -> None:
        """Become the one writer of direction ``d`` (the pump, or an action sending a close
        frame). Uncontended, this is one attribute check: the fast path stays cheap."""
        while self._writing[d]:
            idle = self._idle[d]
            if idle is None:
                idle = self._idle[d] = trio.Event()
            await idle.wait()
        self._writing[d] = True

    def _release(self, d: Direction) -> None:
        self._writing[d] = False
        idle = self._idle[d]
        if idle is not None:
            self._idle[d] = None
            idle.set()

    async def _send(self, d: Direction, data: bytes) -> None:
        """Write to the receiver of direction ``d``, one writer at a time."""
        await self._claim(d)
        try:
            await self._dst[d].send_all(data)
        finally:
            self._release(d)

    async def _pump(self, d: Direction, first: bytes) -> None:
        src = self._src[d]
        # A plain TCP socket is read directly (see ``_pass_chunk``), trying the read first:
        # the wait on EAGAIN is the schedule point, so a reply goes on without a detour
        # through the run loop (round-trip latency). A pump that keeps finding data yields
        # every ``YIELD_EVERY`` reads, so a busy connection never starves the others. TLS
        # and test streams go through ``receive_some``.
        fd = src.socket.fileno() if RAW_IO and type(src) is trio.SocketStream else -1
        size = RECEIVE_SIZE
        # Where long payloads are spliced, reads stay small: they catch the headers, and the
        # payload that follows one is left in the kernel for splice.
        splicing = CAN_SPLICE and self._observers[d].tier is Tier.LIGHT
        max_size = RECEIVE_SIZE if splicing else RECEIVE_MAX
        unyielded = 0  # reads since the last schedule point
        with trio.CancelScope() as scope:
            self._pump_scopes[d] = scope
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
                                want = self._splice_size(d) if splicing else 0
                                if want:
                                    spliced = splice(fd, self._pipes[d].write, want)
                                else:
                                    data = os.read(fd, size)
                            except BlockingIOError:
                                unyielded = 0
                                await trio.lowlevel.wait_readable(fd)
                                continue
                    except trio.ClosedResourceError:
                        return  # we closed it (the other side ended first)
                    except (trio.BrokenResourceError, OSError) as exc:
                        await self._ended_by(d, "rst" if is_reset(exc) else "error", exc)
                        return
                    if spliced:
                        if not await self._relay_spliced(d, spliced):
                            return
                        continue
                    if not data:  # end of stream (a read or a splice of 0 bytes)
                        await self._ended_by(d, "fin", None)
                        return
                    if len(data) == size:
                        size = min(size * 4, max_size)
                    elif len(data) < size >> 2:
                        size = max(size >> 2, RECEIVE_SIZE)
                counted = self.traffic.frames[d]
                if not await self._relay_chunk(d, data):
                    return
                data = b""
                if (
                    self.traffic.frames[d] - counted > DENSE_CHUNK
                    and self._observers[d].tier is not Tier.LIGHT
                ):
                    # Many small frames: full inspection costs Python work per frame (a MiB
                    # of 1-byte frames is ~150,000 events, about a second). Keep such reads
                    # small and yield after each, so a flood never stalls other connections.
                    size = DENSE_READ
                    unyielded = YIELD_EVERY

    def _forwarding(self, d: Direction) -> bool:
        """Whether direction ``d`` passes chunks on as they come (the fast path)."""
        return (
            self._stages[d] is None
            and self._lc.forwards
            and not self._buf[d]
            and self._tail_forwarded[d]
        )

    async def _relay_chunk(self, d: Direction, data: bytes) -> bool:
        """Forward, inspect and publish one chunk; ``False`` when the pump must stop."""
        self.traffic.bytes[d] += len(data)
        if not self.strict and self._forwarding(d):
            return await self._pass_chunk(d, data, None)
        # --strict must see a chunk's violations before any of it goes on.
        inspected = self._inspect(d, data)
        if self._forwarding(d) and not any(_fault(f) for f in inspected[0]):
            return await self._pass_chunk(d, data, inspected)
        return await self._relay_frames(d, data, *inspected)

    def _inspect(
        self, d: Direction, data: bytes, as_lines: bool = False
    ) -> tuple[list[Frame], float, float]:
        """Feed ``data`` to ``d``'s observer: ``(completed frames, wall time, trio time)``."""
        ts = time.time()
        now = trio.current_time()
        return self._observers[d].feed(data, ts, now, as_lines), ts, now

    async def _pass_chunk(
        self, d: Direction, data: bytes, inspected: tuple[list[Frame], float, float] | None
    ) -> bool:
        """The fast path: the chunk goes on exactly as it came.

        On a plain socket it is written first and inspected (unless ``inspected``) and
        published after, all before the first await: the receiver does not wait for the
        inspection, and no other task can run (and publish) in between, so events keep
        receive order. Trio's ``send_all`` only takes what one write could not."""
        if self._writing[d]:
            await self._claim(d)
            if not self._forwarding(d):  # an action (a close, a blackhole) came meanwhile
                self._release(d)
                return await self._relay_frames(d, data, *(inspected or self._inspect(d, data)))
        else:
            self._writing[d] = True
        dst = self._dst[d]
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
        frames, ts, now = inspected or self._inspect(d, data, as_lines=failed is None)
        closes = self._observers[d].publish(frames, ts, now, failed is None)
        last = t.seq
        # Counted as handled before the await, so an action that looks meanwhile sees the
        # frame in progress as (being) forwarded and waits for its end.
        self._base[d] += len(data)
        try:
            if failed is not None:
                raise trio.BrokenResourceError(f"socket send failed: {failed}") from failed
            if sent < len(data):
                await dst.send_all(memoryview(data)[sent:] if sent else data)
        except _SENT as exc:
            if failed is None:  # published as delivered: say they were not
                self._not_delivered(d, first, last)
            await self._peer_gone(d, exc)
            return False
        finally:
            self._release(d)
        if closes:
            await self._closes_passed(d, frames)
        return True

    def _splice_size(self, d: Direction) -> int:
        """Bytes the next read of ``d`` may splice instead (0: read them): light tier, inside
        a long payload, forwarding as it comes to a plain socket."""
        n = self._observers[d].passing
        if n < SPLICE_MIN or type(self._dst[d]) is not trio.SocketStream:
            return 0
        if not self._forwarding(d):
            return 0
        pipe = self._pipes.get(d)
        if pipe is None:
            pipe = self._pipes[d] = open_pipe()  # size 0 (never splice) when out of fds
        return min(n, pipe.size)

    async def _relay_spliced(self, d: Direction, n: int) -> bool:
        """The fast path for ``n`` payload bytes spliced into ``d``'s pipe: count them, then
        splice them on to the receiver; ``False`` when the pump must stop."""
        self.traffic.bytes[d] += n
        self._observers[d].skip(n, trio.current_time())
        if self._writing[d]:
            await self._claim(d)
        else:
            self._writing[d] = True
        self._base[d] += n  # handled before the await, as in ``_pass_chunk``
        dst = self._dst[d]
        assert isinstance(dst, trio.SocketStream)
        out = dst.socket.fileno()
        r = self._pipes[d].read
        try:
            while n:
                try:
                    n -= splice(r, out, n)
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(out)
        except OSError as exc:
            await self._peer_gone(d, exc)
            return False
        finally:
            self._release(d)
        return True

    def _not_delivered(self, d: Direction, first: int, last: int) -> None:
        """Frames ``first``..``last`` were published as delivered before their send failed:
        say that they were not (events are published in receive order, so they cannot wait
        for the send)."""
        if last < first or not self.hub.wants_frames:
            return
        which = f"#{first}" if first == last else f"#{first} to #{last}"
        text = f"frames {which} ({d}) were not delivered: the {RECEIVER[d]} is gone"
        self.hub.publish(Notice(time.time(), "warning", text, self.conn))

    async def _relay_frames(
        self, d: Direction, data: bytes, frames: list[Frame], ts: float, now: float
    ) -> bool:
        """The frame-aware path: decide frame by frame what goes on."""
        buf = self._buf[d]
        buf += data
        base = self._base[d]
        lc = self._lc
        observer = self._observers[d]
        for f in frames:
            if f.start < base:
                # Its start was already forwarded (or dropped): finish it the same way.
                n = f.end - base
                piece = bytes(buf[:n])
                if self._tail_forwarded[d] and not lc.blackholed:
                    if not await self._forward(d, piece, [f], ts, now):
                        return False
                else:
                    observer.publish([f], ts, now, False)
                del buf[:n]
                base = self._base[d] = f.end
                self._tail_forwarded[d] = True
                if self.strict and _fault(f):
                    # Too long to hold back: it went on, and the connection closes after it.
                    await self._strict_close(d, f)
                await self._after_frame(d)
                continue
            raw = bytes(buf[f.start - base : f.end - base])
            del buf[: f.end - base]
            base = self._base[d] = f.end
            if not lc.forwards:
                observer.publish([f], ts, now, False)
                if f.opcode == 8:  # a reply to the proxy's close (nothing, in a blackhole)
                    await self._carry_out(lc.close_consumed(d, f.close_code, f.close_reason or ""))
                continue
            if self.strict and _fault(f):
                observer.publish([f], ts, now, False)
                await self._strict_close(d, f)
                continue
            stage = self._stages[d]
            if stage is None:
                if not await self._forward(d, raw, [f], ts, now):
                    return False
                continue
            try:
                outs = await stage(FrameIn(f, raw, d, ts, now))
            except trio.Cancelled:
                observer.publish([f], ts, now, False)
                raise
            ok = True
            for out in outs:
                try:
                    await self._send(d, out)
                except _SENT as exc:
                    ok = False
                    await self._peer_gone(d, exc)
                    break
            if observer.publish([f], ts, now, bool(outs) and ok) and outs and ok:
                await self._closes_passed(d, [f])
            if not ok:
                return False
        # The frame in progress: hold it for a stage, else pass (or drop) what came of it.
        if buf and (self._stages[d] is None or len(buf) > STAGE_HOLD_LIMIT or not lc.forwards):
            piece = bytes(buf)
            buf.clear()
            self._base[d] = base + len(piece)
            if lc.blackholed:
                forward = False
            elif observer.frame_start >= base:
                forward = lc.forwards  # a new frame: a pending close frame goes first
            else:
                forward = self._tail_forwarded[d]  # the rest of a frame goes as its start went
            self._tail_forwarded[d] = forward
            if forward:
                try:
                    await self._send(d, piece)
                except _SENT as exc:
                    await self._peer_gone(d, exc)
                    return False
        return True

    async def _forward(
        self, d: Direction, raw: bytes, fs: list[Frame], ts: float, now: float
    ) -> bool:
        t = self.traffic
        first = t.seq + 1
        closes = self._observers[d].publish(fs, ts, now)  # before the send: receive order
        last = t.seq
        try:
            await self._send(d, raw)
        except _SENT as exc:
            self._not_delivered(d, first, last)
            await self._peer_gone(d, exc)
            return False
        if closes:
            await self._closes_passed(d, fs)
        return True
