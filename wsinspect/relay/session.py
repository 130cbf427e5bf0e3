"""One relayed WebSocket connection: a nursery with two pumps, carrying out what is decided.

Each direction is a ``relay.pump.Pump``: it forwards what one side sent to the other, as
received, and feeds the direction's observer (``relay.observers``). How a connection ends is
decided in ``relay.lifecycle``: the pumps report what happened (a close frame passed, a peer
ended TCP, a send failed), the actions below ask for something (close, cut, blackhole), and the
session carries out the commands the lifecycle returns. Raw socket I/O (``os.read``/
``os.write``, ``splice``, RST) is in ``relay.transport``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import trio

from wsinspect.events import ConnectionClosed, ConnectionOpened, MessageAction, Notice
from wsinspect.relay.actions import close_payload
from wsinspect.relay.control import ControlError
from wsinspect.relay.hooks import FrameStage, MessageGate, SessionHook
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
from wsinspect.relay.pump import SENT, Pump, peer_fault
from wsinspect.relay.transport import close_streams, is_reset
from wsinspect.wire.checks import Violation
from wsinspect.wire.deflate import DeflateParams, ExtensionError, negotiated_deflate
from wsinspect.wire.frames import Frame, encode_frame
from wsinspect.wire.sides import C2S, S2C, Direction, PeerEnd

if TYPE_CHECKING:
    from wsinspect.hub import Hub

__all__ = ["Session"]


class Session:
    """One client ↔ upstream WebSocket connection after both handshakes.

    Public, for faults and the control path: ``conn``, ``client``, ``path``, ``opened_at``
    (wall time), ``opened`` (the ``ConnectionOpened`` of both handshakes), ``traffic`` (frames and bytes per direction, ``last_data``/``last_control``:
    ``trio.current_time()`` of the last data and control frame either way), ``tiers``, and the
    actions ``close()``, ``cut()``, ``blackhole()``, ``set_stage()``, ``wrap_sender()`` and
    ``start_soon()`` (a task that lives as long as the connection).
    """

    # Slotted: thousands of idle connections each hold one.
    __slots__ = (
        "_early",
        "_nursery",
        "_observe_args",
        "_opened_mono",
        "_pumps",
        "_scope",
        "_session_hooks",
        "client",
        "conn",
        "finished",
        "hub",
        "lifecycle",
        "opened",
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
        self.opened_at = time.time()
        self.opened: ConnectionOpened | None = None  # both handshakes, once the 101 went out
        self._opened_mono = trio.current_time()
        self.traffic = Traffic(self._opened_mono)
        self._observe_args = (capture_limit, extensions, max_message_size)
        if tier is None or strict:  # (the light tier only where nothing may ever look)
            tier = choose_tier(hub, strict=strict, control=True)[0]
        self.lifecycle = Lifecycle()
        self._pumps: dict[Direction, Pump] = {
            C2S: Pump(self, C2S, client_stream, upstream_stream, self._observer(C2S, tier)),
            S2C: Pump(self, S2C, upstream_stream, client_stream, self._observer(S2C, tier)),
        }
        self._scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        self._early: list[tuple[Callable[..., Awaitable[None]], tuple[Any, ...]]] = []
        self.finished = trio.Event()

    def _observer(self, d: Direction, tier: Tier) -> Observer:
        capture_limit, extensions, max_message_size = self._observe_args
        return make_observer(
            tier, d, self.conn, self.hub, self.traffic, capture_limit=capture_limit,
            extensions=extensions, max_message_size=max_message_size,
        )

    # -- what faults and the control path read ----------------------------------------------

    @property
    def tiers(self) -> dict[Direction, Tier]:
        """Each direction's inspection tier (``relay.observers``)."""
        return {d: pump.observer.tier for d, pump in self._pumps.items()}

    @property
    def blackholed(self) -> bool:
        return self.lifecycle.blackholed

    def publish(self, event: object) -> None:
        self.hub.publish(event)  # type: ignore[arg-type]

    # -- actions ------------------------------------------------------------------------------

    def set_stage(self, direction: Direction, stage: FrameStage | None) -> None:
        """Install (or with ``None`` remove) the frame stage of ``direction`` (see ``hooks``).

        A stage needs parsed frames: a direction in the light tier switches to full inspection
        if it has not seen a byte yet (a hook's ``setup``), and refuses the stage otherwise."""
        if stage is not None:
            self._parsed(direction, "frame faults cannot be added to it now")
        self._pumps[direction].stage = stage

    def set_gate(self, direction: Direction, gate: MessageGate | None) -> None:
        """Install (or with ``None`` remove) the message gate of ``direction`` (breakpoints:
        see ``relay.actions``); it needs parsed frames, as a stage does."""
        if gate is not None:
            self._parsed(direction, "its messages cannot be held")
        self._pumps[direction].gate = gate

    def _parsed(self, direction: Direction, what: str) -> None:
        pump = self._pumps[direction]
        if pump.observer.tier is Tier.LIGHT:
            if self.traffic.bytes[direction]:  # bytes went by unparsed: too late to switch
                raise ControlError(
                    f"connection #{self.conn} uses the light inspection tier (nothing observed "
                    f"its frames when it opened): {what}"
                )
            tier, _why = choose_tier(self.hub, strict=self.strict, staged=True)
            pump.observer = self._observer(direction, tier)

    async def inject(self, direction: Direction, opcode: int, payload: bytes, *,
                     by: str = "") -> bool:
        """Write a message of the proxy's toward ``direction``'s receiver (``relay.actions``):
        a data message at the next message boundary, a control frame at the next frame
        boundary; published first as an ``injected`` action ``by`` whoever asked. Returns
        whether it went at once (else it waits for that boundary). ``ControlError`` when it
        cannot be sent (see ``_check_injection``): then nothing is published or sent."""
        self._check_injection(direction, opcode, payload)
        close = opcode == 8 and len(payload) >= 2
        self.hub.publish(MessageAction(
            self.conn, time.time(), "injected", direction, opcode,
            b"" if opcode == 8 else payload, len(payload),
            close_code=int.from_bytes(payload[:2], "big") if close else None,
            close_reason=payload[2:].decode() if close else None, by=by))
        pump = self._pumps[direction]
        pump.injections.append((opcode, payload, "injected"))
        await pump.flush_injections()
        return not pump.injections

    def _check_injection(self, direction: Direction, opcode: int, payload: bytes) -> None:
        """``ControlError`` when ``inject`` could not send this: the connection is closing,
        the direction is not parsed, an opcode the proxy does not send, a control payload
        over 125 bytes, a close code that may not be sent."""
        if opcode not in (1, 2, 8, 9, 10):
            raise ControlError(f"opcode {opcode} is not a message the proxy can send")
        if opcode >= 8 and len(payload) > 125:
            raise ControlError("a control frame's payload is at most 125 bytes (RFC 6455 §5.5)")
        if opcode == 8 and payload:
            try:
                close_payload(int.from_bytes(payload[:2], "big"), payload[2:].decode())
            except (ValueError, UnicodeDecodeError) as exc:
                raise ControlError(str(exc)) from None
        if self.finished.is_set() or not self.lifecycle.forwards:
            raise ControlError(f"connection #{self.conn} is closing: nothing more can be sent")
        self._parsed(direction, "the proxy cannot find its message boundaries")

    def deflate_params(self, d: Direction) -> tuple[int, bool] | None:
        """``(window_bits, no_context_takeover)`` of ``d``'s sender when permessage-deflate
        was negotiated."""
        extensions = self._observe_args[1]
        if not extensions or "permessage-deflate" not in extensions.lower():
            return None
        try:
            params = negotiated_deflate(extensions)
        except ExtensionError:
            params = DeflateParams()
        return None if params is None else params.for_direction(d)

    async def close_written(self, d: Direction, payload: bytes) -> None:
        """A close frame of the proxy's went toward ``d``'s receiver (an injected close): the
        closing handshake goes on as if ``d``'s sender had sent it."""
        code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
        await self._carry_out(self.lifecycle.close_relayed(d, code, payload[2:].decode()))

    def wrap_sender(
        self, direction: Direction, wrap: Callable[[trio.abc.Stream], trio.abc.Stream]
    ) -> trio.abc.Stream:
        """Replace the stream that direction ``direction`` writes to with ``wrap(current)``
        and return the wrapper (latency/throttle shapers sit here). Only ``send_all`` (and
        ``send_eof``/``aclose`` when one side ends) are called on it; the session still closes
        the original sockets itself, so a wrapper must not own them."""
        pump = self._pumps[direction]
        pump.dst = wrapped = wrap(pump.dst)
        return wrapped

    def start_soon(self, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run ``fn(*args)`` as a task of this connection (started with it if it is not running
        yet), cancelled when the connection ends."""
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)
        elif self._scope is None:  # not started yet (once it ran, nothing more starts)
            self._early.append((fn, args))

    def blackhole(self, on: bool = True) -> None:
        """Stop (or resume) forwarding in both directions; sockets stay open and every frame
        received meanwhile is published with ``delivered=False``."""
        self.lifecycle.blackhole(on)

    async def cut(
        self, *, rst: bool = False, how: str | None = None, detail: str | None = None
    ) -> None:
        """End both TCP connections now without close frames: FIN, or RST (SO_LINGER 0) with
        ``rst``. ``how`` names it in ``ConnectionClosed`` (default ``fin``/``rst``)."""
        await self._carry_out(self.lifecycle.cut(rst=rst, how=how, detail=detail))
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
            await self._carry_out(self.lifecycle.proxy_close(
                code, reason, client_code=client_code, how=how, timeout=timeout))
        await self.finished.wait()

    # -- carrying out the lifecycle's commands -------------------------------------------------

    async def _carry_out(self, commands: list[Command]) -> None:
        for command in commands:
            if isinstance(command, SendClose):
                if self._pumps[command.direction].at_boundary():
                    await self._send_close(command)
                # else it goes when the frame under way has passed (``frame_passed``)
            elif isinstance(command, SendFin):
                await self._send_fin(command.direction)
            elif isinstance(command, Grace):
                deadline = trio.current_time() + command.seconds
                for pump in self._pumps.values():
                    if pump.scope is not None:
                        pump.scope.deadline = min(pump.scope.deadline, deadline)
            elif isinstance(command, TearDown):
                if self._scope is not None:
                    self._scope.cancel()
            elif isinstance(command, Deadline):
                self.start_soon(self._deadline, command.seconds)
            elif isinstance(command, Warn):
                self.hub.publish(Notice(time.time(), "warning", command.text, self.conn))

    async def _deadline(self, seconds: float) -> None:
        await trio.sleep(seconds)
        await self._carry_out(self.lifecycle.deadline_passed())

    async def _send_close(self, command: SendClose) -> None:
        d = command.direction
        if self.lifecycle.close_due(d) is None:
            return  # it went already
        self.lifecycle.close_sent(d)
        payload = command.code.to_bytes(2, "big") + command.reason.encode()
        # Toward the upstream the proxy is a client and masks (§5.3); toward the client not.
        frame = encode_frame(8, payload, mask_key=os.urandom(4) if d == C2S else None)
        try:
            await self._pumps[d].send(frame)
        except SENT:
            await self._carry_out(self.lifecycle.close_not_sent(d))

    async def _send_fin(self, d: Direction) -> None:
        pump = self._pumps[d]
        dst = pump.dst
        await pump.claim()
        try:
            if isinstance(dst, trio.abc.HalfCloseableStream):
                await dst.send_eof()
            else:
                with trio.move_on_after(END_GRACE):
                    await dst.aclose()
        except (*SENT, OSError):
            pass
        finally:
            pump.release()

    # -- what the pumps report (``relay.pump``) -------------------------------------------

    async def frame_passed(self, d: Direction) -> None:
        """A frame that was already under way has passed: a close of the proxy's may go."""
        due = self.lifecycle.close_due(d)
        if due is not None:
            await self._send_close(due)

    async def sender_ended(self, d: Direction, how: PeerEnd, exc: BaseException | None) -> None:
        """The sender of direction ``d`` ended its side (FIN, RST or another error)."""
        detail = None if exc is None or how == "rst" else f"{type(exc).__name__}: {exc}"
        await self._carry_out(self.lifecycle.peer_ended(d, how, detail))

    async def receiver_gone(self, d: Direction, exc: BaseException) -> None:
        """Sending to the receiver of ``d`` failed: that side is gone."""
        await self._carry_out(self.lifecycle.receiver_gone(d, is_reset(exc)))

    async def closes_passed(self, d: Direction, frames: list[Frame]) -> None:
        lc = self.lifecycle
        for f in frames:
            if f.opcode == 8:
                await self._carry_out(lc.close_relayed(d, f.close_code, f.close_reason or ""))

    async def close_consumed(self, d: Direction, f: Frame) -> None:
        """A close frame was kept from its receiver (a reply to the proxy's own close)."""
        await self._carry_out(self.lifecycle.close_consumed(d, f.close_code, f.close_reason or ""))

    async def strict_close(self, d: Direction, f: Frame | Violation) -> None:
        """``--strict``: the lifecycle closes both sides (or discards a frame sent after a
        close frame); carried out in a task of its own, so this pump keeps reading (and
        consuming) while the close frames wait to be written. ``f``: the frame, or the
        violation the header of a frame still arriving shows."""
        v = f if isinstance(f, Violation) else peer_fault(f)
        assert v is not None
        commands = self.lifecycle.violation(d, v.close_code, v.section, v.message)
        if commands:
            self.start_soon(self._carry_out, commands)

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
                        await self._pumps[d].run(first)
                    finally:
                        pumps_left[0] -= 1
                        if pumps_left[0] == 0:
                            nursery.cancel_scope.cancel()  # stops session hooks too

                if self.lifecycle.phase is Phase.TORN_DOWN:  # cut before it ran
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
                    if not getattr(hook, "setup_only", False):
                        nursery.start_soon(hook, self)
                # The session's own task pumps client → upstream: one task fewer per connection.
                await pump(C2S, client_first)
        except Exception as exc:  # one connection's bug never takes the proxy down
            cause: BaseException = exc
            while isinstance(cause, BaseExceptionGroup) and len(cause.exceptions) == 1:
                cause = cause.exceptions[0]  # say what happened, not "exceptions from a nursery"
            self.lifecycle.failed(f"{type(cause).__name__}: {cause}")
            self.hub.publish(Notice(time.time(), "error", f"relay error: {cause!r}", self.conn))
        finally:
            self._nursery = None
            for p in self._pumps.values():
                p.close_pipe()
            await close_streams((p.src for p in self._pumps.values()), reset=self.lifecycle.reset)
            self._publish_closed()
            self.finished.set()

    def _publish_closed(self) -> None:
        o = self.lifecycle.outcome()
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

