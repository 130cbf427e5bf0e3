"""What watches the frames of one direction: three tiers behind one interface.

Each chunk the relay forwards is fed to its direction's observer, which finds the frames in it,
counts them and publishes them. How much work that is depends on who is watching, decided once
per connection by ``choose_tier``:

- ``LIGHT`` (``wire.walker``): nothing can observe or alter frames (``proxy -q`` with no
  recording, ``--strict`` or control socket). Headers are walked and counted; only close frames
  and frames that span chunks are returned (the lifecycle and frame-boundary actions need them).
  Long payloads may bypass Python entirely (``passing``/``skip``: splice).
- ``LINES``: a recording is the only output. The common frames of each chunk (complete,
  unfragmented, valid data frames up to the capture limit) go from the wire to their recording
  lines in one C pass; the rest goes through the inspector, as in ``FULL``.
- ``FULL`` (``wire.inspector``): every frame is parsed, unmasked up to the capture limit, checked
  and published as events (``FrameSeen`` when a sink wants frames, ``MessageSeen`` always).

A direction's observer can be swapped for a ``FULL`` one before it has seen a byte (a fault's
frame stage needs parsed frames): see ``Session.set_stage``.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from wsinspect import speedups
from wsinspect.events import FrameSeen, MessageSeen, Written
from wsinspect.wire.frames import FrameParser
from wsinspect.wire.inspector import Inspector
from wsinspect.wire.walker import FrameWalker

if TYPE_CHECKING:
    from wsinspect.hub import Hub, LineSink
    from wsinspect.wire.frames import Frame
    from wsinspect.wire.sides import Direction

__all__ = [
    "LINES_AVAILABLE",
    "FullObserver",
    "LightObserver",
    "LinesObserver",
    "Observer",
    "Tier",
    "Traffic",
    "choose_tier",
    "make_observer",
]

LINES_AVAILABLE = speedups.HAVE_C  # the recording tier is worth it in C only


class Tier(enum.Enum):
    LIGHT = "light"
    LINES = "lines"
    FULL = "full"


def choose_tier(
    hub: Hub, *, strict: bool = False, control: bool = False, staged: bool = False
) -> tuple[Tier, str]:
    """The tier of a connection's observers, and why (for ``ctl list`` and the docs).

    ``control``: a control socket is open (a fault added at run time needs parsed frames);
    ``staged``: a frame stage is installed on the direction."""
    if strict:
        return Tier.FULL, "--strict checks every frame"
    if staged:
        return Tier.FULL, "a frame stage acts on parsed frames"
    if hub.line_sink is not None and LINES_AVAILABLE:
        return Tier.LINES, "a recording is the only output"
    if hub.wants_traffic:
        return Tier.FULL, "a sink shows frames or messages"
    if control:
        return Tier.FULL, "a control socket may add frame faults"
    return Tier.LIGHT, "nothing observes the frames"


class Traffic:
    """A session's counts, shared by its two observers (which hold no reference back to the
    session: no reference cycle per connection). ``last_data``/``last_control`` are the
    ``trio.current_time()`` of the last data/control frame either way; ``seq`` numbers frames
    across both directions."""

    __slots__ = ("bytes", "frames", "last_control", "last_data", "seq")

    def __init__(self, now: float) -> None:
        self.frames = {"c2s": 0, "s2c": 0}
        self.bytes = {"c2s": 0, "s2c": 0}
        self.seq = 0
        self.last_data = now
        self.last_control = now


class Observer:
    """The interface, and the full tier: every frame parsed, checked and published."""

    __slots__ = ("_conn", "_direction", "_hub", "_position", "_traffic")

    tier = Tier.FULL

    def __init__(self, direction: Direction, conn: int, hub: Hub, traffic: Traffic,
                 position: FrameParser | FrameWalker) -> None:
        self._direction = direction
        self._conn = conn
        self._hub = hub
        self._traffic = traffic
        self._position = position  # what knows the stream offset and the frame in progress

    @property
    def frame_start(self) -> int:
        """Stream offset where the frame in progress began (bytes fed so far when none is)."""
        p = self._position
        return p.offset - p.pending

    @property
    def passing(self) -> int:
        """Payload bytes still to come that nobody needs to see (may be spliced; see walker)."""
        return 0

    @property
    def in_message(self) -> bool | None:
        """Between the fragments of a data message (``None``: this tier does not know)."""
        return None

    def skip(self, n: int, now: float) -> None:
        """Account for ``n`` bytes of ``passing`` that went by unseen."""
        raise ValueError("only the light tier lets payload bytes go by unseen")

    def feed(self, data: bytes, ts: float, now: float, as_lines: bool = False) -> list[Frame]:
        """Inspect one chunk: the frames it completed, to ``publish`` (or hold for a stage).
        ``as_lines``: the chunk went on as it came, so the recording tier may write its common
        frames as lines (which say "delivered"); those are counted, not returned."""
        raise NotImplementedError

    def publish(self, frames: list[Frame], ts: float, now: float, delivered: bool = True) -> bool:
        """Count and publish the frames of one chunk; whether a close frame is among them.
        The per-frame hot loop: attribute reads and one event per frame/message."""
        if not frames:
            return False
        hub = self._hub
        publish = hub.publish
        conn = self._conn
        d = self._direction
        t = self._traffic
        seq = t.seq
        control = False
        if hub.wants_frames:
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
        t.seq = seq
        t.frames[d] += len(frames)
        if not control:
            t.last_data = now
            return False
        t.last_control = now
        if any(f.opcode < 8 for f in frames):
            t.last_data = now
        return any(f.opcode == 8 for f in frames)

    def publish_written(self, raw: bytes, written: Written, ts: float, now: float,
                        delivered: bool = True) -> None:
        """Count and publish a frame the proxy wrote itself (``raw``: exactly what went out,
        unless a fault stage kept it back: ``delivered``)."""
        (f,) = FrameParser(len(raw)).feed(raw)
        f.text = f.opcode in (1, 9, 10) and not f.rsv1
        t = self._traffic
        t.seq += 1
        t.frames[self._direction] += 1
        if f.opcode >= 8:
            t.last_control = now
        else:
            t.last_data = now
        if self._hub.wants_frames:
            self._hub.publish(
                FrameSeen(self._conn, t.seq, self._direction, ts, f, delivered, written))


class FullObserver(Observer):
    """The full tier (``wire.inspector``)."""

    __slots__ = ("inspector",)

    def __init__(self, direction: Direction, conn: int, hub: Hub, traffic: Traffic,
                 inspector: Inspector) -> None:
        super().__init__(direction, conn, hub, traffic, inspector.parser)
        self.inspector = inspector

    @property
    def in_message(self) -> bool | None:
        return self.inspector.in_message

    def feed(self, data: bytes, ts: float, now: float, as_lines: bool = False) -> list[Frame]:
        return self.inspector.feed(data)


class LinesObserver(FullObserver):
    """The recording tier: common frames become recording lines in one C pass
    (``speedups.scan_lines``: the inspector's fast path and the recorder's line builder for a
    run of complete, simple data frames, byte for byte the lines the Python path writes). The
    first frame it does not take (a control frame, a fragment, a violation, a frame not complete
    in the chunk, ...) and everything after it go through the inspector as usual, and the next
    chunk tries the C pass again once the inspector is back at rest."""

    __slots__ = ("_limit", "_sink")

    tier = Tier.LINES

    def __init__(self, direction: Direction, conn: int, hub: Hub, traffic: Traffic,
                 inspector: Inspector, sink: LineSink, limit: int) -> None:
        super().__init__(direction, conn, hub, traffic, inspector)
        self._sink = sink
        self._limit = limit  # the longest payload the C pass takes

    def feed(self, data: bytes, ts: float, now: float, as_lines: bool = False) -> list[Frame]:
        inspector = self.inspector
        if not as_lines or not inspector.at_rest:
            return inspector.feed(data)
        t = self._traffic
        seq = t.seq
        messages = inspector.messages
        d = self._direction
        pos, last_seq, last_message, lines = speedups.scan_lines(
            data, 0, d == "c2s", self._limit, self._conn, d, ts, seq, messages
        )
        if lines is not None:
            self._sink.publish_lines(lines, 2 * (last_seq - seq))  # a frame and its message
            inspector.skip(pos, last_message - messages)
            t.frames[d] += last_seq - seq
            t.seq = last_seq
            t.last_data = now
        if pos == len(data):
            return []
        return inspector.feed(data[pos:] if pos else data)


class LightObserver(Observer):
    """The light tier (``wire.walker``): the walker counts; only close frames and frames that
    span chunks come back, to act on, never to publish."""

    __slots__ = ("walker",)

    tier = Tier.LIGHT

    def __init__(self, direction: Direction, conn: int, hub: Hub, traffic: Traffic,
                 walker: FrameWalker) -> None:
        super().__init__(direction, conn, hub, traffic, walker)
        self.walker = walker

    @property
    def passing(self) -> int:
        return self.walker.passing

    def skip(self, n: int, now: float) -> None:
        walker = self.walker
        frames, data = walker.frames, walker.data_frames
        walker.skip(n)
        if walker.frames != frames:
            self._walked(frames, data, now)

    def feed(self, data: bytes, ts: float, now: float, as_lines: bool = False) -> list[Frame]:
        walker = self.walker
        frames, data_frames = walker.frames, walker.data_frames
        out = walker.feed(data)
        if walker.frames != frames:
            self._walked(frames, data_frames, now)
        return out

    def publish(self, frames: list[Frame], ts: float, now: float, delivered: bool = True) -> bool:
        return any(f.opcode == 8 for f in frames)  # counted by the walker; nobody wants them

    def _walked(self, frames: int, data: int, now: float) -> None:
        """The walker completed frames (it had ``frames``/``data`` before)."""
        walker = self.walker
        t = self._traffic
        t.frames[self._direction] = walker.frames
        if walker.data_frames != data:
            t.last_data = now
        if walker.frames - frames != walker.data_frames - data:
            t.last_control = now


def make_observer(
    tier: Tier,
    direction: Direction,
    conn: int,
    hub: Hub,
    traffic: Traffic,
    *,
    capture_limit: int,
    extensions: str | None,
    max_message_size: int | None,
) -> Observer:
    """A new observer of ``tier`` for one direction of connection ``conn``."""
    if tier is Tier.LIGHT:
        walker = FrameWalker(direction, capture_limit=capture_limit)
        return LightObserver(direction, conn, hub, traffic, walker)
    inspector = Inspector(
        direction,
        capture_limit=capture_limit,
        extensions=extensions,
        max_message_size=max_message_size,
    )
    if tier is Tier.LINES and hub.line_sink is not None:
        limit = capture_limit if max_message_size is None else min(capture_limit, max_message_size)
        return LinesObserver(direction, conn, hub, traffic, inspector, hub.line_sink, limit)
    return FullObserver(direction, conn, hub, traffic, inspector)
