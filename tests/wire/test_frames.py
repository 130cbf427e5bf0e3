"""The lossless frame parser: chunking invariance, wsproto agreement, invalid frames, capture."""

from __future__ import annotations

import hashlib
import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.frame_protocol import FrameProtocol

from wsinspect.wire.frames import (
    Frame,
    FrameParser,
    Opcode,
    encode_frame,
    mask,
    opcode_from_name,
    opcode_name,
)

KEY = b"\x11\x22\x33\x44"


def summary(frames: list[Frame]) -> list[tuple[object, ...]]:
    return [
        (
            f.fin,
            f.rsv1,
            f.rsv2,
            f.rsv3,
            f.opcode,
            f.mask_key,
            f.length,
            f.header,
            f.payload,
            f.start,
            f.sha256,
        )
        for f in frames
    ]


def parse_all(
    data: bytes, splits: list[int] | None = None, capture_limit: int = 1 << 20
) -> list[Frame]:
    parser = FrameParser(capture_limit)
    frames: list[Frame] = []
    cuts = [*sorted(set(splits or [])), len(data)]
    prev = 0
    for cut in cuts:
        frames += parser.feed(data[prev:cut])
        prev = cut
    return frames


def sample_stream() -> bytes:
    """Mixed traffic: all three length encodings, masks, fragments, controls, invalid bits."""
    parts = [
        encode_frame(Opcode.TEXT, b"hello", mask_key=KEY),
        encode_frame(Opcode.BINARY, os.urandom(300)),
        encode_frame(Opcode.TEXT, b"frag-", fin=False, mask_key=KEY),
        encode_frame(Opcode.PING, b"p", mask_key=KEY),
        encode_frame(Opcode.CONTINUATION, b"ment", mask_key=KEY),
        encode_frame(Opcode.BINARY, os.urandom(70000), mask_key=b"\xff\x00\xaa\x55"),
        encode_frame(0x3, b"reserved", rsv2=True),
        encode_frame(Opcode.CLOSE, (1000).to_bytes(2, "big") + b"bye", mask_key=KEY),
        encode_frame(Opcode.PONG, b""),
    ]
    return b"".join(parts)


def test_one_byte_feeds_give_the_same_frames_as_one_feed() -> None:
    data = sample_stream()
    whole = parse_all(data)
    assert len(whole) == 9
    assert summary(parse_all(data, list(range(1, len(data))))) == summary(whole)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_split_gives_the_same_frames(data: st.DataObject) -> None:
    stream = SAMPLE
    splits = data.draw(st.lists(st.integers(0, len(stream)), max_size=40))
    assert summary(parse_all(stream, splits)) == summary(parse_all(stream))


SAMPLE = sample_stream()


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_any_split_gives_the_same_truncated_frames_and_digests(data: st.DataObject) -> None:
    splits = data.draw(st.lists(st.integers(0, len(SAMPLE)), max_size=20))
    assert summary(parse_all(SAMPLE, splits, capture_limit=100)) == summary(
        parse_all(SAMPLE, capture_limit=100)
    )


def streamed(data: bytes, splits: list[int], capture_limit: int) -> dict[int, bytes]:
    """Feed ``data`` to a streaming parser in pieces; check each piece's index against the
    frames the feed returned; return each long frame's streamed payload, by frame start."""
    parser = FrameParser(capture_limit, streaming=True)
    payloads: dict[int, bytearray] = {}
    prev = 0
    for cut in [*sorted(set(splits)), len(data)]:
        frames = parser.feed(data[prev:cut])
        prev = cut
        for index, frame, piece in parser.pieces:
            # The piece belongs to frames[index], or to the frame still arriving.
            owner = frames[index] if index < len(frames) else parser.current
            assert owner is frame and frame.length > capture_limit and piece
            payloads.setdefault(frame.start, bytearray()).extend(piece)
    assert parser.current is None
    return {start: bytes(p) for start, p in payloads.items()}


