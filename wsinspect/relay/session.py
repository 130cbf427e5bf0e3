"""One relayed WebSocket connection: a nursery with two pumps, and the actions faults use.

Each pump reads what one side sent and forwards it to the other side *as received*: the chunk
that came in is the chunk that goes out, so frame boundaries, RSV/opcode bits, mask keys and
invalid frames all pass unchanged (the design's fidelity promise). The same bytes feed the
direction's ``Inspector``, which yields frames for the events; when nothing can observe or alter
frames (no sink wants frames or messages, no ``--strict``, no frame stage, no control socket) a
``FrameWalker`` takes its place: the light tier, which only walks headers and counts. When a
recording is the only thing watching, the recording tier (``relay.lines``) turns the common
frames of each chunk into recording lines in C and leaves the rest to the inspector. A
frame-aware path is taken only when something needs whole frames (a fault's stage, a blackhole,
a proxy-initiated close, a ``--strict`` violation); it goes back to chunk forwarding as soon as
it can.

A chunk's frames are published when it is received, before it is forwarded: the other
direction may publish while this send waits, and events must keep receive order (a reply is
never logged before the request it answers).

How a connection ends is relayed, never decided by the proxy (RFC 6455 §7): close frames pass
like any frame; a FIN from one side becomes a FIN to the other, an RST an RST (SO_LINGER 0),
and the side that did not end is given ``END_GRACE`` seconds to follow before both are closed.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

import trio

from wsinspect.events import ConnectionClosed, FrameSeen, MessageSeen, Notice
from wsinspect.relay.control import ControlError
from wsinspect.relay.hooks import FrameIn, FrameStage, SessionHook
from wsinspect.relay.lines import LineTier
from wsinspect.relay.upstream import raw_socket
from wsinspect.wire.checks import Violation
from wsinspect.wire.frames import Frame, encode_frame
from wsinspect.wire.inspector import Inspector
from wsinspect.wire.walker import FrameWalker

if TYPE_CHECKING:
    from wsinspect.hub import Hub

__all__ = [
    "C2S",
    "CLOSE_TIMEOUT",
    "END_GRACE",
    "RECEIVE_MAX",
    "RECEIVE_SIZE",
    "S2C",
    "STAGE_HOLD_LIMIT",
    "Session",
]

C2S = "c2s"
S2C = "s2c"
SENDER = {C2S: "client", S2C: "upstream"}
OTHER = {C2S: S2C, S2C: C2S}

# Read sizes adapt to the traffic: a read that fills the buffer means more is waiting, so the
# next one is bigger (fewer, larger chunks for big messages); a read far below it shrinks it
# back (a small allocation per read for small messages).
RECEIVE_SIZE = 64 * 1024
RECEIVE_MAX = 1 << 20
# Light tier, Linux: a payload at least this long that nobody needs to see goes from socket to
# socket through a pipe (splice(2)), never copied into Python; PIPE_SIZE bytes at a time.
SPLICE_MIN = 64 * 1024
PIPE_SIZE = 1 << 20
CAN_SPLICE = hasattr(os, "splice")
# Plain sockets are read and written through their file descriptor (os.read/os.write), which
# works on POSIX only; elsewhere trio's receive_some/send_all do it all.
RAW_IO = os.name == "posix"
YIELD_EVERY = 8  # a raw pump that never waits still lets other tasks run every this many reads
DENSE_CHUNK = 256  # full tier: a chunk with more frames than this yields before the next read
DENSE_READ = 4 * 1024  # ... and the next read is this small (at most ~600 frames, a few ms)
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (named in the fcntl module from Python 3.10 on Linux)
END_GRACE = 1.0  # after one side ended, how long the other may take to follow
CLOSE_TIMEOUT = 5.0  # a proxy-initiated close waits this long for both close replies
STAGE_HOLD_LIMIT = 16 << 20  # a stage sees whole frames up to this size

_LINGER_RST = struct.pack("ii", 1, 0)


def _is_reset(exc: BaseException) -> bool:
    cur: BaseException | None = exc
    for _ in range(5):
        if cur is None:
            return False
        if isinstance(cur, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def _splice(src: int, dst: int, n: int) -> int:
    """Move up to ``n`` bytes between file descriptors in the kernel (Linux splice(2))."""
    return os.splice(src, dst, n, flags=os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK)


def _fault(f: Frame) -> Violation | None:
    """The first violation of ``f`` that is the peer's fault (notices never act)."""
    for v in f.violations:
        if not v.is_notice:
            return v
    return None


