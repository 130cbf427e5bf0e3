"""One direction's whole-message path: message gates (breakpoints) and injected messages.

The part of ``relay.pump.Pump`` that carries out ``relay.actions``: it collects the data
messages a gate wants (everything the sender sends behind one waits, in order), carries out the
gate's decision, writes the proxy's own frames (edited, injected, re-compressed) and finds the
message boundaries an injected data message waits for. ``Pump`` inherits it; it is apart only
to keep each file to one concern.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import trio

from wsinspect.events import Notice, Written
from wsinspect.relay.actions import Decision, Forward, HeldMessage, Replace, encode_written
from wsinspect.relay.hooks import FrameIn, FrameStage, MessageGate
from wsinspect.wire.compress import compress_message
from wsinspect.wire.frames import FrameParser
from wsinspect.wire.messages import Message

if TYPE_CHECKING:
    from collections.abc import Sequence

    from wsinspect.hub import Hub
    from wsinspect.relay.lifecycle import Lifecycle
    from wsinspect.relay.observers import Observer
    from wsinspect.relay.session import Session
    from wsinspect.wire.frames import Frame
    from wsinspect.wire.sides import Direction

__all__ = ["SENT", "STAGE_HOLD_LIMIT", "MessagePath"]

SENT = (trio.BrokenResourceError, trio.ClosedResourceError)  # a send that found the peer gone
STAGE_HOLD_LIMIT = 16 << 20  # a stage sees whole frames, a gate whole messages, up to this size


class MessagePath:
    """Mixed into ``Pump``: the attributes below are the pump's."""

    __slots__ = ("ahead", "ahead_at", "collected", "collected_size", "gate", "injections",
                 "recompress_bits")

    d: Direction
    session: Session
    hub: Hub
    lc: Lifecycle
    observer: Observer
    writing: bool
    gate: MessageGate | None
    collected: list[FrameIn]  # a message collected for the gate, and its size
    collected_size: int
    recompress_bits: int  # re-compressing this direction with this window (0: not)
    stage: FrameStage | None
    injections: list[tuple[int, bytes, Written]]  # waiting for a boundary
    ahead: list[Frame]  # the frame path: the chunk's frames, handled up to ``ahead_at``
    ahead_at: int

    async def frame_in(self, item: FrameIn) -> bool:
        raise NotImplementedError

    async def send(self, data: bytes) -> None:
        raise NotImplementedError

    def at_boundary(self) -> bool:
        raise NotImplementedError

    async def collect(self, item: FrameIn, wanted: bool | None = None) -> bool:
        """Collect the frames of a message the gate wants (``wanted``: its answer when it was
        asked already); when it is complete, carry out what the gate decides. Everything its
        sender sends meanwhile waits behind it."""
        f = item.frame
        gate = self.gate
        if wanted is None and gate is not None and f.opcode in (1, 2) and not self.collected:
            wanted = gate.wants(self.session, self.d, f)
        if not self.collected and (
            f.opcode not in (1, 2) or not ((self.recompress_bits and f.rsv1) or wanted)
        ):
            return await self.frame_in(item)
        self.collected.append(item)
        self.collected_size += len(item.raw)
        if f.opcode >= 8 or not f.fin:
            if self.collected_size > STAGE_HOLD_LIMIT:
                self.hub.publish(Notice(time.time(), "warning", (
                    f"message {self.collected[0].frame.message_no} ({self.d}) is longer than "
                    f"{STAGE_HOLD_LIMIT >> 20} MiB: it goes on without being held"),
                    self.session.conn))
                return await self.let_go_collected()
            return True
        # (``collected`` stays set while the gate decides: nothing of it has gone, so an
        # injected message may go before it)
        held = HeldMessage.of(self.session.conn, self.d, list(self.collected))
        try:
            decision: Decision = Forward() if gate is None else await gate.decide(
                self.session, held)
        except trio.Cancelled:
            for i in held.items:
                self.observer.publish([i.frame], i.ts, i.received, False)
            raise
        finally:
            self.collected = []
            self.collected_size = 0
        return await self.carry_out(decision, held)

    async def carry_out(self, decision: Decision, held: HeldMessage) -> bool:
        """Forward the held frames as they came, or drop the message's data frames (its
        interleaved control frames still go) and maybe write a replacement. Once this
        direction is re-compressed (``wire.compress``), a compressed message forwarded goes
        compressed again by the proxy."""
        recompress = held.compressed and self.recompress_bits
        if isinstance(decision, Forward) and not recompress:
            for i in held.items:
                if not await self.frame_in(i):
                    return False
            return True
        for i in held.items:
            if i.frame.opcode >= 8:
                if not await self.frame_in(i):
                    return False
            else:
                self.observer.publish([i.frame], i.ts, i.received, False)
        if not self.lc.forwards:
            return True
        if isinstance(decision, Forward):
            return await self.recompress(held)
        if held.compressed:
            self.start_recompressing(held.message_no)
        if isinstance(decision, Replace):
            first = held.opcode if decision.opcode is None else decision.opcode
            for opcode, payload in ((first, decision.payload), *decision.more):
                if not await self.write(opcode, payload, "edited"):
                    return False
        return True

    def start_recompressing(self, message_no: int) -> None:
        """Compressed message ``message_no`` did not reach the receiver as it was sent: under
        context takeover the sender's later messages may refer to it, so the proxy compresses
        them itself from now on (``wire.compress``). Said once."""
        params = self.session.deflate_params(self.d)
        if self.recompress_bits or params is None or params[1]:
            return  # already, or no context takeover: every message stands alone
        self.recompress_bits = params[0]
        self.hub.publish(Notice(time.time(), "info", (
            f"message {message_no} ({self.d}) was compressed and did not go as it came: "
            "wsinspect compresses this direction's later compressed messages itself, so the "
            "receiver's decompressor stays in sync"), self.session.conn))

    async def recompress(self, held: HeldMessage) -> bool:
        """Send a compressed message compressed again by the proxy, from its inflated text
        (through the direction's frame stage, as the original would have gone)."""
        if not held.complete:
            self.hub.publish(Notice(time.time(), "error", (
                f"message {held.message_no} ({self.d}) could not be inflated completely, so it "
                "cannot be compressed again: closing the connection (1011)"), self.session.conn))
            self.session.start_soon(self.session.close, 1011, "wsinspect lost compression sync")
            return True
        payload = compress_message(held.payload, self.recompress_bits)
        return await self.write(held.opcode, payload, "recompressed", compressed=True,
                                staged=held)

    def keep_in_sync(self, item: FrameIn, outs: Sequence[bytes]) -> Sequence[bytes]:
        """What a fault stage made of the last frame of a compressed message, kept valid for
        the receiver's decompressor under context takeover: a dropped message makes the proxy
        compress later ones itself; a copy of a message (``duplicate``) goes uncompressed,
        since the same compressed bytes inflated twice would not give the same text."""
        message = item.frame.message
        if message is None or not message.compressed or len(outs) == 1:
            return outs
        params = self.session.deflate_params(self.d)
        if params is None or params[1]:
            return outs  # no context takeover: every message stands alone
        if not outs:
            self.start_recompressing(item.frame.message_no)
        elif outs[0] == item.raw and not message.truncated:
            return [outs[0], encode_written(self.d, message.opcode, message.payload)]
        return outs

    async def let_go_collected(self) -> bool:
        """A collected message goes on as it came (its sender ended, or it is too long)."""
        items = self.collected
        self.collected = []
        self.collected_size = 0
        for i in items:
            if not await self.frame_in(i):
                return False
        return True

    async def write(self, opcode: int, payload: bytes, written: Written, *,
                    compressed: bool = False, staged: HeldMessage | None = None) -> bool:
        """Write one frame of the proxy's toward the receiver (see ``relay.actions``) and
        publish it; ``False`` when the receiver is gone. ``staged``: the message this frame
        carries again, through the direction's frame stage (faults) as the sender's would go."""
        raw = encode_written(self.d, opcode, payload, compressed=compressed)
        outs: Sequence[bytes] = [raw]
        if staged is not None and self.stage is not None:
            (frame,) = FrameParser(len(raw)).feed(raw)
            frame.message_no = staged.message_no  # (a fault's ``match`` reads the text)
            frame.message = Message(opcode, staged.payload, staged.length, len(payload), 1,
                                    not staged.complete, compressed)
            outs = await self.stage(FrameIn(frame, raw, self.d, time.time(), trio.current_time()))
        try:
            for out in outs:
                await self.send(out)
        except SENT as exc:
            await self.session.receiver_gone(self.d, exc)
            return False
        self.observer.publish_written(raw, written, time.time(), trio.current_time(), bool(outs))
        if opcode == 8:
            await self.session.close_written(self.d, payload)
        return True

    def at_message_boundary(self) -> bool:
        """No data message is partly forwarded: an injected data message may go in now."""
        if not self.at_boundary():
            return False
        if self.collected:
            return True  # the collected message has not gone yet, and it starts a message
        ahead = self.ahead
        for i in range(self.ahead_at, len(ahead)):
            f = ahead[i]
            if f.opcode < 8:  # the next data frame says whether a message is open
                return f.opcode != 0
        return not self.observer.in_message

    async def flush_injections(self) -> bool:
        """Write the injections that may go now; ``False`` when the receiver is gone. Data
        messages go in order, each at a message boundary; a control frame needs only a frame
        boundary, so it may pass a data message that waits."""
        while self.injections and not self.writing:  # (a writer calls again when done)
            if not self.at_boundary():
                return True
            boundary = self.at_message_boundary()
            ready = next((x for x in self.injections if boundary or x[0] >= 8), None)
            if ready is None:
                return True
            self.injections.remove(ready)
            if not self.lc.forwards:
                continue  # closing: nothing more of the proxy's goes
            if not await self.write(*ready):
                return False
        return True