@settings(max_examples=100, deadline=None)
@given(st.data(), st.sampled_from([1, 100, 300, 69_999]))
def test_streaming_hands_out_every_long_payload_byte_once_in_order(
    data: st.DataObject, capture_limit: int
) -> None:
    splits = data.draw(st.lists(st.integers(0, len(SAMPLE)), max_size=20))
    whole = parse_all(SAMPLE)
    expected = {f.start: f.payload for f in whole if f.length > capture_limit}
    assert streamed(SAMPLE, splits, capture_limit) == expected


def test_streaming_one_byte_at_a_time() -> None:
    expected = {f.start: f.payload for f in parse_all(SAMPLE) if f.length > 100}
    assert streamed(SAMPLE, list(range(1, len(SAMPLE))), 100) == expected


def test_no_pieces_without_streaming_or_within_the_capture_limit() -> None:
    parser = FrameParser(100)
    parser.feed(SAMPLE)
    assert parser.pieces == []
    parser = FrameParser(1 << 20, streaming=True)
    parser.feed(SAMPLE)
    assert parser.pieces == []


def test_pieces_are_kept_only_until_the_next_feed() -> None:
    parser = FrameParser(10, streaming=True)
    parser.feed(encode_frame(Opcode.BINARY, bytes(50))[:30])
    assert [len(p) for _, _, p in parser.pieces] == [28]
    parser.feed(b"")
    assert parser.pieces == []


@pytest.mark.parametrize("client", [True, False], ids=["client-masked", "server-unmasked"])
def test_frames_written_by_wsproto_parse_to_the_same_fields(client: bool) -> None:
    proto = FrameProtocol(client=client, extensions=[])
    big = os.urandom(70000)
    sent = [
        (proto.send_data("héllo wörld", fin=True), [(Opcode.TEXT, "héllo wörld".encode(), True)]),
        (proto.send_data(b"", fin=True), [(Opcode.BINARY, b"", True)]),
        (proto.send_data(b"x" * 200, fin=True), [(Opcode.BINARY, b"x" * 200, True)]),
        (proto.send_data(big, fin=True), [(Opcode.BINARY, big, True)]),
        (proto.send_data("part1 ", fin=False), [(Opcode.TEXT, b"part1 ", False)]),
        (proto.ping(b"are you there"), [(Opcode.PING, b"are you there", True)]),
        (proto.send_data("part2", fin=True), [(Opcode.CONTINUATION, b"part2", True)]),
        (proto.pong(b""), [(Opcode.PONG, b"", True)]),
        (
            proto.close(1001, "going"),
            [(Opcode.CLOSE, (1001).to_bytes(2, "big") + b"going", True)],
        ),
    ]
    stream = b"".join(data for data, _ in sent)
    expected = [e for _, exp in sent for e in exp]
    frames = parse_all(stream, list(range(0, len(stream), 97)))
    assert [(f.opcode, f.payload, f.fin) for f in frames] == expected
    assert all(f.masked == client for f in frames)
    assert not any(f.rsv1 or f.rsv2 or f.rsv3 for f in frames)


def test_frames_parsed_by_us_are_accepted_by_wsproto() -> None:
    """The other direction of the cross-check: what ``encode_frame`` writes, wsproto reads."""
    proto = FrameProtocol(client=False, extensions=[])
    stream = (
        encode_frame(Opcode.TEXT, "ünï".encode(), fin=False, mask_key=KEY)
        + encode_frame(Opcode.CONTINUATION, b"code", mask_key=KEY)
        + encode_frame(Opcode.BINARY, bytes(70000), mask_key=KEY)
    )
    proto.receive_bytes(stream)
    # wsproto reports a continuation under its message's opcode, and text as str.
    got = [
        (f.payload.encode() if isinstance(f.payload, str) else bytes(f.payload), f.message_finished)
        for f in proto.received_frames()
    ]
    assert got == [(f.payload, f.fin) for f in parse_all(stream)]


def test_reserved_opcodes_and_rsv_bits_still_parse() -> None:
    data = encode_frame(0x5, b"abc", rsv1=True, rsv3=True) + encode_frame(0xC, b"", rsv2=True)
    frames = parse_all(data)
    assert [(f.opcode, f.rsv1, f.rsv2, f.rsv3, f.payload) for f in frames] == [
        (0x5, True, False, True, b"abc"),
        (0xC, False, True, False, b""),
    ]
    assert frames[0].opcode_name == "reserved-0x5"