class Session:
    """One client ↔ upstream WebSocket connection after both handshakes.

    Public, for faults and the control path: ``conn``, ``client``, ``path``, ``opened_at``
    (wall time), ``last_data``/``last_control`` (``trio.current_time()`` of the last data and
    control frame in either direction), ``frames``/``bytes`` per direction, and the actions
    ``close()``, ``cut()``, ``blackhole()``, ``set_stage()``.
    """

    # Slotted: thousands of idle connections each hold one.
    __slots__ = (
        "_base",
        "_buf",
        "_close_done",
        "_close_replies",
        "_close_sent",
        "_closing",
        "_code",
        "_cut",
        "_dst",
        "_ended",
        "_idle",
        "_inspect_args",
        "_inspectors",
        "_light",
        "_lines",
        "_nursery",
        "_opened_mono",
        "_pipes",
        "_pump_scopes",
        "_relayed_closes",
        "_reset",
        "_scope",
        "_session_hooks",
        "_src",
        "_stages",
        "_tail_forwarded",
        "_wants_frames",
        "_writing",
        "blackholed",
        "bytes",
        "client",
        "close_frames",
        "conn",
        "finished",
        "frames",
        "hub",
        "last_control",
        "last_data",
        "opened_at",
        "path",
        "seq",
        "strict",
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
        light: bool = False,
    ) -> None:
        self.hub = hub
        self.conn = conn
        self.client = client
        self.path = path
        self.strict = strict
        self._session_hooks = tuple(session_hooks)
        self._dst = {C2S: upstream_stream, S2C: client_stream}
        self._src = {C2S: client_stream, S2C: upstream_stream}
        self._inspect_args = (capture_limit, extensions, max_message_size)
        self._light = light and not strict
        # The recording tier (``relay.lines``): a recording alone watches the frames.
        self._lines: LineTier | None = None
        if hub.line_sink is not None and LineTier.available and not strict:
            limit = capture_limit if max_message_size is None else min(capture_limit, max_message_size)  # fmt: skip
            self._lines = LineTier(conn, hub.line_sink, limit)
        self._inspectors: dict[str, Inspector | FrameWalker] = {}
        self._make_inspectors()
        self.opened_at = time.time()
        self._opened_mono = trio.current_time()
        self.last_data = self._opened_mono
        self.last_control = self._opened_mono
        self.frames = {C2S: 0, S2C: 0}
        self.bytes = {C2S: 0, S2C: 0}
        self.seq = 0
        self.close_frames: dict[str, tuple[int | None, str]] = {}
        self._relayed_closes: list[str] = []  # sides whose close frame was relayed, in order
        self.blackholed = False
        self._stages: dict[str, FrameStage | None] = {C2S: None, S2C: None}
        # Frame-aware path state, per direction: bytes held from the stream offset ``_base``.
        self._buf = {C2S: bytearray(), S2C: bytearray()}
        self._base = {C2S: 0, S2C: 0}
        self._tail_forwarded = {C2S: True, S2C: True}  # is the frame in progress being passed?
        self._writing = {C2S: False, S2C: False}  # a send to dst(direction) is under way
        self._idle: dict[str, trio.Event | None] = {C2S: None, S2C: None}  # woken on release
        # A proxy-initiated close: the close frame to send toward each direction's receiver.
        self._closing: dict[str, bytes] | None = None
        self._close_sent = {C2S: False, S2C: False}
        self._close_replies: set[str] = set()
        self._close_done = trio.Event()
        self._ended: tuple[str, str, str | None] | None = None  # initiator, how, detail
        self._code: tuple[int | None, str | None] | None = None
        self._reset = False
        self._cut = False  # cut() was called (maybe before run() started)
        self._pump_scopes: dict[str, trio.CancelScope] = {}
        self._pipes: dict[str, tuple[int, int, int]] = {}  # splice pipes: read fd, write fd, size
        self._scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        self.finished = trio.Event()
        self._wants_frames = hub.wants_frames

    # -- public actions -------------------------------------------------------------------

    @property
    def nursery(self) -> trio.Nursery:
        """The session's nursery (for tasks a fault runs for this connection)."""
        assert self._nursery is not None, "the session is not running"
        return self._nursery

    def publish(self, event: object) -> None:
        self.hub.publish(event)  # type: ignore[arg-type]

    @property
    def light(self) -> bool:
        """Whether this session runs the light inspection tier (headers walked, not parsed)."""
        return self._light

    def set_stage(self, direction: str, stage: FrameStage | None) -> None:
        """Install (or with ``None`` remove) the frame stage of ``direction`` (see ``hooks``).

        A stage needs fully parsed frames: a light session switches to full inspection if no
        byte has been inspected yet (a hook's ``setup``), and refuses the stage otherwise."""
        if stage is not None and self._light:
            if any(self.bytes.values()):  # bytes were inspected: too late to switch
                raise ControlError(
                    f"connection #{self.conn} uses the light inspection tier (nothing observed "
                    "its frames when it opened): frame faults cannot be added to it now"
                )
            self._light = False
            self._make_inspectors()
        self._stages[direction] = stage

    def _make_inspectors(self) -> None:
        capture_limit, extensions, max_message_size = self._inspect_args
        for d in (C2S, S2C):
            if self._light:
                self._inspectors[d] = FrameWalker(d, capture_limit=capture_limit)
            else:
                self._inspectors[d] = Inspector(
                    d,
                    capture_limit=capture_limit,
                    extensions=extensions,
                    max_message_size=max_message_size,
                )

    def wrap_sender(
        self, direction: str, wrap: Callable[[trio.abc.Stream], trio.abc.Stream]
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
        self.blackholed = on

    async def cut(self, *, rst: bool = False, how: str | None = None, detail: str | None = None) -> None:  # fmt: skip
        """End both TCP connections now without close frames: FIN, or RST (SO_LINGER 0) with
        ``rst``. ``how`` names it in ``ConnectionClosed`` (default ``fin``/``rst``)."""
        self._note_end("proxy", how or ("rst" if rst else "fin"), detail)
        self._reset = rst
        self._cut = True
        if self._scope is not None:
            self._scope.cancel()
        await self.finished.wait()

    async def close(
        self, code: int = 1000, reason: str = "", *, client_code: int | None = None,
        how: str = "closed-by-proxy", timeout: float = CLOSE_TIMEOUT,  # noqa: ASYNC109
    ) -> None:  # fmt: skip
        """Send close frames to both sides (``client_code`` toward the client if different)
        and complete both closing handshakes (RFC 6455 §7.1.2): forwarding stops, each peer's
        close reply is consumed (published with ``delivered=False``), then both TCP connections
        end. Falls back to ending TCP after ``timeout`` seconds without both replies."""
        if self._begin_close(code, reason, client_code, how):
            await self._finish_close(timeout, how)
        await self.finished.wait()

    def _begin_close(self, code: int, reason: str, client_code: int | None, how: str) -> bool:
        """Stop forwarding now (synchronously, so no later frame slips through)."""
        if self._closing is not None or self.finished.is_set():
            return False
        self._note_end("proxy", how, None)
        text = reason.encode()[:123]
        down = code if client_code is None else client_code
        # Toward the upstream the proxy is a client and masks (§5.3); toward the client not.
        self._closing = {
            C2S: encode_frame(8, code.to_bytes(2, "big") + text, mask_key=os.urandom(4)),
            S2C: encode_frame(8, down.to_bytes(2, "big") + text),
        }
        # A side that already sent its close frame will not send another.
        self._close_replies |= set(self.close_frames)
        return True

    async def _finish_close(self, timeout: float, how: str) -> None:  # noqa: ASYNC109
        for d in (C2S, S2C):
            if self._dst_at_boundary(d):
                await self._send_close(d)
        if len(self._close_replies) == 2:
            self._close_done.set()
        with trio.move_on_after(timeout):
            await self._close_done.wait()
        if not self._close_done.is_set():
            self._ended = ("proxy", "timeout", f"no close reply within {timeout:g} s after {how}")
        if self._scope is not None:
            self._scope.cancel()

    # -- running --------------------------------------------------------------------------

    async def run(self, client_first: bytes = b"", upstream_first: bytes = b"") -> None:
        """Relay until both sides ended; publish ``ConnectionClosed``. ``*_first`` are bytes
        that came with the handshakes (frames sent before or right after the 101)."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._scope = nursery.cancel_scope
                pumps_left = [2]

                async def pump(d: str, first: bytes) -> None:
                    try:
                        await self._pump(d, first)
                    finally:
                        pumps_left[0] -= 1
                        if pumps_left[0] == 0:
                            nursery.cancel_scope.cancel()  # stops session hooks too

                if self._cut:
                    nursery.cancel_scope.cancel()
                for hook in self._session_hooks:
                    setup = getattr(hook, "setup", None)
                    if setup is not None:
                        setup(self)  # synchronous: stages are in place before the first byte
                nursery.start_soon(pump, S2C, upstream_first)
                for hook in self._session_hooks:
                    nursery.start_soon(hook, self)
                # The session's own task pumps client → upstream: one task fewer per connection.
                await pump(C2S, client_first)
        except Exception as exc:  # one connection's bug never takes the proxy down
            cause: BaseException = exc
            while isinstance(cause, BaseExceptionGroup) and len(cause.exceptions) == 1:
                cause = cause.exceptions[0]  # say what happened, not "exceptions from a nursery"
            self._note_end("proxy", "error", f"{type(cause).__name__}: {cause}")
            self.hub.publish(Notice(time.time(), "error", f"relay error: {cause!r}", self.conn))
        finally:
            for r, w, size in self._pipes.values():
                if size:
                    os.close(r)
                    os.close(w)
            if not self._close_sockets():
                with trio.CancelScope(shield=True):
                    await self._close_streams()
            self._publish_closed()
            self.finished.set()

    def _close_sockets(self) -> bool:
        """Close both sides at once when both are plain TCP streams (the usual case), as
        ``SocketStream.aclose`` would minus its checkpoint: no await, so no shielded scope and
        no timeout scope per stream, a visible share of the cost of a short connection.
        ``False`` (nothing closed) when one is not, e.g. TLS: ``_close_streams`` then."""
        streams = (self._src[C2S], self._src[S2C])
        if not all(type(s) is trio.SocketStream for s in streams):
            return False
        for stream in streams:
            sock = cast(trio.SocketStream, stream).socket
            if self._reset:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            sock.close()  # wakes any task still waiting on it, as aclose does
        return True

    async def _close_streams(self) -> None:
        for stream in (self._src[C2S], self._src[S2C]):
            if self._reset:
                sock = raw_socket(stream)
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
                await trio.aclose_forcefully(stream)
                continue
            with (
                trio.move_on_after(0.5) as scope,
                contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError),
            ):
                await stream.aclose()
            if scope.cancelled_caught:
                await trio.aclose_forcefully(stream)

    def _note_end(self, initiator: str, how: str, detail: str | None) -> None:
        if self._ended is None:
            self._ended = (initiator, how, detail)

    def _outcome(self) -> tuple[str, str, str | None]:
        """``(initiator, how, detail)`` for ``ConnectionClosed``: a relayed close handshake
        wins over the TCP ends that follow it; a close frame left unanswered makes its sender
        the initiator and says how the other side ended."""
        relayed = self._relayed_closes
        if len(relayed) == 2:
            return relayed[0], "close-handshake", None
        initiator, how, detail = self._ended or ("proxy", "shutdown", None)
        if relayed and initiator not in ("proxy", relayed[0]):
            detail = f"the {initiator} ended TCP ({how}) without answering the close frame"
            initiator = relayed[0]
        return initiator, how, detail

    def _publish_closed(self) -> None:
        initiator, how, detail = self._outcome()
        code, reason = self._code or (None, None)
        self.hub.publish(
            ConnectionClosed(
                conn=self.conn,
                ts=time.time(),
                initiator=initiator,
                how=how,
                code=code,
                reason=reason,
                client_close=self.close_frames.get("client"),
                upstream_close=self.close_frames.get("upstream"),
                duration=trio.current_time() - self._opened_mono,
                frames=dict(self.frames),
                bytes=dict(self.bytes),
                detail=detail,
            )
        )

    def _frame_start(self, d: str) -> int:
        """Stream offset where direction ``d``'s frame in progress began (bytes fed so far
        when none is)."""
        insp = self._inspectors[d]
        p = insp if isinstance(insp, FrameWalker) else insp.parser
        return p.offset - p.pending

    def _dst_at_boundary(self, d: str) -> bool:
        """No frame of direction ``d`` is partly forwarded (a frame of ours may go in now)."""
        if self._frame_start(d) >= self._base[d]:
            return True  # no frame in progress, or it is held whole in the buffer
        return not self._tail_forwarded[d]

    async def _claim(self, d: str) -> None:
        """Become the one writer of direction ``d`` (the pump, or an action sending a close
        frame). Uncontended, this is one attribute check: the fast path stays cheap."""
        while self._writing[d]:
            idle = self._idle[d]
            if idle is None:
                idle = self._idle[d] = trio.Event()
            await idle.wait()
        self._writing[d] = True

    def _release(self, d: str) -> None:
        self._writing[d] = False
        idle = self._idle[d]
        if idle is not None:
            self._idle[d] = None
            idle.set()

    async def _send(self, d: str, data: bytes) -> None:
        """Write to the receiver of direction ``d``, one writer at a time."""
        await self._claim(d)
        try:
            await self._dst[d].send_all(data)
        finally:
            self._release(d)

    async def _send_close(self, d: str) -> None:
        assert self._closing is not None
        if self._close_sent[d]:
            return
        self._close_sent[d] = True
        try:
            await self._send(d, self._closing[d])
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._close_replies.add(SENDER[OTHER[d]])  # that peer is gone: no reply to wait for
            if len(self._close_replies) == 2:
                self._close_done.set()

    async def _pump(self, d: str, first: bytes) -> None:
        src = self._src[d]
        side = SENDER[d]
        # A plain TCP socket is read directly (see ``_pass_chunk``), trying the read first:
        # the wait on EAGAIN is the schedule point, so a reply goes on without a detour
        # through the run loop (round-trip latency). A pump that keeps finding data yields
        # every ``YIELD_EVERY`` reads, so a busy connection never starves the others. TLS
        # and test streams go through ``receive_some``.
        fd = src.socket.fileno() if RAW_IO and type(src) is trio.SocketStream else -1
        size = RECEIVE_SIZE
        # Where long payloads are spliced, reads stay small: they catch the headers, and the
        # payload that follows one is left in the kernel for splice.
        max_size = RECEIVE_SIZE if self._light and CAN_SPLICE else RECEIVE_MAX
        unyielded = 0  # reads since the last schedule point
        with trio.CancelScope() as scope:
            self._pump_scopes[d] = scope
            data = first
            while True:
                if not data:
                    spliced = 0
                    try:
                        if fd < 0:
                            # trio sockets return bytes (typed bytes | bytearray)
                            data = cast(bytes, await src.receive_some(size))
                        else:
                            unyielded += 1
                            if unyielded >= YIELD_EVERY:
                                unyielded = 0
                                await trio.lowlevel.checkpoint()
                            try:
                                # Inside a long payload nobody watches: splice, don't read.
                                want = self._splice_size(d)
                                if want:
                                    spliced = _splice(fd, self._pipes[d][1], want)
                                else:
                                    data = os.read(fd, size)
                            except BlockingIOError:
                                unyielded = 0
                                await trio.lowlevel.wait_readable(fd)
                                continue
                    except trio.ClosedResourceError:
                        return  # we closed it (the other side ended first)
                    except (trio.BrokenResourceError, OSError) as exc:
                        await self._ended_by(d, "rst" if _is_reset(exc) else "error", exc)
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
                counted = self.frames[d]
                if not await self._relay_chunk(d, side, data):
                    return
                data = b""
                if self.frames[d] - counted > DENSE_CHUNK and not self._light:
                    # Many small frames: full inspection costs Python work per frame (a MiB
                    # of 1-byte frames is ~150,000 events, about a second). Keep such reads
                    # small and yield after each, so a flood never stalls other connections.
                    size = DENSE_READ
                    unyielded = YIELD_EVERY

    async def _relay_chunk(self, d: str, side: str, data: bytes) -> bool:
        """Forward, inspect and publish one chunk; ``False`` when the pump must stop."""
        self.bytes[d] += len(data)
        if not self.strict and self._forwarding(d):
            return await self._pass_chunk(d, side, data, None)
        # --strict must see a chunk's violations before any of it goes on.
        inspected = self._inspect(d, data)
        frames = inspected[0]
        if self._forwarding(d) and not any(_fault(f) for f in frames):
            return await self._pass_chunk(d, side, data, inspected)
        return await self._relay_frames(d, side, data, *inspected)

    def _inspect(
        self, d: str, data: bytes, as_lines: bool = False
    ) -> tuple[list[Frame], float, float]:
        """Feed ``data`` to ``d``'s inspector: ``(completed frames, wall time, trio time)``.
        ``as_lines``: the chunk went on as it came, so in the recording tier its common frames
        may be written as lines (which say "delivered"); those are counted, not returned."""
        ts = time.time()
        now = trio.current_time()
        insp = self._inspectors[d]
        if not self._light:
            lines = self._lines
            if lines is None or not as_lines:
                return insp.feed(data), ts, now
            frames, seq = lines.feed(d, cast(Inspector, insp), data, ts, self.seq)
            if seq != self.seq:
                self.frames[d] += seq - self.seq
                self.seq = seq
                self.last_data = now
            return frames, ts, now
        walker = cast(FrameWalker, insp)
        n, nd = walker.frames, walker.data_frames
        frames = walker.feed(data)
        if walker.frames != n:
            self._walked(d, walker, n, nd, now)
        return frames, ts, now

    async def _pass_chunk(
        self, d: str, side: str, data: bytes, inspected: tuple[list[Frame], float, float] | None
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
                return await self._relay_frames(d, side, data, *(inspected or self._inspect(d, data)))  # fmt: skip
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
        first = self.seq + 1  # (before inspecting: the recording tier numbers frames there)
        frames, ts, now = inspected or self._inspect(d, data, as_lines=failed is None)
        closes = self._publish_frames(d, frames, ts, now, failed is None)
        last = self.seq
        # Counted as handled before the await, so an action that looks meanwhile sees the
        # frame in progress as (being) forwarded and waits for its end.
        self._base[d] += len(data)
        try:
            if failed is not None:
                raise trio.BrokenResourceError(f"socket send failed: {failed}") from failed
            if sent < len(data):
                await dst.send_all(memoryview(data)[sent:] if sent else data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            if failed is None:  # published as delivered: say they were not
                self._not_delivered(d, first, last)
            await self._peer_gone(d, exc)
            return False
        finally:
            self._release(d)
        if closes:
            self._closes_passed(d, frames)
        return True

    def _forwarding(self, d: str) -> bool:
        """Whether direction ``d`` passes chunks on as they come (the fast path)."""
        return (
            self._stages[d] is None
            and not self.blackholed
            and self._closing is None
            and not self._buf[d]
            and self._tail_forwarded[d]
        )

    def _walked(self, d: str, walker: FrameWalker, frames: int, data: int, now: float) -> None:
        """Light tier: the walker completed frames (it had ``frames``/``data`` before); the
        counts and activity times come from its counters."""
        self.frames[d] = walker.frames
        if walker.data_frames != data:
            self.last_data = now
        if walker.frames - frames != walker.data_frames - data:
            self.last_control = now

    def _splice_size(self, d: str) -> int:
        """Bytes the next read of ``d`` may splice instead (0: read them): light tier, inside
        a long payload, forwarding as it comes to a plain socket."""
        if not self._light or not CAN_SPLICE:
            return 0
        n = cast(FrameWalker, self._inspectors[d]).passing
        if n < SPLICE_MIN or type(self._dst[d]) is not trio.SocketStream:
            return 0
        if not self._forwarding(d):
            return 0
        pipe = self._pipes.get(d) or self._open_pipe(d)
        return min(n, pipe[2])

    def _open_pipe(self, d: str) -> tuple[int, int, int]:
        """``d``'s splice pipe, made on its first long payload; size 0 (no splicing) when
        the process is out of file descriptors."""
        import fcntl  # POSIX only, like splice

        try:
            r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            self._pipes[d] = (-1, -1, 0)  # do not try again on every read
            return self._pipes[d]
        try:
            size = fcntl.fcntl(w, _F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:  # over the system's pipe limits: the default size will do
            size = 64 * 1024
        pipe = self._pipes[d] = (r, w, size)
        return pipe

    async def _relay_spliced(self, d: str, n: int) -> bool:
        """The fast path for ``n`` payload bytes spliced into ``d``'s pipe: count them, then
        splice them on to the receiver; ``False`` when the pump must stop."""
        self.bytes[d] += n
        walker = cast(FrameWalker, self._inspectors[d])
        frames, data = walker.frames, walker.data_frames
        walker.skip(n)
        if walker.frames != frames:
            self._walked(d, walker, frames, data, trio.current_time())
        if self._writing[d]:
            await self._claim(d)
        else:
            self._writing[d] = True
        self._base[d] += n  # handled before the await, as in ``_relay_chunk``
        dst = self._dst[d]
        assert isinstance(dst, trio.SocketStream)
        out = dst.socket.fileno()
        r = self._pipes[d][0]
        try:
            while n:
                try:
                    n -= _splice(r, out, n)
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(out)
        except OSError as exc:
            await self._peer_gone(d, exc)
            return False
        finally:
            self._release(d)
        return True

    def _publish_frames(
        self, d: str, frames: list[Frame], ts: float, now: float, delivered: bool = True
    ) -> bool:
        """Count, note and publish the frames of one chunk; whether a close frame is among
        them (the caller notes it relayed once it was sent). The per-frame hot loop: keep it
        to attribute reads and, when a sink wants them, one event per frame/message. In the
        light tier the walker has counted them and no sink wants them."""
        if not frames:
            return False
        if self._light:
            return any(f.opcode == 8 for f in frames)
        publish = self.hub.publish
        conn = self.conn
        seq = self.seq
        control = False
        if self._wants_frames:
            for f in frames:
                seq += 1
                publish(FrameSeen(conn, seq, d, ts, f, delivered))
                if f.opcode >= 8:
                    control = True
                elif f.message is not None:
                    publish(MessageSeen(conn, d, ts, f.message, f.message_no))
        else:
            for f in frames:
                if f.opcode >= 8:
                    control = True
                elif f.message is not None:
                    publish(MessageSeen(conn, d, ts, f.message, f.message_no))
            seq += len(frames)
        self.seq = seq
        self.frames[d] += len(frames)
        if not control:
            self.last_data = now
            return False
        self.last_control = now
        if any(f.opcode < 8 for f in frames):
            self.last_data = now
        return any(f.opcode == 8 for f in frames)

    def _not_delivered(self, d: str, first: int, last: int) -> None:
        """Frames ``first``..``last`` were published as delivered before their send failed:
        say that they were not (events are published in receive order, so they cannot wait
        for the send)."""
        if last < first or not self._wants_frames:
            return
        which = f"#{first}" if first == last else f"#{first} to #{last}"
        text = f"frames {which} ({d}) were not delivered: the {SENDER[OTHER[d]]} is gone"
        self.hub.publish(Notice(time.time(), "warning", text, self.conn))

    def _closes_passed(self, d: str, frames: list[Frame]) -> None:
        for f in frames:
            if f.opcode == 8:
                self._close_passed(d, f)

    def _close_passed(self, d: str, f: Frame) -> None:
        """A close frame was relayed: note it; both relayed = the handshake completed."""
        side = SENDER[d]
        if side in self._relayed_closes:
            return
        self._relayed_closes.append(side)
        self.close_frames.setdefault(side, (f.close_code, f.close_reason or ""))
        if self._code is None:
            self._code = (f.close_code, f.close_reason)
        if len(self._relayed_closes) == 2 and self._closing is None:
            # Both close frames passed: the server now closes TCP (§7.1.1); give both sides
            # the grace to end before the proxy closes what is left.
            self._limit_pumps(END_GRACE)

    def _limit_pumps(self, seconds: float) -> None:
        deadline = trio.current_time() + seconds
        for scope in self._pump_scopes.values():
            scope.deadline = min(scope.deadline, deadline)

    async def _ended_by(self, d: str, how: str, exc: BaseException | None) -> None:
        """The sender of direction ``d`` ended its side (FIN or RST): do the same to the other
        side, then let the other pump finish within ``END_GRACE``."""
        side = SENDER[d]
        if self._closing is not None:
            self._close_replies.add(side)
            if len(self._close_replies) == 2:
                self._close_done.set()
        detail = None if exc is None or how == "rst" else f"{type(exc).__name__}: {exc}"
        self._note_end(side, how, detail)
        dst = self._dst[d]
        if how == "fin":
            if self._closing is not None and self._dst_at_boundary(d):
                # A proxy close is under way and this peer answered it (close + FIN) before
                # the close frame toward the other peer went out: that frame goes first, or
                # the other peer sees only a FIN (1006) instead of the code it was promised.
                await self._send_close(d)
            await self._claim(d)
            try:
                if isinstance(dst, trio.abc.HalfCloseableStream):
                    await dst.send_eof()
                else:
                    with trio.move_on_after(END_GRACE):
                        await dst.aclose()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
            finally:
                self._release(d)
            self._limit_pumps(END_GRACE)
        else:
            self._reset = how == "rst"
            if self._scope is not None:
                self._scope.cancel()

    async def _peer_gone(self, d: str, exc: BaseException) -> None:
        """Sending to the receiver of ``d`` failed: that side is gone; end the other the same."""
        receiver = SENDER[OTHER[d]]
        how = "rst" if _is_reset(exc) else "fin"
        self._note_end(receiver, how, None)
        self._reset = how == "rst"
        if self._scope is not None:
            self._scope.cancel()

    async def _relay_frames(
        self, d: str, side: str, data: bytes, frames: list[Frame], ts: float, now: float
    ) -> bool:
        """The frame-aware path: decide frame by frame what goes on."""
        buf = self._buf[d]
        buf += data
        base = self._base[d]
        for f in frames:
            if f.start < base:
                # Its start was already forwarded (or dropped): finish it the same way.
                n = f.end - base
                piece = bytes(buf[:n])
                if self._tail_forwarded[d] and not self.blackholed:
                    if not await self._forward(d, piece, [f], ts, now):
                        return False
                else:
                    self._publish_frames(d, [f], ts, now, False)
                del buf[:n]
                base = self._base[d] = f.end
                self._tail_forwarded[d] = True
                if self.strict and self._closing is None and _fault(f):
                    # Too long to hold back: it went on, and the connection closes after it.
                    await self._strict_close(d, f)
                if not await self._after_frame(d, f):
                    return False
                continue
            raw = bytes(buf[f.start - base : f.end - base])
            del buf[: f.end - base]
            base = self._base[d] = f.end
            if self.blackholed or self._closing is not None:
                self._publish_frames(d, [f], ts, now, False)
                if self._closing is not None and f.opcode == 8:
                    self._close_reply(side, f)
                continue
            if self.strict and _fault(f):
                self._publish_frames(d, [f], ts, now, False)
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
                self._publish_frames(d, [f], ts, now, False)
                raise
            ok = True
            for out in outs:
                try:
                    await self._send(d, out)
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    ok = False
                    await self._peer_gone(d, exc)
                    break
            if self._publish_frames(d, [f], ts, now, bool(outs) and ok) and outs and ok:
                self._closes_passed(d, [f])
            if not ok:
                return False
        # The frame in progress: hold it for a stage, else pass (or drop) what came of it.
        if buf and (
            self._stages[d] is None
            or len(buf) > STAGE_HOLD_LIMIT
            or self.blackholed
            or self._closing is not None
        ):
            piece = bytes(buf)
            buf.clear()
            self._base[d] = base + len(piece)
            if self.blackholed:
                forward = False
            elif self._at_frame_start(d, base):
                forward = self._closing is None  # a new frame: a pending close frame goes first
            else:
                forward = self._tail_forwarded[d]  # the rest of a frame goes as its start went
            self._tail_forwarded[d] = forward
            if forward:
                try:
                    await self._send(d, piece)
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    await self._peer_gone(d, exc)
                    return False
        return True

    def _at_frame_start(self, d: str, base: int) -> bool:
        return self._frame_start(d) >= base

    async def _forward(self, d: str, raw: bytes, fs: list[Frame], ts: float, now: float) -> bool:
        first = self.seq + 1
        closes = self._publish_frames(d, fs, ts, now)  # before the send: receive order
        last = self.seq
        try:
            await self._send(d, raw)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._not_delivered(d, first, last)
            await self._peer_gone(d, exc)
            return False
        if closes:
            self._closes_passed(d, fs)
        return True

    async def _after_frame(self, d: str, f: Frame) -> bool:
        """After a frame that was already under way passed: a pending proxy close may go."""
        if self._closing is not None and not self._close_sent[d]:
            await self._send_close(d)
        return True

    def _close_reply(self, side: str, f: Frame) -> None:
        self.close_frames.setdefault(side, (f.close_code, f.close_reason or ""))
        self._close_replies.add(side)
        if len(self._close_replies) == 2:
            self._close_done.set()

    async def _strict_close(self, d: str, f: Frame) -> None:
        """``--strict``: close the offending sender with the violation's code, the other side
        with 1001 (going away), and say why."""
        v = _fault(f)
        assert v is not None
        offender = SENDER[d]
        self.hub.publish(
            Notice(
                time.time(),
                "warning",
                f"--strict: closing the {offender} with {v.close_code} and the other side "
                f"with 1001: {v.section}: {v.message}",
                self.conn,
            )
        )
        # Toward the offender goes its own code; "client_code" is the code toward the client.
        up, down = (1001, v.close_code) if d == C2S else (v.close_code, 1001)
        if self._begin_close(up, "protocol violation", down, "strict") and self._nursery:
            self._nursery.start_soon(self._finish_close, CLOSE_TIMEOUT, "strict")
