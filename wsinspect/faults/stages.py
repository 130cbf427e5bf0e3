"""Frame-level faults for one connection (sans-IO: no sockets, no clock, no Trio).

``ConnectionFaults`` holds the faults of one relayed connection: one ``DirectionFaults`` per
direction, plus session-level timers (``close-after:seconds=``). The relay's frame-aware pump
hands each complete frame with its exact wire bytes to ``DirectionFaults.feed``, which answers
with a ``Step``: the bytes to send instead of the frame (``[raw]`` passes it, ``[]`` drops it,
two copies duplicate it, several re-encoded frames refragment it), whether the frame counts as
delivered, the fault reports to publish, how long to hold the frame first (``delay-close``) and
a session action to carry out after it (close both sides, cut).

Message-level faults (drop, duplicate, refragment) decide on the *first* frame of a data message
and apply the decision to its continuation frames, so a fragmented message is dropped, doubled
or refragmented whole and the stream stays valid (RFC 6455 §5.4) without holding frames back;
``match`` is searched in that first frame's payload (inflated, when permessage-deflate
compressed a message sent in one frame). Control frames interleaved between
fragments (§5.4) pass through untouched by those faults.

Timing faults (latency, jitter, throttle) are not here: they shape the send stream
(``faults.shaping``), so a frame's delay starts when it arrives and the pump keeps reading.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from wsinspect.faults.actions import CloseBoth, Cut, FaultAction, SessionAction
from wsinspect.faults.spec import FaultSpec
from wsinspect.wire.frames import Frame, encode_frame, mask
from wsinspect.wire.sides import Direction

__all__ = ["ConnectionFaults", "DirectionFaults", "Step", "make_rng"]

TIMING_KINDS = frozenset({"latency", "throttle"})


def make_rng(seed: int | None, conn: int, stream: str, index: int) -> random.Random:
    """One RNG per fault, connection and stream of decisions (a direction, ``session``,
    ``handshake``): with a seed, a connection sees the same decisions whatever the other
    connections do and however the bytes were chunked."""
    if seed is None:
        return random.Random()
    return random.Random(f"{seed}/{conn}/{stream}/{index}")


@dataclass(slots=True)
class Step:
    """What becomes of one frame."""

    outs: list[bytes]
    delivered: bool = True
    actions: list[FaultAction] = field(default_factory=list)
    hold: float = 0.0  # seconds to wait before sending ``outs``
    then: SessionAction | None = None


@dataclass(slots=True)
class _Shared:
    """State the two directions share: bytes forwarded (``cut-after`` with ``dir=both`` counts
    both) and whether a session action has been asked for (nothing more is then decided)."""

    sent: dict[str, int] = field(default_factory=lambda: {"c2s": 0, "s2c": 0})
    ended: bool = False


class _Active:
    """One installed fault with its own RNG and counters."""

    __slots__ = ("count", "rng", "spec")

    def __init__(self, spec: FaultSpec, rng: random.Random) -> None:
        self.spec = spec
        self.rng = rng
        self.count = 0

    def fires(self) -> bool:
        # Always draw, so a seeded run consumes the RNG the same way every time.
        return self.rng.random() < self.spec.p


def unmasked_payload(frame: Frame, raw: bytes) -> bytes:
    """The whole unmasked payload of a frame from its wire bytes (not cut at the capture
    limit, unlike ``frame.payload``)."""
    body = raw[len(frame.header) :]
    return mask(body, frame.mask_key) if frame.mask_key is not None else body


class DirectionFaults:
    """The frame-level faults acting on one direction (``c2s`` or ``s2c``) of a connection."""

    def __init__(self, conn: int, direction: Direction, shared: _Shared | None = None,
                 seed: int | None = None) -> None:
        self.conn = conn
        self.direction = direction
        self._shared = shared or _Shared()
        self._seed = seed
        self._faults: list[_Active] = []
        self._added = 0  # faults ever added: names each fault's RNG stream
        # Decisions for the data message in progress (made on its first frame).
        self._in_message = False
        self._drop = False
        self._duplicate: list[bytes] | None = None
        self._refragment: _Active | None = None
        self._fragments_out = 0  # frames sent so far for the refragmented message

    # ---- configuration --------------------------------------------------------------------
    def add(self, spec: FaultSpec) -> None:
        rng = make_rng(self._seed, self.conn, self.direction, self._added)
        self._added += 1
        self._faults.append(_Active(spec, rng))

    def remove(self, kind: str) -> None:
        self._faults = [f for f in self._faults if f.spec.kind != kind]

    def clear(self) -> None:
        self._faults.clear()

    @property
    def specs(self) -> list[FaultSpec]:
        return [f.spec for f in self._faults]

    @property
    def active(self) -> bool:
        """Whether frames must go through ``feed`` (a fault is installed or a message is
        being dropped/duplicated/refragmented)."""
        return bool(self._faults) or self._in_message

    def _of(self, kind: str) -> list[_Active]:
        return [f for f in self._faults if f.spec.kind == kind]

    # ---- the frame path -------------------------------------------------------------------
    def feed(self, frame: Frame, raw: bytes) -> Step:
        """Decide what becomes of one complete frame (``raw``: its exact wire bytes)."""
        if self._shared.ended:
            return Step([raw])  # a session action is under way; the relay decides
        step = self._control(frame, raw) if frame.opcode >= 8 else self._data(frame, raw)
        if step.delivered:
            self._budget(raw, step)
        if frame.opcode < 8 and frame.fin and step.delivered:
            self._count_message(frame, raw, step)
        if step.then is not None:
            self._shared.ended = True
        return step

    def _report(self, step: Step, fault: str, action: str, **detail: object) -> None:
        step.actions.append(FaultAction(fault, action, self.direction, dict(detail)))

    def _control(self, frame: Frame, raw: bytes) -> Step:
        step = Step([raw])
        if frame.opcode == 10:
            for f in self._of("swallow-pongs"):
                if f.fires():
                    self._report(step, "swallow-pongs", "pong swallowed")
                    return Step([], False, step.actions)
        if frame.opcode == 8:
            for f in self._of("never-close"):
                if f.fires():
                    self._report(step, "never-close", f"close frame {frame.close_code} withheld: "
                                 "the closing handshake will not complete", code=frame.close_code)
                    return Step([], False, step.actions)
            for f in self._of("delay-close"):
                if f.fires():
                    step.hold = max(step.hold, f.spec.ms / 1000)
            if step.hold:
                self._report(step, "delay-close", f"close frame held {step.hold * 1000:g} ms",
                             ms=step.hold * 1000)
        return step

    def _data(self, frame: Frame, raw: bytes) -> Step:
        step = Step([raw])
        first = frame.opcode != 0 or not self._in_message
        if first:
            self._decide(frame, raw, step)
        self._in_message = not frame.fin
        if self._drop:
            step.outs = []
            step.delivered = False
        elif self._refragment is not None:
            step.outs = self._refragment_frame(frame, raw, first)
        if self._duplicate is not None and not self._drop:
            self._duplicate.extend(step.outs)
            if frame.fin:
                step.outs = step.outs + self._duplicate
        if frame.fin:
            self._drop = False
            self._duplicate = None
            self._refragment = None
        return step

    def _decide(self, frame: Frame, raw: bytes, step: Step) -> None:
        """The first frame of a data message: drop it whole, refragment it, duplicate it?"""
        self._drop = False
        self._duplicate = None
        self._refragment = None
        payload = unmasked_payload(frame, raw)
        message = frame.message
        if message is not None and message.compressed:
            # A compressed message in one frame (the common case): match what it says. The
            # first frame of a fragmented one only has compressed bytes to match so far.
            payload = message.payload
        number = frame.message_no
        for f in self._of("drop"):
            if f.spec.matches_payload(payload) and f.fires():
                self._drop = True
                self._report(step, "drop", f"message {number} dropped", message=number)
                return
        for f in self._of("refragment"):
            if f.spec.matches_payload(payload) and f.fires():
                self._refragment = f
                self._fragments_out = 0
                self._report(step, "refragment", f"message {number} re-sent in frames of "
                             f"≤{f.spec.size} bytes", message=number, size=f.spec.size)
                break
        for f in self._of("duplicate"):
            if f.spec.matches_payload(payload) and f.fires():
                self._duplicate = []
                self._report(step, "duplicate", f"message {number} sent twice", message=number)
                break

    def _refragment_frame(self, frame: Frame, raw: bytes, first: bool) -> list[bytes]:
        f = self._refragment
        assert f is not None
        size = f.spec.size
        payload = unmasked_payload(frame, raw)
        pieces = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
        out = []
        for i, piece in enumerate(pieces):
            opening = first and i == 0
            # Client frames stay masked (§5.3) with a fresh key per frame, drawn from the
            # fault's RNG so a seeded run repeats byte for byte. RSV1 (compression) is a
            # property of the message and stays on its first frame only (RFC 7692 §6.1).
            key = f.rng.randbytes(4) if frame.masked else None
            out.append(encode_frame(frame.opcode if opening else 0, piece,
                                    fin=frame.fin and i == len(pieces) - 1,
                                    rsv1=frame.rsv1 and opening, mask_key=key))
        return out

    def _budget(self, raw: bytes, step: Step) -> None:
        """``cut-after``: forward exactly the byte budget — possibly half a frame, as a
        middlebox would — then cut."""
        cuts = self._of("cut-after")
        total = sum(len(o) for o in step.outs)
        sent = self._shared.sent
        if cuts:
            spec = cuts[0].spec
            used = sent["c2s"] + sent["s2c"] if spec.direction == "both" else sent[self.direction]
            budget = spec.nbytes - used
            if total > budget:
                kept: list[bytes] = []
                left = max(budget, 0)
                for out in step.outs:
                    kept.append(out[:left])
                    left -= len(kept[-1])
                step.outs = [k for k in kept if k]
                step.delivered = False
                step.then = Cut(spec.rst)
                self._report(step, "cut-after", f"{spec.nbytes} bytes forwarded → both TCP "
                             f"connections {'reset (RST)' if spec.rst else 'closed'}",
                             bytes=spec.nbytes, rst=spec.rst)
                total = sum(len(o) for o in step.outs)
        sent[self.direction] += total

    def _count_message(self, frame: Frame, raw: bytes, step: Step) -> None:
        for f in self._of("close-after"):
            spec = f.spec
            if spec.messages is None or step.then is not None:
                continue
            if spec.match is not None and not spec.matches_payload(
                frame.message.payload if frame.message else unmasked_payload(frame, raw)
            ):
                continue
            f.count += 1
            if f.count == spec.messages:
                step.then = CloseBoth(spec.code, spec.reason)
                self._report(step, "close-after", f"{spec.messages} messages passed → closing "
                             f"both sides with {spec.code}", messages=spec.messages, code=spec.code)


class ConnectionFaults:
    """The faults of one connection: frame-level per direction, timing specs (for the send
    streams) and session timers (``close-after:seconds=``: ``(seconds, action, report)``)."""

    def __init__(self, conn: int, specs: list[FaultSpec] | tuple[FaultSpec, ...] = (), *,
                 seed: int | None = None) -> None:
        self.conn = conn
        self.seed = seed
        self._shared = _Shared()
        self.c2s = DirectionFaults(conn, "c2s", self._shared, seed)
        self.s2c = DirectionFaults(conn, "s2c", self._shared, seed)
        self.timing: dict[str, list[FaultSpec]] = {"c2s": [], "s2c": []}
        self.timers: list[tuple[float, SessionAction, FaultAction]] = []
        self._timer_draws = 0
        for spec in specs:
            self.add(spec)

    def direction(self, name: str) -> DirectionFaults:
        return self.c2s if name == "c2s" else self.s2c

    def add(self, spec: FaultSpec) -> None:
        """Install one fault (handshake-level kinds belong to the gate and are ignored)."""
        if spec.level == "handshake":
            return
        if spec.kind == "close-after" and spec.seconds is not None:
            rng = make_rng(self.seed, self.conn, "session", self._timer_draws)
            self._timer_draws += 1
            if rng.random() < spec.p:
                report = FaultAction("close-after", f"{spec.seconds:g} s passed → closing both "
                                     f"sides with {spec.code}", None,
                                     {"seconds": spec.seconds, "code": spec.code})
                self.timers.append((spec.seconds, CloseBoth(spec.code, spec.reason), report))
            return
        for name in ("c2s", "s2c"):
            if spec.applies_to(name):
                if spec.kind in TIMING_KINDS:
                    self.timing[name].append(spec)
                else:
                    self.direction(name).add(spec)

    @property
    def frame_faults(self) -> bool:
        return bool(self.c2s.specs or self.s2c.specs or self.timing["c2s"] or self.timing["s2c"])

    @property
    def specs(self) -> list[FaultSpec]:
        seen: list[FaultSpec] = []
        for spec in self.c2s.specs + self.s2c.specs + self.timing["c2s"] + self.timing["s2c"]:
            if not any(spec is s for s in seen):
                seen.append(spec)
        return seen