def test_non_minimal_lengths_parse_with_their_raw_header() -> None:
    data = b"\x82\x7e\x00\x03abc" + b"\x82\x7f" + (2).to_bytes(8, "big") + b"xy"
    frames = parse_all(data, [1, 3, 9])
    assert [(f.length, f.payload, f.header) for f in frames] == [
        (3, b"abc", b"\x82\x7e\x00\x03"),
        (2, b"xy", b"\x82\x7f" + (2).to_bytes(8, "big")),
    ]


def test_length_with_the_top_bit_set_is_reported_not_rejected() -> None:
    length = (1 << 63) | 5
    frames = parse_all(b"\x82\x7f" + length.to_bytes(8, "big") + b"hello", capture_limit=16)
    assert frames == []  # the frame is still arriving: 2**63 bytes declared
    parser = FrameParser(16)
    assert parser.feed(b"\x82\x7f" + length.to_bytes(8, "big") + b"hello") == []
    assert parser.pending == 15


def test_long_payload_is_captured_up_to_the_limit_with_full_length_and_digest() -> None:
    payload = os.urandom(5000)
    frames = parse_all(encode_frame(Opcode.BINARY, payload, mask_key=KEY), [7, 1000, 3000], 1024)
    (f,) = frames
    assert f.length == 5000
    assert f.payload == payload[:1024]
    assert f.truncated
    assert f.sha256 == hashlib.sha256(payload).hexdigest()


def test_payload_within_the_limit_has_no_digest() -> None:
    (f,) = parse_all(encode_frame(Opcode.BINARY, b"x" * 1024), capture_limit=1024)
    assert not f.truncated
    assert f.sha256 is None


def test_stream_offsets_point_at_each_frame() -> None:
    data = SAMPLE
    frames = parse_all(data, [5, 500])
    assert frames[0].start == 0
    for a, b in itertools.pairwise(frames):
        assert b.start == a.end
    assert frames[-1].end == len(data)
    assert all(data[f.start : f.end] == f.wire_bytes for f in frames)


@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4), st.integers(0, 7))
def test_masking_twice_gives_back_the_payload(payload: bytes, key: bytes, offset: int) -> None:
    assert mask(mask(payload, key, offset), key, offset) == payload


@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4), st.integers(0, 300))
def test_masking_in_pieces_equals_masking_at_once(payload: bytes, key: bytes, cut: int) -> None:
    assert mask(payload[:cut], key) + mask(payload[cut:], key, min(cut, len(payload))) == mask(
        payload, key
    )


@settings(max_examples=30, deadline=None)
@given(st.integers(4090, 9000), st.binary(min_size=4, max_size=4), st.integers(0, 7))
def test_masking_big_payloads_xors_every_byte_with_its_key_byte(
    size: int, key: bytes, offset: int
) -> None:
    # Big payloads take the table path; §5.3: j-th octet XOR key[(offset + j) % 4].
    payload = os.urandom(size)
    expected = bytes(b ^ key[(offset + j) % 4] for j, b in enumerate(payload))
    assert mask(payload, key, offset) == expected


@given(
    st.sampled_from([0, 1, 2, 8, 9, 10, 3, 0xB]),
    st.binary(max_size=70000),
    st.booleans(),
    st.one_of(st.none(), st.binary(min_size=4, max_size=4)),
)
@settings(max_examples=50, deadline=None)
def test_encoded_frames_parse_back(
    opcode: int, payload: bytes, fin: bool, key: bytes | None
) -> None:
    data = encode_frame(opcode, payload, fin=fin, mask_key=key)
    (f,) = parse_all(data)
    assert (f.opcode, f.payload, f.fin, f.mask_key, f.length) == (
        opcode,
        payload,
        fin,
        key,
        len(payload),
    )
    assert f.wire_bytes == data


def test_opcode_names_round_trip() -> None:
    for code in range(16):
        assert opcode_from_name(opcode_name(code)) == code
    assert opcode_from_name("continuation") == 0
    with pytest.raises(ValueError):
        opcode_from_name("bogus")
