"""Frame-level faults (sans-IO): what each does to frames, and that a seed repeats exactly."""

from __future__ import annotations

from wsinspect.faults.actions import CloseBoth, Cut
from wsinspect.faults.spec import parse_fault
from wsinspect.faults.stages import ConnectionFaults, DirectionFaults, Step
from wsinspect.wire.frames import Frame, FrameParser, encode_frame
from wsinspect.wire.inspector import Inspector

KEY = b"\x01\x02\x03\x04"


class Feed:
    """Parses frames of one direction and runs them through a ``DirectionFaults``."""

    def __init__(self, *specs: str, direction: str = "s2c", seed: int | None = 1,
                 conn: int = 1) -> None:
        self.faults = ConnectionFaults(conn, [parse_fault(s) for s in specs], seed=seed)
        self.d: DirectionFaults = self.faults.direction(direction)
        self.inspector = Inspector(direction)
        self.direction = direction

    def frame(self, opcode: int, payload: bytes, *, fin: bool = True) -> Step:
        key = KEY if self.direction == "c2s" else None
        raw = encode_frame(opcode, payload, fin=fin, mask_key=key)
        (frame,) = self.inspector.feed(raw)
        return self.d.feed(frame, raw)


def frames_of(data: bytes) -> list[Frame]:
    return FrameParser().feed(data)


def test_drop_removes_matching_messages_only() -> None:
    f = Feed("drop:match=^ping")
    dropped = f.frame(1, b"ping 1")
    kept = f.frame(1, b"hello")
    assert dropped.outs == [] and not dropped.delivered
    assert dropped.actions[0].fault == "drop"
    assert kept.outs and kept.delivered and not kept.actions


def test_drop_takes_a_fragmented_message_whole() -> None:
    f = Feed("drop:match=^ping")
    steps = [f.frame(1, b"ping", fin=False), f.frame(9, b"hb"), f.frame(0, b" 2")]
    assert [s.delivered for s in steps] == [False, True, False]  # the ping frame passes
    assert f.frame(1, b"next").delivered


def test_duplicate_sends_the_message_twice() -> None:
    f = Feed("duplicate")
    step = f.frame(2, b"\x00\x01")
    assert len(step.outs) == 2 and step.outs[0] == step.outs[1]


def test_duplicate_of_a_fragmented_message_repeats_all_its_frames_after_the_last() -> None:
    f = Feed("duplicate")
    first = f.frame(1, b"ab", fin=False)
    last = f.frame(0, b"cd")
    assert len(first.outs) == 1
    again = frames_of(b"".join(last.outs[1:]))
    assert [(x.opcode, x.fin, x.payload) for x in again] == [(1, False, b"ab"), (0, True, b"cd")]


def test_refragment_splits_a_message_into_frames_of_the_size() -> None:
    f = Feed("refragment:size=4")
    step = f.frame(1, b"0123456789")
    out = frames_of(b"".join(step.outs))
    assert [x.payload for x in out] == [b"0123", b"4567", b"89"]
    assert [x.opcode for x in out] == [1, 0, 0] and [x.fin for x in out] == [False, False, True]


def test_refragmented_client_frames_stay_masked() -> None:
    f = Feed("refragment:size=3", direction="c2s")
    out = frames_of(b"".join(f.frame(2, b"abcdefg").outs))
    assert all(x.masked for x in out)
    assert b"".join(x.payload for x in out) == b"abcdefg"


def test_swallow_pongs_drops_pongs_but_not_pings() -> None:
    f = Feed("swallow-pongs")
    assert not f.frame(10, b"").delivered
    assert f.frame(9, b"").delivered


def test_never_close_withholds_the_close_frame() -> None:
    f = Feed("never-close")
    step = f.frame(8, (1000).to_bytes(2, "big"))
    assert step.outs == [] and not step.delivered and "withheld" in step.actions[0].action


def test_delay_close_holds_the_close_frame() -> None:
    step = Feed("delay-close:ms=1500").frame(8, (1000).to_bytes(2, "big"))
    assert step.hold == 1.5 and step.delivered


def test_close_after_messages_closes_both_after_the_nth() -> None:
    f = Feed("close-after:messages=3,code=4000,reason=enough")
    assert [f.frame(1, b"x").then for _ in range(2)] == [None, None]
    step = f.frame(1, b"x")
    assert step.delivered and step.then == CloseBoth(4000, "enough")


def test_cut_after_forwards_exactly_the_budget_then_cuts() -> None:
    f = Feed("cut-after:bytes=10,rst")
    first = f.frame(1, b"12345")  # 7 bytes on the wire
    second = f.frame(1, b"67890")  # would make 14
    assert first.delivered and first.then is None
    assert b"".join(second.outs) == encode_frame(1, b"67890")[:3]
    assert not second.delivered and second.then == Cut(rst=True)


def test_cut_after_both_directions_share_one_budget() -> None:
    faults = ConnectionFaults(1, [parse_fault("cut-after:bytes=10")])
    c2s, s2c = Inspector("c2s"), Inspector("s2c")
    raw_up = encode_frame(1, b"abcd", mask_key=KEY)  # 10 bytes
    (up,) = c2s.feed(raw_up)
    assert faults.c2s.feed(up, raw_up).then is None
    raw_down = encode_frame(1, b"z")
    (down,) = s2c.feed(raw_down)
    assert faults.s2c.feed(down, raw_down).then == Cut(rst=False)


def test_probability_and_seed_repeat_exactly() -> None:
    def run(seed: int) -> list[bool]:
        f = Feed("drop:p=0.5", seed=seed)
        return [f.frame(1, b"m%d" % i).delivered for i in range(64)]

    assert run(7) == run(7)
    assert run(7) != run(8)
    assert 10 < sum(run(7)) < 54  # about half dropped


def test_seeded_choices_differ_per_connection_but_not_per_run() -> None:
    def run(conn: int) -> list[bool]:
        f = Feed("drop:p=0.5", seed=3, conn=conn)
        return [f.frame(1, b"m").delivered for _ in range(32)]

    assert run(1) == run(1) and run(1) != run(2)


def test_faults_act_on_their_direction_only() -> None:
    faults = ConnectionFaults(1, [parse_fault("drop:dir=c2s")])
    assert faults.c2s.active and not faults.s2c.active


def test_session_timer_for_close_after_seconds() -> None:
    faults = ConnectionFaults(1, [parse_fault("close-after:seconds=30,code=4000")])
    ((seconds, action, report),) = faults.timers
    assert seconds == 30 and action == CloseBoth(4000, "") and "30 s" in report.action
