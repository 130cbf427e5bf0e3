"""The per-direction pipeline: message numbering and reassembly, fast path = full path."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsinspect.wire.checks import Checker
from wsinspect.wire.frames import Frame, FrameParser, Opcode, encode_frame
from wsinspect.wire.inspector import Inspector
from wsinspect.wire.messages import Message, MessageAssembler

KEY = b"\x0a\x0b\x0c\x0d"


def c(opcode: int, payload: bytes = b"", **kw: bool) -> bytes:
    return encode_frame(opcode, payload, mask_key=KEY, **kw)


def messages(frames: list[Frame]) -> list[Message]:
    return [f.message for f in frames if f.message is not None]


def test_single_frame_messages_are_numbered_in_order() -> None:
    frames = Inspector("c2s").feed(c(Opcode.TEXT, b"one") + c(Opcode.BINARY, b"\x02"))
    assert [f.message_no for f in frames] == [1, 2]
    assert messages(frames) == [
        Message(Opcode.TEXT, b"one", 3, 3, 1),
        Message(Opcode.BINARY, b"\x02", 1, 1, 1),
    ]


def test_fragmented_message_is_reassembled_on_its_last_frame() -> None:
    data = (
        c(Opcode.TEXT, b"Hel", fin=False)
        + c(Opcode.PING, b"!")
        + c(Opcode.CONTINUATION, b"lo", fin=False)
        + c(Opcode.CONTINUATION, b" you")
    )
    frames = Inspector("c2s").feed(data)
    assert [(f.message_no, f.fragment_index) for f in frames] == [(1, 0), (0, 0), (1, 1), (1, 2)]
    assert [f.message for f in frames[:3]] == [None, None, None]
    assert frames[3].message == Message(Opcode.TEXT, b"Hello you", 9, 9, 3)


def test_control_frames_belong_to_no_message() -> None:
    frames = Inspector("s2c").feed(
        encode_frame(Opcode.PONG, b"x") + encode_frame(Opcode.CLOSE, b"")
    )
    assert [(f.message_no, f.message) for f in frames] == [(0, None), (0, None)]


def test_message_is_captured_up_to_the_limit_with_its_full_length() -> None:
    body = os.urandom(500)
    data = c(Opcode.BINARY, body[:300], fin=False) + c(Opcode.CONTINUATION, body[300:])
    frames = Inspector("c2s", capture_limit=400).feed(data)
    m = frames[-1].message
    assert m is not None
    assert (m.payload, m.length, m.wire_len, m.frames, m.truncated) == (
        body[:400],
        500,
        500,
        2,
        True,
    )


def test_assembler_alone_numbers_and_joins() -> None:
    asm = MessageAssembler(capture_limit=10)
    parser = FrameParser()
    got = [
        asm.add(f)
        for f in parser.feed(
            encode_frame(Opcode.TEXT, b"abcdefgh", fin=False)
            + encode_frame(Opcode.CONTINUATION, b"ijkl")
        )
    ]
    assert got[0] is None
    assert got[1] == Message(Opcode.TEXT, b"abcdefghij", 12, 12, 2, truncated=True)


def test_messages_are_hashable_values() -> None:
    assert hash(Message(1, b"a", 1, 1, 1)) == hash(Message(1, b"a", 1, 1, 1))


def test_unknown_direction_is_refused() -> None:
    with pytest.raises(ValueError):
        Inspector("sideways")


# The fast path must give exactly what the full path gives: compare against a reference that
# runs every frame through Checker + MessageAssembler.


def reference(direction: str, data: bytes, **kw: int | None) -> list[tuple[object, ...]]:
    parser = FrameParser(kw.get("capture_limit") or 1 << 20)
    checker = Checker(direction, max_message_size=kw.get("max_message_size"))
    asm = MessageAssembler(kw.get("capture_limit") or 1 << 20)
    out = []
    for f in parser.feed(data):
        v = checker.check(f)
        m = asm.add(f)
        out.append((tuple(x.rule for x in v), f.message_no, f.fragment_index, m, f.text))
    return out


def observed(frames: list[Frame]) -> list[tuple[object, ...]]:
    return [
        (tuple(v.rule for v in f.violations), f.message_no, f.fragment_index, f.message, f.text)
        for f in frames
    ]


frame_strategy = st.tuples(
    st.sampled_from([0, 1, 2, 8, 9, 10, 3]),
    st.one_of(st.binary(max_size=140), st.sampled_from([b"\xff", "é".encode()[:1], "€".encode()])),
    st.booleans(),  # fin
    st.booleans(),  # masked
    st.booleans(),  # rsv1
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(frame_strategy, max_size=12),
    st.sampled_from(["c2s", "s2c"]),
    st.sampled_from([None, 50]),
    st.lists(st.integers(0, 2000), max_size=6),
)
def test_fast_path_agrees_with_the_full_checks(
    spec: list[tuple[int, bytes, bool, bool, bool]],
    direction: str,
    max_size: int | None,
    splits: list[int],
) -> None:
    data = b"".join(
        encode_frame(op, p, fin=fin, rsv1=rsv1, mask_key=KEY if masked else None)
        for op, p, fin, masked, rsv1 in spec
    )
    inspector = Inspector(direction, max_message_size=max_size)
    frames: list[Frame] = []
    prev = 0
    for cut in [*sorted(s for s in splits if s < len(data)), len(data)]:
        frames += inspector.feed(data[prev:cut])
        prev = cut
    assert observed(frames) == reference(direction, data, max_message_size=max_size)
