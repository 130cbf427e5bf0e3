"""The light tier must agree with the full parser on every count, whatever the chunking."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from wsinspect.wire.frames import FrameParser, encode_frame
from wsinspect.wire.walker import FrameWalker


def _stream() -> bytes:
    return b"".join(
        [
            encode_frame(1, b"hello", mask_key=b"abcd"),
            encode_frame(2, os.urandom(300), fin=False, mask_key=b"wxyz"),
            encode_frame(9, b"ping", mask_key=b"1234"),
            encode_frame(0, os.urandom(70_000), mask_key=b"5678"),
            encode_frame(10, b"", mask_key=b"9abc"),
            encode_frame(1, b"x" * 126),
            encode_frame(8, b"\x03\xe8going now", mask_key=b"defg"),
        ]
    )


STREAM = _stream()


def _points(cuts: list[int]) -> list[int]:
    return [*sorted({c % (len(STREAM) + 1) for c in cuts}), len(STREAM)]


def _walk(cuts: list[int]) -> tuple[FrameWalker, list[tuple[int, bytes, int]]]:
    walker = FrameWalker("c2s")
    closes = []
    prev = 0
    for point in _points(cuts):
        for frame in walker.feed(STREAM[prev:point]):
            if frame.opcode == 8:
                closes.append((frame.opcode, frame.payload, frame.start))
        prev = point
    return walker, closes


def test_walker_counts_every_frame_and_returns_the_close_frame() -> None:
    frames = FrameParser().feed(STREAM)
    walker, closes = _walk([])
    assert walker.frames == len(frames) == 7
    assert walker.data_frames == sum(1 for f in frames if f.opcode < 8) == 4
    close = frames[-1]
    assert closes == [(8, b"\x03\xe8going now", close.start)]


def test_walker_fed_one_byte_at_a_time_agrees() -> None:
    walker, closes = _walk(list(range(len(STREAM))))
    assert (walker.frames, walker.data_frames) == (7, 4)
    assert [c[1] for c in closes] == [b"\x03\xe8going now"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=30))
def test_walker_agrees_with_any_chunking(cuts: list[int]) -> None:
    reference, ref_closes = _walk([])
    walker, closes = _walk(cuts)
    assert (walker.frames, walker.data_frames) == (reference.frames, reference.data_frames)
    assert closes == ref_closes


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=30))
def test_walker_reports_frames_spanning_chunks_and_its_position_like_the_parser(
    cuts: list[int],
) -> None:
    # The relay acts at frame boundaries (a proxy close) with the walker too: it must learn
    # where a partly forwarded frame ends, and see the same offset/pending as the parser.
    walker, parser = FrameWalker("c2s"), FrameParser()
    prev = 0
    for point in _points(cuts):
        chunk = STREAM[prev:point]
        full = parser.feed(chunk)
        light = walker.feed(chunk)
        spanning = [(f.start, f.end, f.header) for f in full if f.start < prev and f.opcode != 8]
        got = [(f.start, f.end, f.header) for f in light if f.opcode != 8]
        assert got == spanning
        assert all(f.payload == b"" for f in light if f.opcode != 8)
        assert (walker.offset, walker.pending) == (parser.offset, parser.pending)
        prev = point


def test_skipped_payload_bytes_count_like_fed_ones() -> None:
    # The relay may move a long payload without reading it (splice): the walker must end up
    # where feeding those bytes would have left it.
    big = encode_frame(2, os.urandom(200_000), mask_key=b"abcd")
    after = encode_frame(1, b"next", mask_key=b"abcd")
    fed, skipped = FrameWalker("c2s"), FrameWalker("c2s")
    fed.feed(big[:1000])
    skipped.feed(big[:1000])
    assert skipped.passing == len(big) - 1000
    skipped.skip(len(big) - 1000 - 10)
    fed.feed(big[1000:-10])
    for w in (fed, skipped):
        ended = w.feed(big[-10:] + after)
        assert [(f.start, f.end) for f in ended] == [(0, len(big))]  # it began chunks ago
        assert (w.frames, w.data_frames, w.offset, w.pending) == (2, 2, len(big + after), 0)


def test_a_close_frame_payload_is_never_passed_unseen() -> None:
    walker = FrameWalker("c2s")
    close = encode_frame(8, b"\x03\xe8" + b"r" * 100, mask_key=b"abcd")
    walker.feed(close[:10])
    assert walker.passing == 0
